/**
 * A bounded multi-producer, multi-consumer channel in one SharedArrayBuffer:
 * Rust's `std::sync::mpsc::sync_channel` for the main thread and any number
 * of Web Workers.
 *
 * @module
 */

import { ChannelClosedError } from "./errors.ts";
import { Encoder } from "./_codec.ts";
import {
  HEAD,
  RECEIVERS,
  RECV_EPOCH,
  RECV_WAITERS,
  SEND_EPOCH,
  SEND_WAITERS,
  SENDERS,
} from "./_layout.ts";
import { attach, detach, type Holder } from "./_lease.ts";
import {
  abortable,
  ABORTED,
  CLOSED,
  createBuffer,
  DEFAULT_SLOT_SIZE,
  DISCONNECTED,
  EMPTY,
  FULL,
  isChannelBuffer,
  OK,
  type Ring,
  ringFor,
  waitAsync,
  waitSync,
} from "./_ring.ts";

/** Options of {@linkcode syncChannel}. */
export interface SyncChannelOptions {
  /**
   * Bytes of payload each slot holds, rounded up to a multiple of 8. A
   * message is one slot: a string or JSON text longer than this in UTF-8, or
   * a larger `Uint8Array`, cannot be sent.
   *
   * @default {1024}
   */
  slotSize?: number;
  /**
   * Microseconds a waiting call (`send`, `sendSync`, `recv`, `recvSync`)
   * polls the channel before it goes to sleep, from 0 to 1,000. Being woken
   * costs tens of µs on a busy machine; a peer that answers within the poll
   * costs nothing. The poll is bounded: after it the thread sleeps in
   * `Atomics.wait`/`Atomics.waitAsync` and uses no CPU. 0 sleeps at once.
   *
   * @default {20 on a machine with more than one core, else 0}
   */
  spin?: number;
}

/** Options of every call that can wait. */
export interface WaitOptions {
  /** Stops the wait: the call rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Stops the wait after this many milliseconds with a {@linkcode TimeoutError}. */
  timeout?: number;
}

/** Options of the blocking calls (`sendSync`, `recvSync`). A blocked thread cannot observe a signal. */
export interface SyncWaitOptions {
  /** Stops the wait after this many milliseconds with a {@linkcode TimeoutError}. */
  timeout?: number;
}

/** The result of {@linkcode SyncSender.prototype.trySend}. */
export type TrySendResult<T> =
  | { ok: true }
  | { ok: false; reason: "full" | "closed"; value: T };

/** The result of {@linkcode SyncReceiver.prototype.tryRecv}. */
export type TryRecvResult<T> =
  | { ok: true; value: T }
  | { ok: false; reason: "empty" | "closed" };

/**
 * A channel end as plain data, to hand to another thread with `postMessage`.
 * It stands for one end: pass it to `SyncSender.from()` or
 * `SyncReceiver.from()` exactly once. Made by `share()`.
 */
export interface ChannelEndDescriptor {
  /** Which end this is. */
  readonly kind: "sender" | "receiver";
  /** The channel's memory. */
  readonly buffer: SharedArrayBuffer;
}

/**
 * Creates a bounded channel and returns its two ends, `[sender, receiver]`.
 *
 * Like Rust's `sync_channel`: at most `capacity` messages wait in the
 * channel, and a sender waits for room (backpressure). Capacity 0 makes a
 * rendezvous channel: a `send` completes only once a receiver has taken the
 * value.
 *
 * Either end can be used in any thread: `share()` makes a plain descriptor
 * that survives `postMessage`, and `SyncSender.from()` / `SyncReceiver.from()`
 * open it on the other side. See {@linkcode SyncSender} for the guarantees.
 *
 * Memory: one SharedArrayBuffer of about `1.3 KiB + ring × (slotSize + 32)`
 * bytes, where `ring` is `capacity` rounded up to a power of two (at least 2).
 * With the defaults, `syncChannel(64)` takes about 67 KiB.
 *
 * @typeParam T The type of the messages.
 * @param capacity How many messages can wait in the channel, from 0 (rendezvous) to 16,777,216.
 * @param options The slot size.
 * @returns The sender and the receiver.
 * @throws {RangeError} When `capacity` or `slotSize` is not an accepted integer.
 *
 * @example Send and receive in one thread
 * ```ts
 * import { syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<{ n: number }>(4);
 * await tx.send({ n: 1 });
 * tx.close();
 * assert.deepStrictEqual(await rx.recv(), { n: 1 });
 * assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "closed" });
 * ```
 *
 * @example Hand the sender to a worker
 * ```ts
 * import { SyncSender, syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<number>(8);
 * const code = `
 *   import { SyncSender } from ${JSON.stringify(import.meta.resolve("./channel.ts"))};
 *   self.onmessage = async (e) => {
 *     const tx = await SyncSender.from(e.data);
 *     for (let i = 0; i < 100; i++) tx.sendSync(i);
 *     tx.close();
 *   };`;
 * const worker = new Worker(`data:text/javascript,${encodeURIComponent(code)}`, { type: "module" });
 * worker.postMessage(tx.share());
 * tx.close(); // the worker holds its own sender now
 * let sum = 0;
 * for await (const n of rx) sum += n;
 * assert.strictEqual(sum, 4950);
 * worker.terminate();
 * ```
 */
