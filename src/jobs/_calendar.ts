/**
 * Calendar sums on wall-clock readings, away from any time zone: a reading
 * is held as the epoch ms it would be in UTC.
 *
 * @module
 */

/**
 * A wall-clock reading as the epoch ms it would be in UTC: how `cron.ts`
 * does its calendar sums, away from any zone. Years 0 to 99 are years, not
 * 1900 to 1999 as `Date.UTC` has them.
 *
 * @param year The year (0 is 1 BC).
 * @param month 1 to 12.
 * @param day 1 to 31.
 * @param hour 0 to 23.
 * @param minute 0 to 59.
 * @param second 0 to 59.
 * @returns Epoch ms.
 *
 * @example Years below 100
 * ```ts
 * import { wallClock } from "./_calendar.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(new Date(wallClock(45, 3, 15, 12, 0, 0)).toISOString(), "0045-03-15T12:00:00.000Z");
 * ```
 */
export function wallClock(
  year: number,
  month: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
): number {
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (year >= 0 && year < 100) return new Date(ms).setUTCFullYear(year, month - 1, day);
  return ms;
}

/**
 * Days in `month` of `year`, by the Gregorian rules.
 *
 * @param year The year.
 * @param month 1 to 12.
 * @returns 28 to 31.
 *
 * @example February
 * ```ts
 * import { daysInMonth } from "./_calendar.ts";
 * import assert from "node:assert";
 *
 * assert.deepStrictEqual([2024, 2026, 2100, 2000].map((y) => daysInMonth(y, 2)), [29, 28, 28, 29]);
 * ```
 */
export function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}
