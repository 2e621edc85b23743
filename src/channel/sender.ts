/**
 * The sending end of a sync channel.
 *
 * @module
 */

import { ChannelClosedError } from "../errors.ts";
import { Encoder } from "./_codec.ts";
import {
  RECEIVERS,
  RECV_EPOCH,
  RECV_WAITERS,
  SEND_EPOCH,
  SEND_WAITERS,
  SENDERS,
} from "./_layout.ts";
import { attach, detach, type Holder } from "./_lease.ts";
import { CLOSED, FULL, OK, type Ring } from "./_ring.ts";
import { abortable, ABORTED, waitAsync, waitSync } from "./_wait.ts";
import { ringOf } from "./_end.ts";
import { handOff, handOffSync } from "./_rendezvous.ts";
import type { ChannelEndDescriptor, SyncWaitOptions, TrySendResult, WaitOptions } from "./types.ts";

/**
 * The sending end of a {@linkcode syncChannel}.
 *
 * Guarantees:
 * - every message is delivered to exactly one receiver, or to none if every
 *   receiver closes first (queued messages are then dropped, as in Rust);
 * - messages from one sender end arrive in the order they were sent (each
 *   receiver sees them in that order; messages from different senders
 *   interleave in any order);
 * - backpressure: at most `capacity` messages wait; `send` waits for room,
 *   `sendSync` blocks the thread, `trySend` reports `"full"`;
 * - a successful send does **not** promise that the message was received,
 *   only that it is queued (except on a rendezvous channel, where `send`
 *   completes once a receiver has taken it);
 * - when every receiver is closed, sends fail with a {@linkcode ChannelClosedError}
 *   carrying the value, and a sender waiting for room is woken by it.
 *
 * Values: numbers (as raw f64, `NaN` and `-0` included), strings, `undefined`,
 * `Uint8Array` (raw bytes; other typed arrays go as JSON objects) and anything
 * `JSON.stringify` accepts. JSON loses what it always loses: `Date` becomes a
 * string, `Map`/`Set` become `{}`, `undefined` inside objects disappears and in
 * arrays becomes `null`, functions inside objects are dropped. Functions,
 * symbols, BigInts and cycles at any level the JSON encoder visits fail at the
 * send site with a `TypeError`, and a value larger than a slot with a
 * `RangeError`; either way nothing is queued and the channel stays usable.
 *
 * Threads: `share()` reserves a new sender end for another thread; open it
 * there with `await SyncSender.from(descriptor)`. If a worker holding ends dies
 * (terminated, `self.close()`, `Deno.exit()`, an uncaught error), the threads
 * still waiting on the channel notice within about 50 ms of waiting and return
 * its ends: receivers then drain and see the end, senders see the close. A
 * thread blocked in `sendSync`/`recvSync` is woken once another thread that
 * waits asynchronously has done so; give it a `timeout` if none does.
 *
 * @typeParam T The type of the messages.
 */
export class SyncSender<T> {
  readonly #core: Ring;
  readonly #enc: Encoder;
  #holder: Holder | null;
  #closed = false;
  /** Async sends of this end still waiting, and the last of them. */
  #waiting = 0;
  #lastSend: Promise<void> | null = null;

  // Not part of the API: ends are made by syncChannel(), clone() and from().
  /** @ignore */
  constructor(core: Ring, holder: Holder | null) {
    this.#core = core;
    this.#holder = holder;
    this.#enc = new Encoder(core.slotBytes);
  }

  /**
   * Opens, in this thread, a sender end that another thread made with
   * `share()`. Resolves once the end is registered, so that the other threads
   * notice if this one dies.
   *
   * @param descriptor What `share()` returned, received through `postMessage`.
   * @returns The sender.
   * @throws {TypeError} When `descriptor` is not a sender descriptor.
   * @throws {Error} When this descriptor was already opened (in any thread).
   *
   * @example Open a shared sender
   * ```ts
   * import { SyncSender, syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<string>(2);
   * const other = await SyncSender.from<string>(tx.share());
   * tx.close();
   * await other.send("still open");
   * assert.strictEqual(await rx.recv(), "still open");
   * ```
   */
  static async from<T>(
    descriptor: ChannelEndDescriptor,
  ): Promise<SyncSender<T>> {
    const core = ringOf(descriptor, "sender");
    const holder = attach(core.i32, "sender");
    await holder?.ready;
    return new SyncSender<T>(core, holder);
  }

