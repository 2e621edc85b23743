/**
 * Cron expressions ({@linkcode parseCron}): when a recurring job fires, in a
 * time zone, computed without a package and without time zone data of our
 * own (the runtime's `Intl.DateTimeFormat` gives the offsets).
 *
 * What is read, as cron(8) and crontab(5) (cronie 1.7.2, Vixie cron) have it:
 *
 * - Five fields, `minute hour day-of-month month day-of-week`, or six with
 *   `second` first. Each is a comma-separated list of `*`, a value, a range
 *   `a-b`, or a step `*\/n`, `a-b/n` or `a/n` (from `a` to the field's end).
 *   A step runs within its field only (`*\/23` in hours is 0 and 23).
 * - Months `JAN`-`DEC` and weekdays `SUN`-`SAT` by name, in any case;
 *   weekday 0 and 7 are both Sunday, and `FRI-SUN` (5-0) is Friday to Sunday.
 * - `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`),
 *   `@hourly`, as cronie expands them.
 * - Day of month and day of week as in Vixie cron: when either field starts
 *   with `*` (`*`, `*\/2`), a day must match both; when neither does, either
 *   one is enough (`30 4 1,15 * FRI` fires on the 1st, the 15th, and
 *   Fridays).
 *
 * Not read: `L`, `W`, `#`, `?` (a `SyntaxError` says they are not
 * supported), `@reboot`, and cronie's `~` random values. A value outside its
 * field, a backwards range, a step of 0 or larger than its field, or an
 * expression that never fires (`0 0 31 2 *`: no February has a 31st) is a
 * `RangeError` at parse time, so that {@linkcode CronSchedule.next} always
 * finds a time.
 *
 * Daylight saving, as cronie's daemon treats changes of its own local
 * clock of up to three hours (cron.c: the main loop's "medium" and
 * "negative" time jumps, `find_jobs()` with `doWild`/`doNonWild`; cron(8),
 * "Daylight Saving Time and other time changes"). The seconds field plays
 * no part in telling the two kinds apart:
 *
 * - **Fixed-time schedules**, whose minute and hour fields both start with
 *   something other than `*` (`30 2 * * *`, `0 9-17 * * *`, `@daily`,
 *   `@weekly`): a local time that does not exist that day (the clock jumps
 *   from 02:00 to 03:00) fires once, at the instant of the jump (03:00 new
 *   time), however many of its times the jump skipped; a local time that
 *   occurs twice (the clock goes back from 03:00 to 02:00) fires once, at
 *   its first occurrence.
 * - **Wildcard schedules**, whose minute or hour field starts with `*`
 *   (`*\/15 * * * *`, `30 * * * *`, `@hourly`): they fire whenever the clock
 *   reads a matching time, so a skipped time does not fire and a repeated
 *   one fires twice, as cron(8) says: "jobs that run more frequently are
 *   scheduled normally".
 *
 * Unlike cronie, this holds for any change of offset: cronie treats a jump
 * of more than three hours as a correction of the clock (it runs what the
 * new time matches and nothing skipped), and a jump forward of five minutes
 * or less as a late wake-up (it runs everything skipped); no daylight-saving
 * rule in use has either. Nor is it what cronie does for a crontab's own
 * `CRON_TZ`, which its source says may miss or repeat jobs at these
 * changes (the comment atop `find_jobs()`): here every zone is treated as
 * cronie treats the system's own. (crontab(5) still says, from Vixie cron,
 * that skipped times never match and repeated ones run twice; cron(8) and
 * the code say otherwise for fixed-time jobs, and the code is followed.)
 *
 * @module
 */

import { type CronFields, parseCronFields } from "./_cron_parse.ts";
import { checkTimeZone, type Zone, zoneOf } from "./_zone.ts";
import { daysInMonth, wallClock } from "./_calendar.ts";

const SECOND = 1000;
const DAY = 86_400_000;

/** Options of {@linkcode parseCron}. */
export interface CronOptions {
  /**
   * The IANA time zone the expression reads the clock in, such as
   * `"Europe/Berlin"`: any name the runtime's `Intl.DateTimeFormat` knows.
   *
   * @default {"UTC"}
   */
  timezone?: string;
}

/**
 * When a cron expression fires, in its time zone. Made by
 * {@linkcode parseCron}; immutable, so one may serve any number of jobs.
 * `JSON.stringify` gives `{ kind, expression, timezone }`, from which
 * `parseCron` makes it again.
 */
