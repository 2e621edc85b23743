/**
 * Groups: a job's `group`, and the limits a job file (or
 * `RedisQueue.setGroup`) puts on a group: how many of its jobs run at once,
 * and how many start per window.
 *
 * @module
 */

import { parseDuration } from "./duration.ts";
import { isObject, show, typeName, unknownFields } from "./_fields.ts";

/** Where a problem goes: its JSON path, and what is wrong. */
export type ProblemReport = (at: string, message: string) => void;

/** How many jobs of a group may start within a window. */
export interface GroupRate {
  /** Starts allowed per window. */
  limit: number;
  /** The window, in ms. */
  window: number;
}

/**
 * The limits of a group. With neither, the group's jobs run as any other.
 * Locally and across the consumers of a Redis queue alike:
 *
 * - `concurrency`: at most this many of its jobs run at once (a job counts
 *   from its start to its outcome, or to the end of an attempt that is
 *   retried);
 * - `rate`: at most `limit` of its jobs start in any `window` ms (a sliding
 *   window: any span of `window` ms, not fixed slots).
 */
export interface GroupLimits {
  /** At most this many of the group's jobs run at once. */
  concurrency?: number;
  /** At most `limit` of the group's jobs start in any span of `window` ms. */
  rate?: GroupRate;
}

/** The longest group name, in characters. */
export const MAX_GROUP_LENGTH = 200;

/** The most jobs of a group a limit can name (concurrency, or a rate's starts). */
const MAX_LIMIT = 1_000_000;

/**
 * Reads a rate written `"N/duration"`: N starts per duration (`"10/1s"`,
 * `"100/1m"`; a bare `"5/s"` means one of the unit).
 *
 * @param value What a file or a flag gave.
 * @returns The rate, or `undefined` when `value` is not one.
 *
 * @example Ten per second, and not a rate
 * ```ts
 * import { parseRate } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert.deepStrictEqual(parseRate("10/1s"), { limit: 10, window: 1000 });
 * assert.deepStrictEqual(parseRate("100/m"), { limit: 100, window: 60_000 });
 * assert.strictEqual(parseRate("ten a second"), undefined);
 * ```
 */
export function parseRate(value: unknown): GroupRate | undefined {
  if (typeof value !== "string") return undefined;
  const match = /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(value);
  if (match === null) return undefined;
  const limit = Number(match[1]);
  const window = parseDuration(/^\d/.test(match[2]) ? match[2] : `1${match[2]}`);
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) return undefined;
  if (window === undefined || window < 1 || !Number.isSafeInteger(window)) return undefined;
  return { limit, window };
}

/**
 * Checks group limits given as data (a job file's `groups.<name>`, or
 * `setGroup`'s argument): `concurrency` an integer from 1, `rate` as
 * {@linkcode parseRate} reads it or `{ limit, window }`.
 *
 * @param value The limits.
 * @param at Their JSON path, for messages.
 * @param report Where a problem goes.
 * @returns The limits, or `undefined` when something was reported.
 *
 * @example A group of two at a time, five a second
 * ```ts
 * import { readGroupLimits } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const limits = readGroupLimits({ concurrency: 2, rate: "5/1s" }, "groups.api", (at, m) => problems.push(`${at}: ${m}`));
 * assert.deepStrictEqual(limits, { concurrency: 2, rate: { limit: 5, window: 1000 } });
 * readGroupLimits({ concurrency: 0 }, "groups.api", (at, m) => problems.push(`${at}: ${m}`));
 * assert.match(problems[0], /^groups\.api\.concurrency: expected an integer from 1/);
 * ```
 */
export function readGroupLimits(
  value: unknown,
  at: string,
  report: ProblemReport,
): GroupLimits | undefined {
  if (!isObject(value)) {
    report(
      at,
      `expected an object such as { "concurrency": 2, "rate": "10/1s" }, got ${typeName(value)}`,
    );
    return undefined;
  }
  const before = { problems: 0 };
  const counted: ProblemReport = (path, message) => {
    before.problems++;
    report(path, message);
  };
  unknownFields(value, ["concurrency", "rate"], at, counted);
  const limits: GroupLimits = {};
  const concurrency = value.concurrency;
  if (concurrency !== undefined) {
    if (
      typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1 ||
      concurrency > MAX_LIMIT
    ) {
      counted(
        `${at}.concurrency`,
        `expected an integer from 1 to ${MAX_LIMIT}, got ${show(concurrency)}`,
      );
    } else limits.concurrency = concurrency;
  }
  const rate = value.rate;
  if (rate !== undefined) {
    const read = isObject(rate) ? rateOf(rate) : parseRate(rate);
    if (read === undefined) {
      counted(
        `${at}.rate`,
        `expected starts per window such as "10/1s" or "100/1m" (N from 1 to ${MAX_LIMIT}), got ${
          show(rate)
        }`,
      );
    } else limits.rate = read;
  }
  return before.problems > 0 ? undefined : limits;
}

/** `{ limit, window }` as given to `setGroup`, checked. */
function rateOf(rate: Record<string, unknown>): GroupRate | undefined {
  const { limit, window } = rate;
  if (typeof limit !== "number" || !Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    return undefined;
  }
  if (typeof window !== "number" || !Number.isSafeInteger(window) || window < 1) return undefined;
  return { limit, window };
}

/**
 * Checks a group's name: a non-empty string of at most
 * {@linkcode MAX_GROUP_LENGTH} characters.
 *
 * @param name The name.
 * @returns What is wrong, or `undefined` when it is a name.
 *
 * @example
 * ```ts
 * import { groupNameProblem } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * assert.strictEqual(groupNameProblem("api"), undefined);
 * assert.match(groupNameProblem("")!, /non-empty string/);
 * ```
 */
export function groupNameProblem(name: unknown): string | undefined {
  if (typeof name === "string" && name !== "" && name.length <= MAX_GROUP_LENGTH) return undefined;
  return `expected a non-empty string of at most ${MAX_GROUP_LENGTH} characters, got ${show(name)}`;
}

/**
 * A job file's `groups`: each group's limits, checked.
 *
 * @param value The file's `groups` field.
 * @param report Where a problem goes.
 * @returns The groups' limits, by name; `undefined` when absent.
 *
 * @example Two groups, one of them wrong
 * ```ts
 * import { readGroups } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const problems: string[] = [];
 * const groups = readGroups({ a: { concurrency: 1 }, b: { rate: "often" } }, (at) => problems.push(at));
 * assert.deepStrictEqual(groups, { a: { concurrency: 1 } });
 * assert.deepStrictEqual(problems, ["groups.b.rate"]);
 * ```
 */
export function readGroups(
  value: unknown,
  report: ProblemReport,
): Record<string, GroupLimits> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value)) {
    report("groups", `expected an object of group names to limits, got ${typeName(value)}`);
    return undefined;
  }
  const groups: Record<string, GroupLimits> = {};
  for (const [name, limits] of Object.entries(value)) {
    const at = `groups.${name}`;
    const problem = groupNameProblem(name);
    if (problem !== undefined) {
      report(at, `a group's name: ${problem}`);
      continue;
    }
    const read = readGroupLimits(limits, at, report);
    if (read !== undefined) groups[name] = read;
  }
  return groups;
}
