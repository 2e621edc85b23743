/**
 * Queue entries: a job of a job file as JSON, plus the batch it was pushed
 * in and the attempt it is for. Producers make them from validated jobs;
 * consumers check them with the job file's own validation.
 *
 * @module
 */

import { type Job, validateJobFile } from "../jobs/mod.ts";
import { describe } from "../_util.ts";
import type { RedisReply } from "./client.ts";

/** An entry checked by a consumer. */
export type ParsedEntry =
  | {
    ok: true;
    job: Job;
    batch: string;
    attempt: number;
    /** The recurring job whose run this is (`"schedule"`), or "". */
    schedule: string;
    value: Record<string, unknown>;
  }
  | { ok: false; error: string; batch: string; id: string };

/**
 * The entry of a validated job. Task modules and command directories under
 * `base` become relative (`./tasks/a.ts#run`), so that consumers on other
 * machines resolve them against their own checkout of the same code.
 *
 * @example A command job under the base directory
 * ```ts
 * import { entryOf } from "./_entry.ts";
 * import { validateJobFile } from "../jobs/mod.ts";
 * import assert from "node:assert";
 *
 * const checked = validateJobFile({ jobs: [{ id: "a", command: ["make"], cwd: "web" }] }, "/src/jobs.json");
 * assert(checked.ok);
 * const entry = entryOf(checked.file.jobs[0], "/src", "b1");
 * assert.strictEqual(entry.cwd, "./web");
 * assert.strictEqual(entry.batch, "b1");
 * ```
 */
export function entryOf(job: Job, base: string, batch: string): Record<string, unknown> {
  const entry: Record<string, unknown> = { id: job.id };
  if (job.kind === "task") {
    entry.task = `${relative(job.module!, base)}#${job.name}`;
    if (job.args.length > 0) entry.args = job.args;
  } else {
    entry.command = job.command;
    if (job.cwd !== undefined && job.cwd !== base) entry.cwd = relative(job.cwd, base);
    if (job.env !== undefined) entry.env = job.env;
  }
  if (job.after.length > 0) entry.after = job.after;
  if (job.priority !== 0) entry.priority = job.priority;
  if (job.retries !== 0) entry.retries = job.retries;
  entry.backoff = job.backoff;
  if (job.timeout !== undefined) entry.timeout = job.timeout;
  if (job.key !== undefined) entry.key = job.key;
  if (job.group !== undefined) entry.group = job.group;
  entry.batch = batch; // last: a replacement (PUSH) keeps its holder's
  return entry;
}

/**
 * When a pushed one-off job may start, ms since the epoch: its `at`, or now
 * plus its `delay`; `undefined` for a job that may start at once. A push
 * turns `delay` into this instant, so that a consumer that reads the entry
 * does not start the wait again.
 */
export function notBefore(job: Job, now: number): number | undefined {
  return job.at ?? (job.delay === undefined ? undefined : now + job.delay);
}

/** A path or file URL relative to `base` when it lies below it; else as it is. */
function relative(pathOrUrl: string, base: string): string {
  let path = pathOrUrl;
  if (pathOrUrl.startsWith("file://")) path = decodeURIComponent(new URL(pathOrUrl).pathname);
  else if (!pathOrUrl.startsWith("/")) return pathOrUrl; // https:, jsr:, npm:
  const prefix = base.endsWith("/") ? base : `${base}/`;
  return path.startsWith(prefix) ? `./${path.slice(prefix.length)}` : path;
}

/**
 * Checks an entry taken from the queue: JSON, then the job file's rules for
 * one job (paths resolve against `base`), then the queue's own fields.
 * Never throws: a bad entry comes back with every problem in one line.
 *
 * @example A good entry and a bad one
 * ```ts
 * import { parseEntry } from "./_entry.ts";
 * import assert from "node:assert";
 *
 * const good = parseEntry('{"id":"a","command":["true"],"batch":"b1"}', "/src");
 * assert(good.ok && good.job.id === "a" && good.attempt === 1);
 * const bad = parseEntry('{"id":"a","attempt":0}', "/src");
 * assert(!bad.ok && bad.error.includes("attempt: expected a positive integer, got 0"));
 * ```
 */
