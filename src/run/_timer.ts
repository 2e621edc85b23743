/**
 * A timer at an instant of a scheduler's clock, however far away: waits
 * longer than one timer holds (2^31 − 1 ms) are chained.
 *
 * @module
 */

import { MAX_TIMER_MS } from "../_util.ts";
import type { Clock } from "./clock.ts";

/**
 * Calls `fn` at instant `when` (ms since the epoch) of `clock`, chaining
 * timers for a wait longer than one timer holds. Returns a cancel function.
 */
export function atInstant(clock: Clock, when: number, fn: () => void): () => void {
  let handle: unknown;
  let cancelled = false;
  const arm = () => {
    const wait = when - clock.now();
    if (wait <= 0) return fn();
    handle = clock.setTimer(() => {
      if (!cancelled) arm();
    }, Math.min(wait, MAX_TIMER_MS));
  };
  arm();
  return () => {
    cancelled = true;
    clock.clearTimer(handle);
  };
}