export interface CronSchedule {
  /** Tells it from an `every` schedule. */
  readonly kind: "cron";
  /** The expression, normalised as {@linkcode CronSchedule.toString} gives it. */
  readonly expression: string;
  /**
   * The time zone: its name as given, with the runtime's capitals when only
   * the case differs (`"europe/berlin"` is `"Europe/Berlin"`).
   */
  readonly timezone: string;
  /**
   * The first time it fires strictly after `after`. Fire times are whole
   * seconds. A few microseconds a call; the first call in a zone and year
   * also reads that year's daylight-saving changes (about a millisecond).
   *
   * @param after An instant.
   * @returns The next fire time.
   * @throws {RangeError} When `after` is an invalid date, or the next fire
   * time lies beyond what a `Date` holds (the year 275760).
   */
  next(after: Date): Date;
  /**
   * The normalised expression: fields separated by single spaces, month and
   * weekday names in upper case, a macro by its first name (`@annually` is
   * `@yearly`, `@midnight` is `@daily`). Parsed again, it gives the same
   * schedule.
   */
  toString(): string;
}

/**
 * Parses a cron expression (five fields, six with seconds first, or a macro
 * such as `@daily`) in a time zone. The module doc lists what is read, and
 * what happens when daylight saving moves the clock.
 *
 * @param expression The expression, such as `"30 2 * * *"` or `"0 9 * * MON-FRI"`.
 * @param options The time zone.
 * @returns The schedule.
 * @throws {SyntaxError} When the expression is malformed, or uses `L`, `W`,
 * `#`, `?` or `@reboot`: the message quotes the expression, names the field
 * and says how to fix it.
 * @throws {RangeError} When a value is out of its field's range
 * (`"0 25 * * *": hour 25 is out of range 0-23`), the expression never fires,
 * or the time zone is unknown (the message suggests the closest valid name).
 * @throws {TypeError} When `expression` or `timezone` is not a string.
 *
 * @example Every night at 02:30 in Berlin
 * ```ts
 * import { parseCron } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const nightly = parseCron("30 2 * * *", { timezone: "Europe/Berlin" });
 * // 02:30 in Berlin is 01:30 UTC in winter…
 * assert.strictEqual(
 *   nightly.next(new Date("2026-01-15T12:00:00Z")).toISOString(),
 *   "2026-01-16T01:30:00.000Z",
 * );
 * // …and on 29 March 2026 there is no 02:30: the clock jumps from 02:00 to
 * // 03:00, and the job fires once, at the jump.
 * assert.strictEqual(
 *   nightly.next(new Date("2026-03-28T12:00:00Z")).toISOString(),
 *   "2026-03-29T01:00:00.000Z",
 * );
 * ```
 *
 * @example Errors name the field
 * ```ts
 * import { parseCron } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert.throws(() => parseCron("0 25 * * *"), {
 *   name: "RangeError",
 *   message: '"0 25 * * *": hour 25 is out of range 0-23',
 * });
 * ```
 */
export function parseCron(expression: string, options: CronOptions = {}): CronSchedule {
  if (typeof expression !== "string") {
    throw new TypeError(
      `Cannot parse cron expression as it must be a string: current value is ${typeof expression}`,
    );
  }
  const { timezone = "UTC" } = options;
  if (typeof timezone !== "string") {
    throw new TypeError(
      `Cannot parse cron expression as 'timezone' must be a string: current value is ${typeof timezone}`,
    );
  }
  const fields = parseCronFields(expression);
  return new Cron(fields, checkTimeZone(timezone));
}

/** The last instant a `Date` holds, epoch ms. */
const MAX_DATE = 8.64e15;

/** The year after the last a `Date` reaches (its range ends on 13 September 275760). */
const END_YEAR = 275_761;

/** The implementation of {@linkcode CronSchedule}. */
class Cron implements CronSchedule {
  readonly kind = "cron" as const;
  readonly expression: string;
  readonly timezone: string;
  #zone: Zone;
  #fields: CronFields;
  // For each field, the first allowed value at or after each value (-1 for
  // none): the search below jumps instead of stepping.
  #nextSecond: Int8Array;
  #nextMinute: Int8Array;
  #nextHour: Int8Array;
  #nextMonth: Int8Array;

  constructor(fields: CronFields, timezone: string) {
    this.expression = fields.text;
    this.timezone = timezone;
    this.#zone = zoneOf(timezone);
    this.#fields = fields;
    this.#nextSecond = nextTable(fields.seconds, 60);
    this.#nextMinute = nextTable(fields.minutes, 60);
    this.#nextHour = nextTable(fields.hours, 24);
    this.#nextMonth = nextTable(fields.months, 13);
  }

