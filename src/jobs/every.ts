/**
 * `every` schedules ({@linkcode parseEvery}): a tick every so long, counted
 * from the Unix epoch, so that every machine, whenever it started, agrees on
 * the ticks without talking to the others.
 *
 * @module
 */

import { parseDuration } from "./duration.ts";

/**
 * A tick every {@linkcode EverySchedule.interval} ms, at the multiples of it
 * since the Unix epoch (1970-01-01T00:00:00Z). Made by
 * {@linkcode parseEvery}; immutable. `JSON.stringify` gives
 * `{ kind, interval }`, from which `parseEvery(interval)` makes it again.
 */
export interface EverySchedule {
  /** Tells it from a cron schedule. */
  readonly kind: "every";
  /** Milliseconds between ticks: a whole number, at least 1. */
  readonly interval: number;
  /**
   * The first tick strictly after `after`: the next multiple of
   * {@linkcode EverySchedule.interval} since the epoch.
   *
   * @param after An instant.
   * @returns The next tick.
   * @throws {RangeError} When `after` is an invalid date, or the next tick
   * lies beyond what a `Date` holds.
   */
  next(after: Date): Date;
  /** The interval as a duration, in the largest unit that holds it whole (`"5m"`, `"1500ms"`). */
  toString(): string;
}

/**
 * Parses the `every` of a recurring job: a duration such as `"30s"` or
 * `"5m"` (as {@linkcode parseDuration} reads it) or a number of ms. Ticks are
 * aligned to the Unix epoch, not to when a run started: an interval that does
 * not divide a day (`"7m"`) does not fall on the hour. Wall clocks and their
 * time zones play no part.
 *
 * @param duration The interval.
 * @returns The schedule.
 * @throws {SyntaxError} When `duration` is not a duration.
 * @throws {RangeError} When it is 0 or not a whole number of milliseconds.
 *
 * @example Every 5 minutes, on the epoch's grid
 * ```ts
 * import { parseEvery } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const schedule = parseEvery("5m");
 * assert.strictEqual(
 *   schedule.next(new Date("2026-12-01T10:07:30Z")).toISOString(),
 *   "2026-12-01T10:10:00.000Z",
 * );
 * // Strictly after: a tick gives the one that follows it.
 * assert.strictEqual(
 *   schedule.next(new Date("2026-12-01T10:10:00Z")).toISOString(),
 *   "2026-12-01T10:15:00.000Z",
 * );
 * assert.strictEqual(String(schedule), "5m");
 * ```
 */
export function parseEvery(duration: string | number): EverySchedule {
  const interval = parseDuration(duration);
  const shown = typeof duration === "string" ? JSON.stringify(duration) : String(duration);
  if (interval === undefined) {
    throw new SyntaxError(
      `${shown}: expected a duration such as "30s", "5m", "1h" or a number of ms`,
    );
  }
  if (interval < 1 || !Number.isInteger(interval)) {
    throw new RangeError(`${shown}: expected a whole number of milliseconds, at least 1ms`);
  }
  return new Every(interval);
}

/** Units for {@linkcode EverySchedule.toString}, largest first. */
const UNITS: [string, number][] = [["h", 3_600_000], ["m", 60_000], ["s", 1000], ["ms", 1]];

/** The implementation of {@linkcode EverySchedule}. */
class Every implements EverySchedule {
  readonly kind = "every" as const;
  readonly interval: number;

  constructor(interval: number) {
    this.interval = interval;
  }

  next(after: Date): Date {
    const ms = after.getTime();
    if (Number.isNaN(ms)) {
      throw new RangeError(
        "Cannot compute the next tick as 'after' must be a valid date: current value is Invalid Date",
      );
    }
    const tick = new Date((Math.floor(ms / this.interval) + 1) * this.interval);
    if (Number.isNaN(tick.getTime())) {
      throw new RangeError(
        `Cannot compute the next tick as 'after' must be before the end of Date's range: current value is ${after.toISOString()}`,
      );
    }
    return tick;
  }

  toString(): string {
    const [unit, size] = UNITS.find(([, size]) => this.interval % size === 0)!;
    return `${this.interval / size}${unit}`;
  }
}
