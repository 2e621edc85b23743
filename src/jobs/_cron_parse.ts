/**
 * Reading a cron expression into the sets of values each of its fields
 * allows, with an error that names the field and says how to fix it. The
 * rules are cron(8)'s and crontab(5)'s as cronie has them, and are listed in
 * `cron.ts`; what cron has and taskpool does not (`L`, `W`, `#`, `?`,
 * `@reboot`, `~` random values) is refused by name.
 *
 * @module
 */

import { suggest } from "./_suggest.ts";

/** One field of a cron expression: its name for messages, its bounds, its names. */
interface FieldSpec {
  /** As messages name it: "hour", "day of week". */
  label: string;
  min: number;
  /** The largest value a `*` or an open step (`5/10`) reaches. */
  max: number;
  /** The largest value written out (7 is Sunday too, in a day of week). */
  top: number;
  /** Names for values from `min` on, upper case (months, weekdays). */
  names?: string[];
}

const MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(" ");
const DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split(" ");

const SECOND: FieldSpec = { label: "second", min: 0, max: 59, top: 59 };
const MINUTE: FieldSpec = { label: "minute", min: 0, max: 59, top: 59 };
const HOUR: FieldSpec = { label: "hour", min: 0, max: 23, top: 23 };
const DAY: FieldSpec = { label: "day of month", min: 1, max: 31, top: 31 };
const MONTH: FieldSpec = { label: "month", min: 1, max: 12, top: 12, names: MONTH_NAMES };
const WEEKDAY: FieldSpec = { label: "day of week", min: 0, max: 6, top: 7, names: DAY_NAMES };

/** The macros, each as the five fields it stands for (as cronie sets them). */
const MACROS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

/** Each macro's normal name: an alias reads as the name it stands for. */
const MACRO_NAMES: Record<string, string> = { "@annually": "@yearly", "@midnight": "@daily" };

/** What a cron expression allows: for each field, a flag per value. */
export interface CronFields {
  /** The expression with single spaces, names in upper case, macros by their normal name. */
  text: string;
  /** Seconds 0-59 (all `0` but second 0 in a five-field expression). */
  seconds: boolean[];
  /** Minutes 0-59. */
  minutes: boolean[];
  /** Hours 0-23. */
  hours: boolean[];
  /** Days of month 1-31 (index 0 unused). */
  days: boolean[];
  /** Months 1-12 (index 0 unused). */
  months: boolean[];
  /** Days of week 0-6, Sunday 0 (a 7 is folded into 0). */
  weekdays: boolean[];
  /**
   * Whether day of month and day of week must both match (either field
   * starts with `*`), rather than either (both restricted): Vixie cron's rule.
   */
  bothDays: boolean;
  /**
   * Whether neither minute nor hour starts with `*`: cronie's "fixed-time"
   * jobs, which daylight-saving changes neither skip nor repeat.
   */
  fixedTime: boolean;
}

/**
 * Reads a cron expression: five fields, six with seconds first, or a macro.
 *
 * @param expression The expression.
 * @returns Its fields.
 * @throws {SyntaxError} When it is malformed or uses what taskpool does not support.
 * @throws {RangeError} When a value is out of its field's range, or the expression never fires.
 *
 * @example Read every quarter of an hour on weekdays
 * ```ts
 * import { parseCronFields } from "./_cron_parse.ts";
 * import assert from "node:assert";
 *
 * const fields = parseCronFields("0-59/15  9-17 * * mon-fri");
 * assert.strictEqual(fields.text, "0-59/15 9-17 * * MON-FRI");
 * assert(fields.minutes[45] && !fields.minutes[50] && fields.weekdays[5] && !fields.weekdays[6]);
 * ```
 */
export function parseCronFields(expression: string): CronFields {
  const trimmed = expression.trim();
  const fail = (error: { new (message: string): Error }, message: string): never => {
    throw new error(`${JSON.stringify(expression)}: ${message}`);
  };
  if (trimmed === "") {
    fail(
      SyntaxError,
      "empty; write five fields (minute hour day-of-month month day-of-week), six with seconds first, or a macro such as @daily",
    );
  }
  let macro: string | undefined;
  let text = trimmed;
  if (trimmed.startsWith("@")) {
    macro = trimmed.toLowerCase();
    if (MACROS[macro] === undefined) fail(SyntaxError, unknownMacro(trimmed));
    text = MACROS[macro];
  }
  const parts = text.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    fail(
      SyntaxError,
      `${parts.length} field${
        parts.length === 1 ? "" : "s"
      }; write 5 (minute hour day-of-month month day-of-week) or 6 (second first)`,
    );
  }
  const [second, minute, hour, day, month, weekday] = parts.length === 6 ? parts : ["0", ...parts];
  const fields: CronFields = {
    text: macro === undefined ? parts.join(" ").toUpperCase() : MACRO_NAMES[macro] ?? macro,
    seconds: readField(second, SECOND, fail),
    minutes: readField(minute, MINUTE, fail),
    hours: readField(hour, HOUR, fail),
    days: readField(day, DAY, fail),
    months: readField(month, MONTH, fail),
    weekdays: foldSunday(readField(weekday, WEEKDAY, fail)),
    bothDays: day.startsWith("*") || weekday.startsWith("*"),
    fixedTime: !minute.startsWith("*") && !hour.startsWith("*"),
  };
  const never = neverFires(fields);
  if (never !== undefined) fail(RangeError, never);
  return fields;
}

/** The message for an `@` word that is not a macro taskpool knows. */
function unknownMacro(word: string): string {
  if (word.toLowerCase() === "@reboot") {
    return "@reboot is not supported: a schedule fires at times, and a job file has no boot";
  }
  const hint = suggest(word.toLowerCase(), Object.keys(MACROS));
  return `unknown macro ${word}; ${
    hint ? `did you mean ${hint}? ` : ""
  }macros are @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly`;
}

