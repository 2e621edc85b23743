/**
 * The field checks of validation: each reads one field of an object of the
 * job file, reports a problem with its JSON path when the value is wrong,
 * and returns the value when it is right. With them, the names of the
 * fields a job file knows, and how a wrong value is named in a message.
 *
 * Validation runs them for every job of files of many thousands, so they
 * take a job's index rather than its path: a path such as `jobs[3].retries`
 * is made only for a problem.
 *
 * @module
 */

import { describe, MAX_TIMER_MS } from "../_util.ts";
import { parseDuration } from "./duration.ts";
import { suggest } from "./_suggest.ts";

/** Reports one problem of a job file: its JSON path, and what is wrong. */
export type Report = (at: string, message: string) => void;

/** The fields of a job file's top level. */
export const TOP_FIELDS: string[] = [
  "$schema",
  "workers",
  "capacity",
  "defaults",
  "groups",
  "jobs",
];

/** The fields of a job file's `defaults`. */
export const DEFAULT_FIELDS: string[] = ["priority", "retries", "backoff", "timeout"];

/** The fields of a job. */
export const JOB_FIELDS: string[] = [
  "id",
  "task",
  "args",
  "command",
  "cwd",
  "env",
  "after",
  "priority",
  "retries",
  "backoff",
  "timeout",
  "delay",
  "at",
  "cron",
  "every",
  "timezone",
  "overlap",
  "catchUp",
  "key",
  "onDuplicate",
  "group",
];

/** For speed, a Set: each job's every key is looked up in it. */
const JOB_FIELD_SET = new Set(JOB_FIELDS);

/**
 * Whether `value` is a JSON object: not `null`, not an array.
 *
 * @param value Any value.
 * @returns `true` for an object that is not an array.
 *
 * @example Objects and not
 * ```ts
 * import { isObject } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * assert(isObject({ id: "a" }));
 * assert(!isObject([]) && !isObject(null) && !isObject("a"));
 * ```
 */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * A value for a message, short, and safe for anything (even cycles): as
 * `describe` in `src/_util.ts` says it, cut to 60 characters, except that a
 * value JSON cannot hold (a BigInt, a cycle) is named by its
 * {@linkcode typeName}, as these messages always have.
 *
 * @param value Any value.
 * @returns A short text.
 *
 * @example Show a value
 * ```ts
 * import { show } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(show({ module: "./x.ts" }), '{"module":"./x.ts"}');
 * assert.strictEqual(show(10n), "bigint 10");
 * ```
 */
export function show(value: unknown): string {
  // Twice through JSON.stringify for most values: this runs only for a problem.
  try {
    JSON.stringify(value);
  } catch {
    return typeName(value);
  }
  return describe(value, 60);
}

/**
 * What a wrong value is, for "expected …, got …": its type, with the value
 * itself for a primitive (a string quoted and cut to 40 characters).
 *
 * @param value Any value.
 * @returns Such as `an array`, `number 1.5` or `the string "soon"`.
 *
 * @example Name values
 * ```ts
 * import { typeName } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(typeName(1.5), "number 1.5");
 * assert.strictEqual(typeName("soon"), 'the string "soon"');
 * assert.strictEqual(typeName([]), "an array");
 * ```
 */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") {
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  }
  return `${typeof value} ${String(value)}`;
}

/**
 * Reports each field of `object` that is not in `known`, with the known
 * field it most likely meant, or else all of them.
 *
 * @param object An object of the file.
 * @param known Its fields.
 * @param at Its JSON path; "" for the top level.
 * @param report Where problems go.
 *
 * @example A typo at the top level
 * ```ts
 * import { unknownFields } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * unknownFields({ jobz: [] }, ["workers", "jobs"], "", (at, message) => {
 *   problems.push(`${at}: ${message}`);
 * });
 * assert.deepStrictEqual(problems, ['jobz: unknown field "jobz"; did you mean "jobs"?']);
 * ```
 */
export function unknownFields(
  object: Record<string, unknown>,
  known: string[],
  at: string,
  report: Report,
): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const hint = suggest(key, known);
    report(
      at === "" ? key : `${at}.${key}`,
      `unknown field "${key}"${
        hint ? `; did you mean "${hint}"?` : `; known fields: ${known.join(", ")}`
      }`,
    );
  }
}

/**
 * {@linkcode unknownFields} for job `index`, without its allocations (this
 * runs for every job): for-in walks the keys without making an array of
 * them, and without an iterator. It gives an object's own keys first, in the
 * same order as `Object.keys`, then inherited ones, which are skipped.
 *
 * @param object The job.
 * @param index Its position in the file's `jobs`.
 * @param report Where problems go.
 *
 * @example A typo in a job
 * ```ts
 * import { unknownJobFields } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * unknownJobFields({ id: "a", priorty: 1 }, 3, (at, message) => {
 *   problems.push(`${at}: ${message}`);
 * });
 * assert.deepStrictEqual(problems, [
 *   'jobs[3].priorty: unknown field "priorty"; did you mean "priority"?',
 * ]);
 * ```
 */
