/**
 * Inside a pool worker: the abort signal of the task being run.
 *
 * @module
 */

import { SIGNAL_SLOT } from "./_protocol.ts";

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