export function syncChannel<T>(
  capacity: number,
  options: SyncChannelOptions = {},
): [SyncSender<T>, SyncReceiver<T>] {
  const spin = options.spin ?? (navigator.hardwareConcurrency > 1 ? DEFAULT_SPIN : 0);
  if (typeof spin !== "number" || !Number.isInteger(spin) || spin < 0 || spin > MAX_SPIN) {
    throw new RangeError(
      `Cannot create channel as 'spin' must be an integer number of microseconds from 0 to ${MAX_SPIN}: current value is ${
        String(spin)
      }`,
    );
  }
  const buffer = createBuffer(capacity, options.slotSize ?? DEFAULT_SLOT_SIZE, spin);
  const ring = ringFor(buffer);
  return [
    newSender<T>(ring, attach(ring.i32, "sender")),
    newReceiver<T>(ring, attach(ring.i32, "receiver")),
  ];
}

function ringOf(descriptor: ChannelEndDescriptor, kind: "sender" | "receiver"): Ring {
  if (descriptor?.kind !== kind || !isChannelBuffer(descriptor.buffer)) {
    throw new TypeError(
      `Cannot open a ${kind} end: the argument is not a ${kind} descriptor; pass what ${
        kind === "sender" ? "SyncSender" : "SyncReceiver"
      }.prototype.share() returned`,
    );
  }
  return ringFor(descriptor.buffer);
}

const DEFAULT_SPIN = 20;
const MAX_SPIN = 1000;