/** Throws the error of one expression: its type, and the message after the expression. */
type Fail = (error: { new (message: string): Error }, message: string) => never;

/**
 * One field's allowed values: a list of `*`, `*\/step`, `a`, `a-b`,
 * `a-b/step` or `a/step` (from `a` to the field's end), each value a number
 * or, in months and days of week, a name.
 */
function readField(field: string, spec: FieldSpec, fail: Fail): boolean[] {
  const allowed = new Array<boolean>(spec.top + 1).fill(false);
  const odd = /[#?~]/.exec(field)?.[0];
  if (odd !== undefined) {
    fail(
      SyntaxError,
      `${spec.label} ${JSON.stringify(field)}: "${odd}" is not supported; ` +
        `taskpool reads standard cron fields, without L, W, #, ? or ~${
          odd === "?" ? ' (write "*" for "any")' : ""
        }`,
    );
  }
  for (const item of field.split(",")) {
    if (item === "") {
      fail(SyntaxError, `${spec.label} ${JSON.stringify(field)} has an empty item in its list`);
    }
    const match = /^(?:(\*)|([^-/*]+)(?:-([^-/*]+))?)(?:\/(.*))?$/.exec(item);
    if (match === null) {
      fail(
        SyntaxError,
        `${spec.label} ${
          JSON.stringify(item)
        } is not a value, a range (a-b) or a step (*/n, a-b/n, a/n)`,
      );
    }
    const [, star, first, last, step] = match;
    let from = spec.min, to = spec.max;
    if (star === undefined) {
      from = readValue(first, spec, fail);
      if (last !== undefined) {
        to = readValue(last, spec, fail);
        // cronie reads "FRI-SUN" (5-0) as 5-7: Sunday closes a week, too.
        if (spec === WEEKDAY && to === 0 && from > 0) to = 7;
        if (from > to) {
          fail(
            RangeError,
            `${spec.label} range ${item} is backwards; write the smaller value first, or two ranges (${first}-${spec.max},${spec.min}-${last})`,
          );
        }
      } else if (step === undefined) to = from;
    }
    const by = step === undefined ? 1 : readStep(step, item, spec, fail);
    for (let value = from; value <= to; value += by) allowed[value] = true;
  }
  return allowed;
}

/** One value of a field: a number in its range, or one of its names. */
function readValue(text: string, spec: FieldSpec, fail: Fail): number {
  if (/^\d+$/.test(text)) {
    const value = Number(text);
    if (value < spec.min || value > spec.top) {
      fail(
        RangeError,
        `${spec.label} ${value} is out of range ${spec.min}-${spec.top}${
          spec === WEEKDAY ? " (0 and 7 are Sunday)" : ""
        }`,
      );
    }
    return value;
  }
  const upper = text.toUpperCase();
  const index = spec.names?.indexOf(upper) ?? -1;
  if (index >= 0) return spec.min + index;
  if (/^(?:L|W|LW|L-\d+|\d+[LW])$/.test(upper)) {
    fail(
      SyntaxError,
      `${spec.label} "${text}" is not supported; taskpool reads standard cron fields, without L, W, #, ? or ~`,
    );
  }
  if (spec.names === undefined) fail(SyntaxError, `${spec.label} "${text}" is not a number`);
  const names = spec.names;
  const prefix = names.find((name) => upper.startsWith(name));
  const hint = prefix ?? suggest(upper, names);
  fail(
    SyntaxError,
    `${spec.label} "${text}" is not a number or a name (${names[0]}-${names[names.length - 1]})${
      hint ? `; did you mean "${hint}"?` : ""
    }`,
  );
}

/** A step's size: from 1 to the field's span (a larger one would only give its start). */
function readStep(text: string, item: string, spec: FieldSpec, fail: Fail): number {
  if (!/^\d+$/.test(text)) {
    fail(SyntaxError, `${spec.label} step "${text}" in ${item} is not a number`);
  }
  const step = Number(text);
  const span = spec.max - spec.min;
  if (step < 1 || step > span) {
    fail(
      RangeError,
      `${spec.label} step ${step} in ${item} is out of range 1-${span}${
        step > span ? " (a larger step gives the first value alone: write that value)" : ""
      }`,
    );
  }
  return step;
}

/** A day-of-week set with 7 made Sunday (0), and without index 7. */
function foldSunday(weekdays: boolean[]): boolean[] {
  if (weekdays[7]) weekdays[0] = true;
  return weekdays.slice(0, 7);
}

/** Days in each month at most (February in a leap year). */
const LONGEST = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Why an expression never fires, or `undefined` when it does. It never
 * fires only when each day it asks for lies past the end of each month it
 * asks for (`0 0 31 2 *`, `0 0 30,31 2,4 *`) and day of week cannot stand
 * in (both must match). Any other day and month meet on every weekday within
 * 400 years (the Gregorian cycle), so such an expression always fires.
 */
function neverFires(fields: CronFields): string | undefined {
  if (!fields.bothDays) return undefined;
  let firstDay = 32;
  const months: string[] = [];
  for (let month = 1; month <= 12; month++) {
    if (!fields.months[month]) continue;
    months.push(MONTH_NAMES[month - 1]);
    for (let day = 1; day <= LONGEST[month]; day++) {
      if (fields.days[day]) return undefined;
    }
  }
  for (let day = 31; day >= 1; day--) if (fields.days[day]) firstDay = day;
  return `never fires: no month it names (${months.join(", ")}) has day ${firstDay}${
    fields.days.lastIndexOf(true) > firstDay ? " or later" : ""
  }; check the day of month and the month`;
}
