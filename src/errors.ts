/**
 * The errors that taskpool's callers catch.
 *
 * @module
 */

/**
 * Thrown when a channel cannot carry on: a send after every receiver is gone
 * (the unsent value is handed back in {@linkcode ChannelClosedError.value}),
 * or a receive after every sender is gone and the queue is drained.
 *
 * @example Recover the value of a failed send
 * ```ts
 * import { ChannelClosedError, syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<string>(1);
 * rx.close();
 * try {
 *   await tx.send("lost?");
 * } catch (error) {
 *   assert(error instanceof ChannelClosedError);
 *   assert.strictEqual(error.value, "lost?");
 * }
 * ```
 */
export class ChannelClosedError extends Error {
  /** The value that was not sent, or `undefined` for a failed receive. */
  readonly value: unknown;

  /**
   * @param message What closed and what the caller tried.
   * @param value The unsent value, if any.
   */
  constructor(message: string, value?: unknown) {
    super(message);
    this.name = "ChannelClosedError";
    this.value = value;
  }
}

/**
 * Thrown when a wait with a `timeout` runs out before it could complete.
 *
 * @example Catch a receive that timed out
 * ```ts
 * import { syncChannel, TimeoutError } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [_tx, rx] = syncChannel<number>(1);
 * await assert.rejects(rx.recv({ timeout: 10 }), TimeoutError);
 * ```
 */
export class TimeoutError extends Error {
  /**
   * @param message What timed out, and after how long.
   */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}
