/**
 * Payloads too large for a ring slot. They travel by `postMessage` (copied
 * once, in the same encoding) while the ring carries a small message that
 * says so:
 * - arguments: the main thread keeps the encoded arguments here under a key
 *   and pushes the key (`FORM_LARGE`); the worker that takes the task asks
 *   for the key (`FetchMessage`) and gets the parcel (`ParcelMessage`);
 * - results: the worker posts the value (`LargeResultMessage`) and pushes
 *   `OUTCOME_LARGE`; the two arrive in either order, and the task settles
 *   when both have.
 *
 * @module
 */

import type { ParcelMessage } from "./_protocol.ts";

/** A result whose ring message came, waiting for its value. */
const AWAITED = undefined;

/** The parcels of one pool. Main thread only. */
export class Parcels {
  /** Arguments not yet fetched, by key. */
  readonly #args = new Map<number, ParcelMessage>();
  #lastKey = 0;
  /** Large results: the value if it came first, `AWAITED` if its ring message did. */
  readonly #results = new Map<number, { value: unknown } | typeof AWAITED>();

  /** Keeps encoded arguments until a worker fetches them; returns their key. */
  stash(form: number, tag: number, data: string | Uint8Array): number {
    const key = ++this.#lastKey;
    this.#args.set(key, { kind: "parcel", key, form, tag, data });
    return key;
  }

  /**
   * Hands the parcel `key` to the worker that asks, once. A parcel dropped
   * meanwhile (its task was cancelled) comes back without `form`: the
   * worker then fails the task.
   */
  fetch(key: number): ParcelMessage {
    const parcel = this.#args.get(key) ?? { kind: "parcel", key };
    this.#args.delete(key);
    return parcel;
  }

  /** Forgets the arguments `key` (their task was cancelled, refused or lost). */
  drop(key: number): void {
    this.#args.delete(key);
  }

  /**
   * The ring says the result of `ticket` is large: its value if the message
   * came first (as `{ value }`), else `undefined` (it is now awaited).
   */
  resultRinged(ticket: number): { value: unknown } | undefined {
    const arrived = this.#results.get(ticket);
    if (arrived === undefined) {
      this.#results.set(ticket, AWAITED);
      return undefined;
    }
    this.#results.delete(ticket);
    return arrived;
  }

  /**
   * The value of `ticket`'s large result came by `postMessage`: true when
   * its ring message came first (settle now), else it is kept.
   */
  resultPosted(ticket: number, value: unknown): boolean {
    if (this.#results.has(ticket)) {
      this.#results.delete(ticket);
      return true;
    }
    this.#results.set(ticket, { value });
    return false;
  }

  /** Forgets a large result of `ticket` (its task settled without it). */
  forgetResult(ticket: number): void {
    this.#results.delete(ticket);
  }
}
