/**
 * What a job file is, as the rest of taskpool sees it (a {@linkcode JobFile}
 * of {@linkcode Job}s, or the {@linkcode JobFileProblem}s found in it), and
 * reading one from disk ({@linkcode readJobFile}).
 *
 * @module
 */

import { JobFileError } from "../errors.ts";

import { describeJsonError } from "./_json_error.ts";
import type { CronSchedule } from "./cron.ts";
import type { EverySchedule } from "./every.ts";
import type { GroupLimits } from "./groups.ts";

/** When a recurring job runs: a cron expression in a time zone, or a tick every so long. */
export type Schedule = CronSchedule | EverySchedule;

/**
 * What a tick of a recurring job does while the job's previous run is still
 * running: `"skip"` it (the tick is reported `skipped`), `"queue"` it (it
 * runs when the previous run ends), or `"allow"` the runs to overlap.
 */
export type Overlap = "skip" | "queue" | "allow";

/**
 * What a recurring job does with the ticks it missed while nothing ran it
 * (a machine off, no consumer): `"skip"` them, or run `"one"` run for all
 * of them.
 */
export type CatchUp = "skip" | "one";

/**
 * One job of a job file, validated, with its defaults applied.
 *
 * The time fields (`delay`, `at`, `schedule`, `overlap`, `catchUp`) are
 * absent from a job that has none of them in its file, so that such a job
 * costs nothing more. Their shape follows from two rules:
 *
 * - **Validation reads no clock**: a file validates the same whenever it is
 *   read. So `delay` stays a duration and `at` an instant (both in ms);
 *   whoever starts the job counts `delay` from its own start (a local run),
 *   or turns it into `at` when it pushes the job (so that a queue entry
 *   carries the instant, and a consumer that validates the entry again does
 *   not restart the wait). An `at` in the past means "now".
 * - **A job stays plain data**: `schedule` is the parsed `cron` or `every`,
 *   with `next()` for the scheduler, and `JSON.stringify` turns it into
 *   `{ kind: "cron", expression, timezone }` or `{ kind: "every", interval }`:
 *   what a queue entry needs to carry as the job file's own fields (`cron`
 *   and `timezone`, or `every` in ms), for the consumer to parse again.
 */
export interface Job {
  /** Unique in the file. */
  id: string;
  /** Its position in the file's `jobs`. */
  index: number;
  /** What it runs: an exported function in a pool worker, or a subprocess. */
  kind: "task" | "command";
  /** For a task: the module's URL. */
  module?: string;
  /** For a task: the export's name. */
  name?: string;
  /** For a task: its arguments. */
  args: unknown[];
  /** For a command: the program and its arguments. */
  command?: string[];
  /** For a command: its working directory (absolute). */
  cwd?: string;
  /** For a command: extra environment variables. */
  env?: Record<string, string>;
  /** Jobs that must succeed first. */
  after: string[];
  /** Among ready jobs, higher starts first. */
  priority: number;
  /** Attempts after the first. */
  retries: number;
  /** The first retry's delay in ms; it doubles per retry, with jitter. */
  backoff: number;
  /** Milliseconds an attempt may take, or `undefined`. */
  timeout?: number;
  /**
   * `delay`: milliseconds the job waits before it may start, counted from
   * the start of its run (or its push to a queue). Never with `at`.
   */
  delay?: number;
  /** `at`: the instant (epoch ms) before which the job does not start. Never with `delay`. */
  at?: number;
  /**
   * For a recurring job: `cron` (in its `timezone`) or `every`, parsed. A
   * recurring job has no dependencies and no job depends on it; it takes
   * `retries`, `backoff`, `timeout` and `priority` as any job.
   */
  schedule?: Schedule;
  /** For a recurring job: a tick while the previous run still runs. @default {"skip"} */
  overlap?: Overlap;
  /** For a recurring job: the ticks missed while nothing ran it. @default {"skip"} */
  catchUp?: CatchUp;
  /**
   * A unique key, for the Redis queue: while a job with this key waits or
   * runs there, a push of another one with the key does not enqueue it. A
   * local run ignores it.
   */
  key?: string;
  /**
   * What a push does with a job whose key is held: `"skip"` it, or
   * `"replace"` the waiting holder's entry with this job's (the holder
   * keeps its id; a holder that runs, is delayed or blocked is not
   * replaced). Only with `key`. @default {"skip"}
   */
  onDuplicate?: "skip" | "replace";
  /**
   * The group the job belongs to: the file's `groups` (or, on a Redis
   * queue, `RedisQueue.setGroup`) limits how many of a group's jobs run at
   * once and start per window. A group without limits does not hold its
   * jobs back.
   */
  group?: string;
}

/** A validated job file. */
export interface JobFile {
  /** Absolute path of the file. */
  path: string;
  /** Workers the file asks for. */
  workers?: number;
  /** Queue capacity the file asks for. */
  capacity?: number;
  /** The jobs, in file order. */
  jobs: Job[];
  /** The file's `groups`: each group's limits (see `GroupLimits`). */
  groups?: Record<string, GroupLimits>;
}

/** One problem of a job file: where, and what is wrong (with the fix when there is one). */
export interface JobFileProblem {
  /** A JSON path such as `jobs[3].after[0]`, or `(file)`. */
  path: string;
  /** What is wrong and how to fix it. */
  message: string;
}

/** The outcome of {@linkcode validateJobFile}: the file, or every problem found. */
export type Validation =
  | { ok: true; file: JobFile }
  | { ok: false; problems: JobFileProblem[] };

/**
 * Largest job file read, in bytes. Not exported: a limit of this reader, not
 * part of the API (the message of a larger file says it).
 */
const MAX_JOB_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Reads a job file's text: a missing file, a directory, an unreadable or
 * empty or huge file, or text that is not JSON (with its line and column)
 * throw a one-line {@linkcode JobFileError}.
 *
 * @param path The file.
 * @returns The parsed JSON.
 * @throws {JobFileError} When the file cannot be read or parsed.
 *
 * @example Read a job file
 * ```ts
 * import { readJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const path = await Deno.makeTempFile({ suffix: ".json" });
 * await Deno.writeTextFile(path, '{ "jobs": [] }');
 * assert.deepStrictEqual(await readJobFile(path), { jobs: [] });
 * ```
 */
export async function readJobFile(path: string): Promise<unknown> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new JobFileError(`${path}: no such file; check the path`);
    }
    throw new JobFileError(`${path}: cannot read it (${(error as Error).message})`);
  }
  if (info.isDirectory) throw new JobFileError(`${path}: is a directory; pass a job file (JSON)`);
  if (info.size > MAX_JOB_FILE_BYTES) {
    throw new JobFileError(
      `${path}: ${info.size} bytes is too large for a job file (at most ${MAX_JOB_FILE_BYTES}); split it`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new JobFileError(`${path}: cannot read it (${(error as Error).message})`);
  }
  // A UTF-8 byte-order mark (some editors write one) is not part of the JSON.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") {
    throw new JobFileError(`${path}: the file is empty; a job file is a JSON object with "jobs"`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new JobFileError(`${path}: not valid JSON: ${describeJsonError(text, error as Error)}`);
  }
}
