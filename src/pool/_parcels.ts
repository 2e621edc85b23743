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

/** A large result whose ring message came first: its times, until its value comes. */
export interface Ringed {
  startUs: number;
  runUs: number;
}

/** The parcels of one pool. Main thread only. */
export class Parcels {
  /** Arguments not yet fetched, by key. */
  readonly #args = new Map<number, ParcelMessage>();
  #lastKey = 0;
  /** Large results: the value if it came first, its ring message's times if that did. */
  readonly #results = new Map<number, { value: unknown } | Ringed>();

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
   * came first (as `{ value }`), else `undefined` (its times are kept until
   * the value comes).
   */
  resultRinged(ticket: number, startUs: number, runUs: number): { value: unknown } | undefined {
    const arrived = this.#results.get(ticket);
    if (arrived === undefined || !("value" in arrived)) {
      this.#results.set(ticket, { startUs, runUs });
      return undefined;
    }
    this.#results.delete(ticket);
    return arrived;
  }

  /**
   * The value of `ticket`'s large result came by `postMessage`: its ring
   * message's times when that came first (settle now), else `undefined`
   * (the value is kept until it comes).
   */
  resultPosted(ticket: number, value: unknown): Ringed | undefined {
    const ringed = this.#results.get(ticket);
    if (ringed !== undefined && !("value" in ringed)) {
      this.#results.delete(ticket);
      return ringed;
    }
    this.#results.set(ticket, { value });
    return undefined;
  }

  /** Forgets a large result of `ticket` (its task settled without it). */
  forgetResult(ticket: number): void {
    this.#results.delete(ticket);
  }
}