export function unknownJobFields(
  object: Record<string, unknown>,
  index: number,
  report: Report,
): void {
  for (const key in object) {
    if (JOB_FIELD_SET.has(key) || !Object.hasOwn(object, key)) continue;
    const hint = suggest(key, JOB_FIELDS);
    report(
      `jobs[${index}].${key}`,
      `unknown field "${key}"${
        hint ? `; did you mean "${hint}"?` : `; known fields: ${JOB_FIELDS.join(", ")}`
      }`,
    );
  }
}

/**
 * The path of field `key` in `at`: an object's path, "" for the top level,
 * or a job's index (for speed, a job's path is made only for a problem).
 */
function fieldPath(at: string | number, key: string): string {
  if (typeof at === "number") return `jobs[${at}].${key}`;
  return at === "" ? key : `${at}.${key}`;
}

/**
 * Field `key` of `object`, if it is there: an integer from `min` to `max`.
 *
 * @param object An object of the file.
 * @param key The field.
 * @param at The object's JSON path ("" for the top level), or a job's index.
 * @param min The smallest value allowed.
 * @param max The largest value allowed.
 * @param report Where a problem goes.
 * @returns The value; `undefined` when it is missing or wrong.
 *
 * @example A job's retries
 * ```ts
 * import { optionalInteger } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const report = (at: string, message: string) => problems.push(`${at}: ${message}`);
 * assert.strictEqual(optionalInteger({ retries: 2 }, "retries", 0, 0, 100, report), 2);
 * assert.strictEqual(optionalInteger({ retries: 1.5 }, "retries", 0, 0, 100, report), undefined);
 * assert.deepStrictEqual(problems, [
 *   "jobs[0].retries: expected an integer from 0 to 100, got number 1.5",
 * ]);
 * ```
 */
export function optionalInteger(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  min: number,
  max: number,
  report: Report,
): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    report(
      fieldPath(at, key),
      `expected an integer from ${min} to ${max}, got ${typeName(value)}`,
    );
    return undefined;
  }
  return value;
}

/**
 * Field `key` of `object`, if it is there: a finite number.
 *
 * @param object An object of the file.
 * @param key The field.
 * @param at The object's JSON path ("" for the top level), or a job's index.
 * @param report Where a problem goes.
 * @returns The value; `undefined` when it is missing or wrong.
 *
 * @example A default priority
 * ```ts
 * import { numberField } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const report = (at: string, message: string) => problems.push(`${at}: ${message}`);
 * assert.strictEqual(numberField({ priority: -2 }, "priority", "defaults", report), -2);
 * assert.strictEqual(numberField({ priority: "high" }, "priority", "defaults", report), undefined);
 * assert.deepStrictEqual(problems, [
 *   'defaults.priority: expected a number, got the string "high"',
 * ]);
 * ```
 */
export function numberField(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  report: Report,
): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    report(fieldPath(at, key), `expected a number, got ${typeName(value)}`);
    return undefined;
  }
  return value;
}

/**
 * Field `key` of `object`, if it is there: a duration, as
 * {@linkcode parseDuration} reads it.
 *
 * @param object An object of the file.
 * @param key The field.
 * @param at The object's JSON path ("" for the top level), or a job's index.
 * @param report Where a problem goes.
 * @returns Milliseconds; `undefined` when the field is missing or wrong.
 *
 * @example A job's timeout
 * ```ts
 * import { durationField } from "./_fields.ts";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const report = (at: string, message: string) => problems.push(`${at}: ${message}`);
 * assert.strictEqual(durationField({ timeout: "2m" }, "timeout", 4, report), 120_000);
 * assert.strictEqual(durationField({ timeout: "soon" }, "timeout", 4, report), undefined);
 * assert.match(problems[0], /^jobs\[4\]\.timeout: expected a duration such as "500ms"/);
 * ```
 */
export function durationField(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  report: Report,
): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    report(
      fieldPath(at, key),
      `expected a duration such as "500ms", "30s", "2m" or a number of ms, got ${typeName(value)}`,
    );
  } else if (ms > MAX_TIMER_MS) {
    report(
      fieldPath(at, key),
      `${typeName(value)} is too long: a duration may be at most ${MAX_TIMER_MS} ms ` +
        `(about 24.8 days, the longest a timer waits); schedule longer waits outside taskpool`,
    );
    return undefined;
  }
  return ms;
}
