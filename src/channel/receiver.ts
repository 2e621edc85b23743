/**
 * The receiving end of a sync channel.
 *
 * @module
 */

import { ChannelClosedError } from "../errors.ts";
import { RECEIVERS, RECV_EPOCH, RECV_WAITERS, SEND_EPOCH, SENDERS } from "./_layout.ts";
import { attach, detach, type Holder } from "./_lease.ts";
import { DISCONNECTED, EMPTY, type Ring } from "./_ring.ts";
import { waitAsync, waitSync } from "./_wait.ts";
import { ringOf } from "./_end.ts";
import type { ChannelEndDescriptor, SyncWaitOptions, TryRecvResult, WaitOptions } from "./types.ts";

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

  // Not part of the API: ends are made by syncChannel(), clone() and from().
  /** @ignore */
  constructor(core: Ring, holder: Holder | null) {
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
   * @throws {Error} When this descriptor was already opened (in any thread).
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
      claim: new SharedArrayBuffer(4),
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
