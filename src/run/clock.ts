/**
 * The clock a `Scheduler` reads and sets its timers with: the system's by
 * default, or one a test drives (so that a test of ticks a minute apart
 * does not sleep for minutes).
 *
 * @module
 */

/**
 * Time for a scheduler: what time it is, and timers. A test passes one
 * whose time it moves itself.
 */
export interface Clock {
  /** Now, in ms since the Unix epoch. */
  now(): number;
  /**
   * Calls `fn` once after `ms` milliseconds (at most 2^31 − 1: longer waits
   * are chained by the scheduler). Returns a handle for `clearTimer`.
   */
  setTimer(fn: () => void, ms: number): unknown;
  /** Cancels a timer `setTimer` returned (a fired or cleared one is fine). */
  clearTimer(handle: unknown): void;
}

/**
 * The system's clock: `Date.now()` and `setTimeout`.
 *
 * @example Read the time
 * ```ts
 * import { systemClock } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert(Math.abs(systemClock.now() - Date.now()) < 1000);
 * ```
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