  next(after: Date): Date {
    const ms = after.getTime();
    if (Number.isNaN(ms)) {
      throw new RangeError(
        "Cannot compute the next fire time as 'after' must be a valid date: current value is Invalid Date",
      );
    }
    // Fire times are whole seconds: the first one strictly after `after`.
    const from = Math.floor(ms / SECOND) * SECOND + SECOND;
    if (from > MAX_DATE) {
      throw new RangeError(
        `Cannot compute the next fire time as 'after' must be before the end of Date's range: current value is ${after.toISOString()}`,
      );
    }
    return new Date(this.#zone.isUtc ? this.#nextLocal(from) : this.#nextIn(from));
  }

  toString(): string {
    return this.expression;
  }

  /**
   * The first fire instant at or after `from` (a whole second), in the zone.
   * It walks the zone's stretches of constant offset: in each, the first
   * matching wall-clock time is a fire time unless the offset changes
   * before it, in which case the walk goes on from that change. A
   * fixed-time schedule also fires at a jump forward whose skipped times
   * hold a match, and skips the times a step back repeats.
   */
  #nextIn(from: number): number {
    const zone = this.#zone;
    for (;;) {
      const offset = zone.offsetAt(from);
      let local = from + offset;
      if (this.#fields.fixedTime) {
        const last = zone.transitionWithinDayBefore(from);
        if (last !== undefined && last.after > last.before) {
          // The clock jumped at `from`: a skipped time that matches fires now, once.
          const gap = last.at + last.before;
          if (last.at === from && this.#nextLocal(gap) < last.at + last.after) return from;
        } else if (last !== undefined) {
          // The clock went back: what it reads again until `last.at + before` has fired.
          local = Math.max(local, last.at + last.before);
        }
      }
      const candidate = this.#nextLocal(local) - offset;
      const change = zone.transitionAfter(from, candidate);
      if (change === undefined) return candidate;
      from = change.at;
    }
  }

  /**
   * The first matching wall-clock time at or after `from`, both as epoch ms
   * read as UTC (no zone here: plain calendar sums). Each step moves to the
   * next allowed value of one field and resets the smaller ones; the year
   * bound only guards the loop, since `parseCronFields` refuses what never
   * fires and anything else fires within 400 years.
   */
  #nextLocal(from: number): number {
    const start = new Date(Math.ceil(from / SECOND) * SECOND);
    let year = start.getUTCFullYear(), month = start.getUTCMonth() + 1, day = start.getUTCDate();
    let hour = start.getUTCHours(), minute = start.getUTCMinutes(), second = start.getUTCSeconds();
    const limit = Math.min(year + 401, END_YEAR);
    while (year < limit) {
      const m = this.#nextMonth[month];
      if (m !== month) {
        if (m < 0) year++;
        month = m < 0 ? this.#nextMonth[1] : m;
        day = 1, hour = 0, minute = 0, second = 0;
        continue;
      }
      if (day > daysInMonth(year, month)) {
        month++, day = 1, hour = 0, minute = 0, second = 0;
        if (month > 12) month = 1, year++;
        continue;
      }
      if (!this.#dayMatches(year, month, day)) {
        day++, hour = 0, minute = 0, second = 0;
        continue;
      }
      const h = this.#nextHour[hour];
      if (h < 0) {
        day++, hour = 0, minute = 0, second = 0;
        continue;
      }
      if (h !== hour) hour = h, minute = 0, second = 0;
      const mi = this.#nextMinute[minute];
      if (mi < 0) {
        hour++, minute = 0, second = 0;
        continue;
      }
      if (mi !== minute) minute = mi, second = 0;
      const s = this.#nextSecond[second];
      if (s < 0) {
        minute++, second = 0;
        continue;
      }
      const found = wallClock(year, month, day, hour, minute, s);
      if (!(found <= MAX_DATE)) break;
      return found;
    }
    throw new RangeError(
      `Cannot compute the next fire time of "${this.expression}" after ${
        new Date(from).toISOString()
      }: none within ${limit === END_YEAR ? "the range of Date" : "400 years"}`,
    );
  }

  /** Whether a date matches day of month and day of week, as Vixie cron combines them. */
  #dayMatches(year: number, month: number, day: number): boolean {
    const fields = this.#fields;
    const byDay = fields.days[day];
    if (!byDay && fields.bothDays) return false;
    // 1 January 1970 was a Thursday (4).
    const weekday = (Math.floor(wallClock(year, month, day, 0, 0, 0) / DAY) % 7 + 11) % 7;
    const byWeekday = fields.weekdays[weekday];
    return fields.bothDays ? byWeekday : byDay || byWeekday;
  }
}

/** For each value below `size`, the first allowed value at or after it, else -1; and -1 at `size`. */
function nextTable(allowed: boolean[], size: number): Int8Array {
  const table = new Int8Array(size + 1).fill(-1);
  for (let value = size - 1; value >= 0; value--) {
    table[value] = allowed[value] ? value : table[value + 1];
  }
  return table;
}
