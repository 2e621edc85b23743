/**
 * The time fields of a job: when a one-off job may start (`delay`, `at`),
 * and when a recurring one runs (`cron` with its `timezone`, or `every`,
 * with `overlap` and `catchUp`). Validation calls {@linkcode readTimeFields}
 * only for a job that has one of them, so that the thousands of jobs of a
 * plain file cost nothing more.
 *
 * @module
 */

import type { CatchUp, Overlap, Schedule } from "./job_file.ts";
import { durationField, type Report, typeName } from "./_fields.ts";
import { parseCron } from "./cron.ts";
import { parseEvery } from "./every.ts";
import { checkTimeZone } from "./_zone.ts";
import { daysInMonth, wallClock } from "./_calendar.ts";

/** The time fields of a job, checked; those it does not have are `undefined`. */
export interface TimeFields {
  /** `delay`, in ms. */
  delay?: number;
  /** `at`, as epoch ms. */
  at?: number;
  /** `cron` or `every`, parsed. */
  schedule?: Schedule;
  /** `overlap`, with its default for a recurring job. */
  overlap?: Overlap;
  /** `catchUp`, with its default for a recurring job. */
  catchUp?: CatchUp;
}

/**
 * Schedules already parsed, by the text that made them, and the message of
 * those that failed: a file of thousands of jobs names the same few rules,
 * and a schedule is immutable, so jobs may share one.
 */
export type ScheduleCache = Map<string, Schedule | string>;

const OVERLAPS: Overlap[] = ["skip", "queue", "allow"];
const CATCH_UPS: CatchUp[] = ["skip", "one"];

/**
 * Whether job `raw` has any time field: the test validation makes of every
 * job before it calls {@linkcode readTimeFields}.
 *
 * @param raw A job of the file.
 * @returns `true` when it has `delay`, `at`, `cron`, `every`, `timezone`, `overlap` or `catchUp`.
 *
 * @example A plain job has none
 * ```ts
 * import { hasTimeFields } from "./_time_fields.ts";
 * import assert from "node:assert";
 *
 * assert(!hasTimeFields({ id: "a", command: ["true"] }));
 * assert(hasTimeFields({ id: "a", command: ["true"], every: "5m" }));
 * ```
 */
export function hasTimeFields(raw: Record<string, unknown>): boolean {
  return raw.cron !== undefined || raw.every !== undefined || raw.delay !== undefined ||
    raw.at !== undefined || raw.timezone !== undefined || raw.overlap !== undefined ||
    raw.catchUp !== undefined;
}

/**
 * Reads the time fields of job `index`, reporting each problem with its
 * path: a bad value, two fields that exclude each other, a field that only
 * another kind of job takes, a recurring job's `after` (which the caller
 * then leaves unread).
 *
 * @param raw The job.
 * @param index Its position in the file's `jobs`.
 * @param schedules Schedules parsed so far in this file.
 * @param report Where problems go.
 * @returns The fields, checked.
 *
 * @example A nightly job, and a bad one
 * ```ts
 * import { readTimeFields } from "./_time_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const report = (at: string, message: string) => problems.push(`${at}: ${message}`);
 * const fields = readTimeFields({ cron: "30 2 * * *", timezone: "Europe/Berlin" }, 0, new Map(), report);
 * assert.strictEqual(String(fields.schedule), "30 2 * * *");
 * assert.strictEqual(fields.overlap, "skip");
 * readTimeFields({ cron: "0 25 * * *" }, 2, new Map(), report);
 * assert.deepStrictEqual(problems, ['jobs[2].cron: "0 25 * * *": hour 25 is out of range 0-23']);
 * ```
 */
export function readTimeFields(
  raw: Record<string, unknown>,
  index: number,
  schedules: ScheduleCache,
  report: Report,
): TimeFields {
  const fields: TimeFields = {};
  const { cron, every } = raw;
  if (cron !== undefined && every !== undefined) {
    report(`jobs[${index}]`, 'has both "cron" and "every"; keep one');
  }
  const rule = cron !== undefined ? "cron" : every !== undefined ? "every" : undefined;
  if (rule === undefined) return readOneOff(raw, index, report);
  if (raw.after !== undefined) {
    report(
      `jobs[${index}].after`,
      'a recurring job cannot wait for other jobs: it runs at each tick; remove "after"',
    );
  }
  for (const key of ["delay", "at"]) {
    if (raw[key] !== undefined) {
      report(
        `jobs[${index}].${key}`,
        `a recurring job (with "${rule}") takes no "${key}": its schedule says when it runs`,
      );
    }
  }
  if (cron !== undefined) fields.schedule = readCron(raw, index, schedules, report);
  else if (raw.timezone !== undefined) {
    report(
      `jobs[${index}].timezone`,
      'only "cron" jobs take "timezone"; "every" counts from the Unix epoch, in no time zone',
    );
  }
  if (cron === undefined && typeof every !== "string" && typeof every !== "number") {
    report(
      `jobs[${index}].every`,
      `expected a duration such as "30s" or "5m", got ${typeName(every)}`,
    );
  } else if (cron === undefined) {
    // The type in the key: the number 500 (ms) is an interval, the string "500" is not.
    fields.schedule = cached(
      `every\n${typeof every}\n${every}`,
      () => parseEvery(every as string | number),
      `jobs[${index}].every`,
      schedules,
      report,
    );
  }
  fields.overlap = readChoice(raw.overlap, OVERLAPS, `jobs[${index}].overlap`, report);
  fields.catchUp = readChoice(raw.catchUp, CATCH_UPS, `jobs[${index}].catchUp`, report);
  return fields;
}