export function parseEntry(raw: string, base: string): ParsedEntry {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return { ok: false, error: `not JSON: ${(error as Error).message}`, batch: "", id: "" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    const type = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    return { ok: false, error: `expected a job object, got ${type}`, batch: "", id: "" };
  }
  const { batch = "", attempt = 1, after, schedule = "", ...job } = value as Record<
    string,
    unknown
  >;
  const id = typeof job.id === "string" ? job.id : "";
  const problems: string[] = [];
  if (typeof batch !== "string" || batch.includes("/")) {
    problems.push(
      `batch: expected the id of a push (a string without "/"), got ${describe(batch)}`,
    );
  }
  if (typeof schedule !== "string") {
    problems.push(`schedule: expected the id of a recurring job, got ${describe(schedule)}`);
  }
  if (typeof attempt !== "number" || !Number.isInteger(attempt) || attempt < 1) {
    problems.push(`attempt: expected a positive integer, got ${describe(attempt)}`);
  }
  if (after !== undefined && (!Array.isArray(after) || after.length > 0) && batch === "") {
    problems.push(
      "after: dependencies are honoured only between jobs pushed together in one job file " +
        "(RedisQueue.prototype.push); " +
        "push the job file instead of single entries",
    );
  }
  const checked = validateJobFile({ jobs: [job] }, `${base}/queue.json`);
  if (!checked.ok) {
    for (const p of checked.problems) {
      problems.push(`${p.path.replace(/^jobs\[0\]\.?/, "") || "entry"}: ${p.message}`);
    }
  }
  const safeBatch = typeof batch === "string" ? batch : "";
  if (problems.length > 0 || !checked.ok) {
    return { ok: false, error: problems.join("; "), batch: safeBatch, id };
  }
  return {
    ok: true,
    job: checked.file.jobs[0],
    batch: safeBatch,
    attempt: attempt as number,
    schedule: schedule as string,
    value: value as Record<string, unknown>,
  };
}

/** The malformed outcome of an entry that is not valid UTF-8, with where it goes wrong. */
export function notText(
  bytes: Uint8Array,
): { ok: false; error: string; batch: string; id: string } {
  return {
    ok: false,
    error: `not valid UTF-8 at byte offset ${invalidUtf8At(bytes)} (of ${bytes.length})`,
    batch: "",
    id: "",
  };
}

/** The offset of the first byte that makes `bytes` invalid UTF-8 (or its length if none does). */
function invalidUtf8At(bytes: Uint8Array): number {
  const strict = new TextDecoder("utf-8", { fatal: true });
  // The longest valid prefix: a binary search over prefixes (a prefix cut in
  // the middle of a character is invalid too, so search for the longest
  // valid one, then step over the character it stops at).
  let lo = 0;
  let hi = bytes.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    try {
      strict.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      hi = mid - 1;
    }
  }
  return lo;
}

/** The unique `key` a malformed entry carries, if it is JSON with one; else "". */
export function keyOfMalformed(raw: string | Uint8Array): string {
  if (typeof raw !== "string") return "";
  try {
    const key = JSON.parse(raw)?.key;
    return typeof key === "string" ? key : "";
  } catch {
    return ""; // not JSON: it holds no key
  }
}

/**
 * An entry as Redis gave it: text, or bytes when it is not valid UTF-8 (the
 * client gives those as they are, so that they can be removed exactly).
 */
export type Entry = string | Uint8Array;

/** Whether a reply is an entry (not nil, not an error). */
export function isEntry(reply: RedisReply): reply is Entry {
  return typeof reply === "string" || reply instanceof Uint8Array;
}

/** A Map key for an entry; bytes get a prefix that no JSON entry starts with. */
export function keyOf(entry: Entry): string {
  if (typeof entry === "string") return entry;
  let hex = "\u0000bytes:";
  for (const byte of entry) hex += byte.toString(16).padStart(2, "0");
  return hex;
}
