/**
 * A clock a test moves itself, for the scheduler's `clock` option: ticks a
 * minute apart without waiting a minute.
 *
 * @module
 */

import type { Clock } from "../mod.ts";

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

/** A `Clock` whose time moves only when the test says so. */
export class ManualClock implements Clock {
  #now: number;
  #timers: Timer[] = [];
  #nextId = 1;

  /** @param start The time it starts at, ms since the epoch. */
  constructor(start: number) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((timer) => timer.id !== handle);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /**
   * Moves the time forward by `ms` without firing a timer, as on a machine
   * that slept: the timers that came due fire at the next `advance()`, late.
   */
  jump(ms: number): void {
    this.#now += ms;
  }

  /**
   * Moves the time forward by `ms`, firing each timer that comes due on
   * the way, in time order, at its own time (a timer set by another one
   * fires too if it falls within `ms`).
   */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      let first: Timer | undefined;
      for (const timer of this.#timers) {
        if (first === undefined || timer.at < first.at) first = timer;
      }
      if (first === undefined || first.at > until) break;
      this.#timers = this.#timers.filter((timer) => timer !== first);
      this.#now = Math.max(this.#now, first.at); // a late timer fires now, not in the past
      first.fn();
    }
    this.#now = until;
  }
}

/**
 * Collects a run's results as they come (`onFinish`), and waits for a
 * number of them: for tests that move a clock and must know a run ended.
 */
export class Finished<T> {
  readonly list: T[] = [];
  #waiter: (() => void) | undefined;

  /** For the scheduler's `onFinish`. */
  readonly onFinish = (result: T): void => {
    this.list.push(result);
    this.#waiter?.();
  };

  /** Resolves once `n` results have come (a safety net fails it after 20 s). */
  async results(n: number): Promise<T[]> {
    const deadline = performance.now() + 20_000;
    while (this.list.length < n) {
      if (performance.now() > deadline) {
        throw new Error(`only ${this.list.length} of ${n} results`);
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.list;
  }
}
