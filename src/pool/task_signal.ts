/**
 * Inside a pool worker: the abort signal of the task being run, and how it
 * reports its progress.
 *
 * @module
 */

import { PROGRESS_SLOT, SIGNAL_SLOT } from "./_protocol.ts";

const never: AbortSignal = new AbortController().signal;

/**
 * The `AbortSignal` of the task that is being called, for cooperative
 * cancellation inside a pool worker. Call it synchronously at the start of
 * the task (before any `await`), keep the signal, and stop when it aborts:
 * the pool aborts it when the task's `timeout` runs out or its `signal`
 * aborts, and gives it `abortGrace` milliseconds to settle before it
 * terminates the worker. A task that stops in time keeps its worker.
 *
 * Outside a task (or for a task submitted without `timeout` or `signal`) it
 * returns a signal that never aborts.
 *
 * @returns The running task's signal.
 *
 * @example A task that stops when asked
 * ```ts
 * import { taskSignal } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * export async function poll(url: string): Promise<number> {
 *   const signal = taskSignal(); // before the first await
 *   let tries = 0;
 *   while (!signal.aborted) {
 *     tries++;
 *     await new Promise((r) => setTimeout(r, 10));
 *   }
 *   return tries;
 * }
 * assert.strictEqual(taskSignal().aborted, false);
 * ```
 */
export function taskSignal(): AbortSignal {
  return (globalThis as unknown as Record<symbol, AbortSignal | undefined>)[SIGNAL_SLOT] ?? never;
}

/**
 * Reports the progress of the task that is running, inside a pool worker: a
 * number from 0 to 1, or a small JSON value (say `{ done: 40, total: 300 }`,
 * at most 4,096 characters as JSON). The caller's `onProgress` (of `run()`'s
 * task-object form, or of `map()`) gets the latest value, at most about
 * every 50 ms, never an older one after a newer, and nothing after the task
 * settled. Calls are cheap: a task may report in a tight loop (the clock is
 * read every 256th call). Outside a task it does nothing.
 *
 * @param value The progress: 0 to 1, or a JSON value.
 * @throws {RangeError} For a number outside 0 to 1, or a value too large.
 * @throws {TypeError} For a value JSON cannot hold (a BigInt, a cycle).
 *
 * @example A task that says how far it got
 * ```ts
 * import { taskProgress } from "@taskpool/taskpool";
 *
 * export function count(total: number): number {
 *   let sum = 0;
 *   for (let i = 1; i <= total; i++) {
 *     sum += i;
 *     taskProgress(i / total);
 *   }
 *   return sum;
 * }
 * count(3); // outside a pool worker, taskProgress does nothing
 * ```
 */
export function taskProgress(value: unknown): void {
  (globalThis as unknown as Record<symbol, ((value: unknown) => void) | undefined>)
    [PROGRESS_SLOT]?.(value);
}
