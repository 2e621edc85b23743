/**
 * The public types of a sync channel: its options, the options of calls that
 * wait, the results of the `try*` calls, and the plain-data form of an end.
 *
 * @module
 */

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
 * `SyncReceiver.from()` once (a second opening throws). Made by `share()`.
 */
export interface ChannelEndDescriptor {
  /** Which end this is. */
  readonly kind: "sender" | "receiver";
  /** The channel's memory. */
  readonly buffer: SharedArrayBuffer;
  /**
   * Four bytes of shared memory that the first `from()` marks as opened
   * (every copy of the descriptor shares them), so a second `from()` of the
   * same descriptor, in any thread, fails instead of counting one end twice.
   */
  readonly claim: SharedArrayBuffer;
}