let newSender: <T>(ring: Ring, holder: Holder | null) => SyncSender<T>;
let newReceiver: <T>(ring: Ring, holder: Holder | null) => SyncReceiver<T>;

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

  static {
    newSender = <T>(core: Ring, holder: Holder | null) => new SyncSender<T>(core, holder);
  }

  private constructor(core: Ring, holder: Holder | null) {
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
   * `from()` exactly once, or the channel never sees its senders all closed.
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
        await this.#handoff(this.#core.lastPos, value, options);
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
    if (core.capacity === 0) {
      const pos = this.#core.lastPos;
      let taken: boolean | number;
      try {
        taken = waitSync(
          core,
          SEND_EPOCH,
          SEND_WAITERS,
          false,
          () => this.#handedOff(pos),
          options,
          "hand over",
        );
      } catch (error) {
        // Timed out: take the value back, unless a receiver took it just now.
        if (this.#reclaim(pos)) throw error;
        return;
      }
      if (taken === CLOSED) throw this.#closedError(value);
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

  /** Rendezvous: `true` once a receiver claimed position `pos`, `CLOSED` when none is left, else `false`. */
  #handedOff(pos: number): boolean | number {
    const i32 = this.#core.i32;
    if (((Atomics.load(i32, HEAD) - pos) | 0) > 0) return true;
    if (Atomics.load(i32, RECEIVERS) === 0 && this.#reclaim(pos)) return CLOSED;
    return false;
  }

  /** Rendezvous: waits for a receiver to take position `pos`; on failure takes the value back. */
  async #handoff(pos: number, value: T, options: WaitOptions): Promise<void> {
    let taken: boolean | number;
    try {
      taken = await waitAsync(
        this.#core,
        SEND_EPOCH,
        SEND_WAITERS,
        false,
        () => this.#handedOff(pos),
        options,
        "hand over",
      );
    } catch (error) {
      if (this.#reclaim(pos)) throw error;
      return; // a receiver took it just in time: the send succeeded
    }
    if (taken === CLOSED) throw this.#closedError(value);
  }

  #reclaim(pos: number): boolean {
    return this.#core.reclaim(pos);
  }

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

/**
 * The receiving end of a {@linkcode syncChannel}.
 *
 * Receivers share the queue: each message goes to exactly one of them, in the
 * order of the queue. Once every sender end is closed, receivers still get
 * every queued message, then see the end: `recv` rejects with a
 * {@linkcode ChannelClosedError}, `tryRecv` returns `{ ok: false, reason: "closed" }`
 * and iteration (`for await`, or `for` with blocking waits in workers) ends.
 *
 * Threads: `share()` reserves a new receiver end for another thread; open it
 * there with `await SyncReceiver.from(descriptor)`. See {@linkcode SyncSender}
 * for what happens when a thread dies holding ends.
 *
 * @typeParam T The type of the messages.
 */
export class SyncReceiver<T> implements AsyncIterable<T>, Iterable<T> {
  readonly #core: Ring;
  readonly #scratch: Uint8Array;
  #holder: Holder | null;
  #closed = false;

  static {
    newReceiver = <T>(core: Ring, holder: Holder | null) => new SyncReceiver<T>(core, holder);
  }

  private constructor(core: Ring, holder: Holder | null) {
    this.#core = core;
    this.#holder = holder;
    this.#scratch = new Uint8Array(core.slotBytes);
  }

  /**
   * Opens, in this thread, a receiver end that another thread made with
   * `share()`. Resolves once the end is registered, so that the other threads
   * notice if this one dies.
   *
   * @param descriptor What `share()` returned, received through `postMessage`.
   * @returns The receiver.
   * @throws {TypeError} When `descriptor` is not a receiver descriptor.
   *
   * @example Open a shared receiver
   * ```ts
   * import { SyncReceiver, syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(2);
   * const other = await SyncReceiver.from<number>(rx.share());
   * await tx.send(5);
   * assert.strictEqual(await other.recv(), 5);
   * ```
   */
  static async from<T>(
    descriptor: ChannelEndDescriptor,
  ): Promise<SyncReceiver<T>> {
    const core = ringOf(descriptor, "receiver");
    const holder = attach(core.i32, "receiver");
    await holder?.ready;
    return new SyncReceiver<T>(core, holder);
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
   * Makes another receiver end of the same channel in this thread.
   *
   * @returns A new, independent receiver; close each one.
   * @throws {ChannelClosedError} When this end is closed.
   *
   * @example Two consumers share the queue
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, a] = syncChannel<number>(2);
   * const b = a.clone();
   * tx.trySend(1);
   * tx.trySend(2);
   * assert.deepStrictEqual([await a.recv(), await b.recv()], [1, 2]);
   * ```
   */
  clone(): SyncReceiver<T> {
    this.#checkOpen("clone");
    Atomics.add(this.#core.i32, RECEIVERS, 1);
    return new SyncReceiver<T>(this.#core, attach(this.#core.i32, "receiver"));
  }

  /**
   * Reserves a new receiver end for another thread and returns it as plain
   * data for `postMessage`; open it there with `SyncReceiver.from()`, exactly once.
   *
   * @returns The descriptor.
   * @throws {ChannelClosedError} When this end is closed.
   *
   * @example Share with a worker
   * ```ts ignore
   * worker.postMessage(rx.share());
   * // in the worker: const rx = await SyncReceiver.from(event.data);
   * ```
   */
  share(): ChannelEndDescriptor {
    this.#checkOpen("share");
    Atomics.add(this.#core.i32, RECEIVERS, 1);
    return {
      kind: "receiver",
      buffer: this.#core.i32.buffer as SharedArrayBuffer,
    };
  }

  /**
   * Receives without waiting.
   *
   * @returns `{ ok: true, value }`, or `{ ok: false, reason }` with `reason`
   * `"empty"`, or `"closed"` once every sender is gone and the queue is drained.
   *
   * @example Poll a channel
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<string>(1);
   * assert.deepStrictEqual(rx.tryRecv(), { ok: false, reason: "empty" });
   * tx.trySend("x");
   * assert.deepStrictEqual(rx.tryRecv(), { ok: true, value: "x" });
   * ```
   */
  tryRecv(): TryRecvResult<T> {
    if (this.#closed) return { ok: false, reason: "closed" };
    const value = this.#attempt();
    if (value === EMPTY) return { ok: false, reason: "empty" };
    if (value === DISCONNECTED) return { ok: false, reason: "closed" };
    return { ok: true, value };
  }

  /**
   * Receives, waiting while the channel is empty.
   *
   * @param options A signal and a timeout for the wait.
   * @returns The next message.
   * @throws {ChannelClosedError} When every sender is gone and the queue is
   * drained, or this end is closed.
   * @throws {TimeoutError} When `timeout` ran out.
   * Rejects with the signal's reason when it aborts; nothing was taken.
   *
   * @example Wait for a message
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(1);
   * setTimeout(() => tx.trySend(42), 5);
   * assert.strictEqual(await rx.recv({ timeout: 5000 }), 42);
   * ```
   */
  async recv(options: WaitOptions = {}): Promise<T> {
    let value = this.#closed ? DISCONNECTED : this.#attempt();
    if (value === EMPTY) value = await this.#wait(options);
    if (value === DISCONNECTED || value === EMPTY) throw this.#endError();
    return value;
  }

  /**
   * Receives, blocking the thread while the channel is empty (`Atomics.wait`).
   * For workers; on the main thread prefer `recv`.
   *
   * @param options A timeout for the wait.
   * @returns The next message.
   * @throws {ChannelClosedError} When every sender is gone and the queue is drained.
   * @throws {TimeoutError} When `timeout` ran out.
   *
   * @example Block for a message
   * ```ts
   * import { syncChannel, TimeoutError } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(1);
   * assert.throws(() => rx.recvSync({ timeout: 5 }), TimeoutError);
   * tx.sendSync(1);
   * assert.strictEqual(rx.recvSync(), 1);
   * ```
   */
  recvSync(options: SyncWaitOptions = {}): T {
    const value = this.#take(options);
    if (value === DISCONNECTED || value === EMPTY) throw this.#endError();
    return value;
  }

  /**
   * Iterates over messages until the channel ends, waiting with `Atomics.waitAsync`.
   *
   * @example Drain a channel
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(4);
   * for (const n of [1, 2, 3]) await tx.send(n);
   * tx.close();
   * const seen = [];
   * for await (const n of rx) seen.push(n);
   * assert.deepStrictEqual(seen, [1, 2, 3]);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      let value = this.#closed ? DISCONNECTED : this.#attempt();
      if (value === EMPTY) value = await this.#wait({});
      if (value === DISCONNECTED) return;
      yield value as T;
    }
  }

  /**
   * Iterates over messages until the channel ends, blocking the thread
   * between them (`Atomics.wait`). For workers.
   *
   * @example Drain a channel synchronously
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<string>(2);
   * tx.sendSync("a");
   * tx.sendSync("b");
   * tx.close();
   * assert.deepStrictEqual([...rx], ["a", "b"]);
   * ```
   */
  *[Symbol.iterator](): Iterator<T> {
    for (;;) {
      const value = this.#take({});
      if (value === DISCONNECTED || value === EMPTY) return;
      yield value;
    }
  }

  /**
   * Closes this end (idempotent). When the last receiver end closes, senders
   * fail with a {@linkcode ChannelClosedError} and queued messages are dropped.
   *
   * @example Close the only receiver
   * ```ts
   * import { syncChannel } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const [tx, rx] = syncChannel<number>(1);
   * rx.close();
   * assert.deepStrictEqual(tx.trySend(1), { ok: false, reason: "closed", value: 1 });
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const core = this.#core;
    if (this.#holder !== null) detach(core.i32, this.#holder, "receiver");
    this.#holder = null;
    if (Atomics.sub(core.i32, RECEIVERS, 1) === 1) core.wakeAll(SEND_EPOCH);
    core.wakeAll(RECV_EPOCH);
  }

  /** Closes this end, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** A message, blocking the thread while there is none; `DISCONNECTED` at the end. */
  #take(options: SyncWaitOptions): T | typeof EMPTY | typeof DISCONNECTED {
    if (this.#closed) return DISCONNECTED;
    const value = this.#attempt();
    if (value !== EMPTY) return value;
    return waitSync(
      this.#core,
      RECV_EPOCH,
      RECV_WAITERS,
      EMPTY,
      this.#attemptNow,
      options,
      "receive",
    );
  }

  /** `#attempt` as a function, made once (the blocking path calls it in a loop). */
  readonly #attemptNow = (): T | typeof EMPTY | typeof DISCONNECTED =>
    this.#closed ? DISCONNECTED : this.#attempt();

  #wait(options: WaitOptions): Promise<T | typeof EMPTY | typeof DISCONNECTED> {
    return waitAsync<T | typeof EMPTY | typeof DISCONNECTED>(
      this.#core,
      RECV_EPOCH,
      RECV_WAITERS,
      EMPTY,
      () => this.#closed ? DISCONNECTED : this.#attempt(),
      options,
      "receive",
    );
  }

  /** A message, `EMPTY`, or `DISCONNECTED` once every sender is gone and the queue is drained. */
  #attempt(): T | typeof EMPTY | typeof DISCONNECTED {
    const value = this.#pop();
    if (value !== EMPTY) return value;
    if (Atomics.load(this.#core.i32, SENDERS) !== 0) return EMPTY;
    // Senders publish before they close: a second look sees every message.
    const last = this.#pop();
    return last === EMPTY ? DISCONNECTED : last;
  }

  #pop(): T | typeof EMPTY {
    return this.#core.pop(this.#scratch) as T | typeof EMPTY;
  }

  #checkOpen(action: string): void {
    if (this.#closed) {
      throw new ChannelClosedError(
        `Cannot ${action}: this receiver end is closed`,
      );
    }
  }

  #endError(): ChannelClosedError {
    return new ChannelClosedError(
      this.#closed
        ? "Cannot receive: this receiver end is closed"
        : "Cannot receive: every sender of the channel is closed and the queue is drained",
    );
  }
}