  /** How many messages the channel holds at most (0 for a rendezvous channel). */
  get capacity(): number {
    return this.#core.capacity;
  }

  /** How many messages are queued now (a snapshot: other threads move on). */
  get len(): number {
    return this.#core.len();
  }

  /** Live sender ends, in all threads. */
  get senderCount(): number {
    return Atomics.load(this.#core.i32, SENDERS);
  }

  /** Live receiver ends, in all threads. */
  get receiverCount(): number {
    return Atomics.load(this.#core.i32, RECEIVERS);
  }

  /** True once this end is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Makes another sender end of the same channel in this thread (Rust's `Sender::clone`).
   *
   * @returns A new, independent sender; close each one.
   * @throws {ChannelClosedError} When this end is closed.
   *
   * @example Two producers
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [a, rx] = syncChannel<string>(2);
   * const b = a.clone();
   * await a.send("a");
   * a.close();
   * await b.send("b");
   * b.close();
   * assert.deepStrictEqual(await Array.fromAsync(rx), ["a", "b"]);
   * ```
   */
  clone(): SyncSender<T> {
    this.#checkOpen("clone");
    Atomics.add(this.#core.i32, SENDERS, 1);
    return new SyncSender<T>(this.#core, attach(this.#core.i32, "sender"));
  }

  /**
   * Reserves a new sender end for another thread and returns it as plain data
   * for `postMessage`. The receiving thread opens it with `SyncSender.from()`.
   * The reserved end counts as open from now on: pass the descriptor to
   * `from()` once, or the channel never sees its senders all closed (a
   * second `from()` of it throws).
   *
   * @returns The descriptor.
   * @throws {ChannelClosedError} When this end is closed.
   *
   * @example Share with a worker
   * ```ts ignore
   * worker.postMessage(tx.share());
   * // in the worker: const tx = await SyncSender.from(event.data);
   * ```
   */
  share(): ChannelEndDescriptor {
    this.#checkOpen("share");
    Atomics.add(this.#core.i32, SENDERS, 1);
    return {
      kind: "sender",
      buffer: this.#core.i32.buffer as SharedArrayBuffer,
      claim: new SharedArrayBuffer(4),
    };
  }

  /**
   * Sends without waiting.
   *
   * On a rendezvous channel it succeeds only while a receiver is waiting. It
   * reports `"full"` while an earlier `send` of this end is still waiting, so
   * that sends of one end stay in call order.
   *
   * @param value The message.
   * @returns `{ ok: true }`, or `{ ok: false, reason, value }` with `reason`
   * `"full"` or `"closed"` (every receiver is gone) and the value handed back.
   * @throws {TypeError} When the value cannot be carried.
   * @throws {RangeError} When the value is larger than a slot.
   *
   * @example Fill a channel
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx] = syncChannel<number>(1);
   * assert.deepStrictEqual(tx.trySend(1), { ok: true });
   * assert.deepStrictEqual(tx.trySend(2), { ok: false, reason: "full", value: 2 });
   * ```
   */
  trySend(value: T): TrySendResult<T> {
    this.#checkOpen("send");
    this.#enc.encode(value);
    const core = this.#core;
    if (
      this.#waiting !== 0 ||
      (core.capacity === 0 && Atomics.load(core.i32, RECV_WAITERS) === 0)
    ) {
      // Behind this end's waiting sends, or no receiver to hand over to.
      return {
        ok: false,
        reason: Atomics.load(core.i32, RECEIVERS) === 0 ? "closed" : "full",
        value,
      };
    }
    const result = this.#push();
    if (result === OK) return { ok: true };
    return { ok: false, reason: result === FULL ? "full" : "closed", value };
  }

  /**
   * Sends, waiting while the channel is full.
   *
   * @param value The message.
   * @param options A signal and a timeout for the wait.
   * @returns Resolves once the message is queued (on a rendezvous channel,
   * once a receiver took it).
   * @throws {ChannelClosedError} When every receiver is gone (with the value).
   * @throws {TimeoutError} When `timeout` ran out; nothing was sent.
   * @throws {TypeError} When the value cannot be carried.
   * @throws {RangeError} When the value is larger than a slot.
   * Rejects with the signal's reason when it aborts; nothing was sent.
   *
   * @example Backpressure
   * ```ts
   * import { syncChannel, TimeoutError } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(1);
   * await tx.send(1);
   * await assert.rejects(tx.send(2, { timeout: 10 }), TimeoutError);
   * const later = tx.send(3);
   * assert.strictEqual(await rx.recv(), 1);
   * await later;
   * assert.strictEqual(await rx.recv(), 3);
   * ```
   */
  async send(value: T, options: WaitOptions = {}): Promise<void> {
    this.#checkOpen("send");
    const enc = this.#enc;
    enc.encode(value);
    const core = this.#core;
    if (core.capacity !== 0 && this.#waiting === 0) {
      const first = this.#push();
      if (first === OK) return;
      if (first === CLOSED) throw this.#closedError(value);
    }
    enc.own(); // another send on this end may encode while this one waits
    const { tag, len, num, bytes } = enc;
    // Sends of one end complete in call order: wait for the earlier ones.
    const earlier = this.#lastSend;
    let done!: () => void;
    const mine = new Promise<void>((resolve) => done = resolve);
    this.#lastSend = mine;
    this.#waiting++;
    try {
      if (
        earlier !== null &&
        (options.signal ? await abortable(earlier, options.signal) : await earlier) === ABORTED
      ) {
        throw options.signal!.reason;
      }
      const result = await waitAsync(
        core,
        SEND_EPOCH,
        SEND_WAITERS,
        FULL,
        () => {
          enc.tag = tag, enc.len = len, enc.num = num, enc.bytes = bytes;
          return this.#closed ? CLOSED : this.#push();
        },
        options,
        "send",
      );
      if (result === CLOSED) throw this.#closedError(value);
      if (core.capacity === 0) {
        if (!await handOff(core, core.lastPos, options)) throw this.#closedError(value);
      }
    } finally {
      if (--this.#waiting === 0) this.#lastSend = null;
      done();
    }
  }

  /**
   * Sends, blocking the thread while the channel is full (`Atomics.wait`).
   * For workers; on the main thread prefer `send`.
   *
   * @param value The message.
   * @param options A timeout for the wait.
   * @throws {ChannelClosedError} When every receiver is gone (with the value).
   * @throws {TimeoutError} When `timeout` ran out; nothing was sent.
   * @throws {TypeError} When the value cannot be carried.
   * @throws {RangeError} When the value is larger than a slot.
   *
   * @example Send from a blocking thread
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<string>(1);
   * tx.sendSync("hi");
   * assert.strictEqual(rx.recvSync(), "hi");
   * ```
   */
  sendSync(value: T, options: SyncWaitOptions = {}): void {
    this.#checkOpen("send");
    this.#enc.encode(value);
    const core = this.#core;
    let result = this.#waiting === 0 ? this.#push() : FULL;
    if (result === FULL) {
      result = waitSync(core, SEND_EPOCH, SEND_WAITERS, FULL, this.#pushNow, options, "send");
    }
    if (result === CLOSED) throw this.#closedError(value);
    if (core.capacity === 0 && !handOffSync(core, core.lastPos, options)) {
      throw this.#closedError(value);
    }
  }

  /**
   * Closes this end (idempotent). When the last sender end closes, receivers
   * drain what is queued and then see the end.
   *
   * @example Close to end a receiver's loop
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(2);
   * tx.trySend(7);
   * tx.close();
   * tx.close();
   * assert.deepStrictEqual(await Array.fromAsync(rx), [7]);
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const core = this.#core;
    if (this.#holder !== null) detach(core.i32, this.#holder, "sender");
    this.#holder = null;
    if (Atomics.sub(core.i32, SENDERS, 1) === 1) core.wakeAll(RECV_EPOCH);
    // Wake this end's own pending sends so they see it closed.
    core.wakeAll(SEND_EPOCH);
  }

  /** Closes this end, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #push(): number {
    return this.#core.push(this.#enc, 0, 0, 0);
  }

  /** `#push` as a function, made once (the blocking path calls it in a loop). */
  readonly #pushNow = (): number => this.#push();

  #checkOpen(action: string): void {
    if (this.#closed) {
      throw new ChannelClosedError(
        `Cannot ${action}: this sender end is closed`,
      );
    }
  }

  #closedError(value: T): ChannelClosedError {
    return new ChannelClosedError(
      this.#closed
        ? "Cannot send: this sender end was closed while the send waited"
        : "Cannot send: every receiver of the channel is closed; the value is in error.value",
      value,
    );
  }
}
