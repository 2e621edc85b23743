/**
 * The queue's timing on the wire: how long the client waits for a blocking
 * read (BLMOVE, XREAD BLOCK), and how long a loop waits before it tries a
 * read or write again after a lost connection.
 *
 * @module
 */

import { backoff } from "../_util.ts";

/**
 * A blocking command's timeout: its block time plus the command timeout,
 * so a server that answers only when the block ends is not taken for a
 * dead one; 0 (no timeout) when the command timeout is 0.
 *
 * @param blockMs How long the server blocks, in ms.
 * @param commandTimeout The client's `commandTimeout` (absent: the client's default, 10 s).
 * @returns The `timeout` to send the command with.
 *
 * @example Block for 2 seconds
 * ```ts
 * import { withBlock } from "./_timing.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(withBlock(2000), 12_000);
 * assert.strictEqual(withBlock(2000, 0), 0);
 * ```
 */
export function withBlock(blockMs: number, commandTimeout = 10_000): number {
  return commandTimeout === 0 ? 0 : blockMs + commandTimeout;
}

/**
 * The wait before retry number `retry` (1 for the first) of a read or write
 * whose connection was lost: 50 ms doubling to 2 s, with jitter, so that
 * consumers cut off together do not all come back at once.
 *
 * @param retry How many times it failed in a row.
 * @returns Milliseconds to wait.
 *
 * @example The first and a late retry
 * ```ts
 * import { retryWait } from "./_timing.ts";
 * import assert from "node:assert";
 *
 * const first = retryWait(1);
 * assert(first >= 25 && first <= 75);
 * assert(retryWait(20) <= 2000);
 * ```
 */
export function retryWait(retry: number): number {
  return backoff(retry, 50, 2000);
}