/** The time fields of one-off job `index`: `delay` or `at`, and none of a recurring job's. */
function readOneOff(raw: Record<string, unknown>, index: number, report: Report): TimeFields {
  const fields: TimeFields = {};
  if (raw.delay !== undefined && raw.at !== undefined) {
    report(`jobs[${index}]`, 'has both "delay" and "at"; keep one');
  }
  fields.delay = durationField(raw, "delay", index, report);
  if (raw.at !== undefined) fields.at = readAt(raw.at, index, report);
  for (const key of ["timezone", "overlap", "catchUp"]) {
    if (raw[key] !== undefined) {
      report(`jobs[${index}].${key}`, `only recurring jobs (with "cron" or "every") take "${key}"`);
    }
  }
  return fields;
}

/** Job `index`'s `cron`, in its `timezone` (UTC if it has none or a bad one, which is reported). */
function readCron(
  raw: Record<string, unknown>,
  index: number,
  schedules: ScheduleCache,
  report: Report,
): Schedule | undefined {
  let timezone = "UTC";
  if (typeof raw.timezone === "string") {
    try {
      timezone = checkTimeZone(raw.timezone);
    } catch (error) {
      report(`jobs[${index}].timezone`, (error as Error).message);
    }
  } else if (raw.timezone !== undefined) {
    report(
      `jobs[${index}].timezone`,
      `expected an IANA time zone name such as "Europe/Berlin", got ${typeName(raw.timezone)}`,
    );
  }
  const cron = raw.cron;
  if (typeof cron !== "string") {
    report(
      `jobs[${index}].cron`,
      `expected a cron expression such as "30 2 * * *", got ${typeName(cron)}`,
    );
    return undefined;
  }
  const make = () => parseCron(cron, { timezone });
  return cached(`${timezone}\n${cron}`, make, `jobs[${index}].cron`, schedules, report);
}

/**
 * The schedule `make` gives, through the cache under `key`; its error, if
 * it throws, reported at `at`.
 */
function cached(
  key: string,
  make: () => Schedule,
  at: string,
  schedules: ScheduleCache,
  report: Report,
): Schedule | undefined {
  let schedule = schedules.get(key);
  if (schedule === undefined) {
    try {
      schedule = make();
    } catch (error) {
      schedule = (error as Error).message;
    }
    schedules.set(key, schedule);
  }
  if (typeof schedule === "string") {
    report(at, schedule);
    return undefined;
  }
  return schedule;
}

/** One of `choices` (the first is the default), or a problem. */
function readChoice<T extends string>(
  value: unknown,
  choices: T[],
  at: string,
  report: Report,
): T {
  if (value === undefined) return choices[0];
  if (!choices.includes(value as T)) {
    const list = choices.map((choice) => `"${choice}"`);
    report(
      at,
      `expected ${list.slice(0, -1).join(", ")} or ${list.at(-1)}, got ${typeName(value)}`,
    );
    return choices[0];
  }
  return value as T;
}

/** ISO 8601 times, extended format, with seconds and fractions optional. */
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|([+-])(\d{2}):(\d{2}))?$/i;

/**
 * Job `index`'s `at`: an ISO 8601 time with `Z` or an offset, as epoch ms.
 * A time without either is refused: it would name a different instant on
 * each machine of a queue.
 */
function readAt(value: unknown, index: number, report: Report): number | undefined {
  const match = typeof value === "string" ? ISO_TIME.exec(value) : null;
  const example = 'such as "2026-12-01T02:00:00Z" or "2026-12-01T03:00:00+01:00"';
  if (match === null) {
    report(
      `jobs[${index}].at`,
      `expected an ISO 8601 time with "Z" or an offset, ${example}, got ${typeName(value)}`,
    );
    return undefined;
  }
  if (match[8] === undefined) {
    report(
      `jobs[${index}].at`,
      `${JSON.stringify(value)} has no "Z" or offset; add one, ${example}`,
    );
    return undefined;
  }
  const [year, month, day, hour, minute, second = 0] = match.slice(1, 7).map((part) =>
    part === undefined ? undefined : Number(part)
  ) as number[];
  const [offsetHours, offsetMinutes] = [Number(match[10] ?? 0), Number(match[11] ?? 0)];
  const wrong = month < 1 || month > 12
    ? `month ${month} is out of range 1-12`
    : day < 1 || day > daysInMonth(year, month)
    ? `day ${day} is out of range 1-${daysInMonth(year, month)}`
    : hour > 23
    ? `hour ${hour} is out of range 0-23`
    : minute > 59 || second > 59
    ? `minute or second is out of range 0-59`
    : offsetHours > 23 || offsetMinutes > 59
    ? `offset ${match[8]} is out of range`
    : undefined;
  if (wrong !== undefined) {
    report(`jobs[${index}].at`, `${JSON.stringify(value)}: ${wrong}`);
    return undefined;
  }
  const fraction = Number((match[7] ?? "").padEnd(3, "0").slice(0, 3));
  const offset = (match[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return wallClock(year, month, day, hour, minute, second) + fraction - offset;
}
