/**
 * What a job file is, as the rest of taskpool sees it (a {@linkcode JobFile}
 * of {@linkcode Job}s, or the {@linkcode JobFileProblem}s found in it), and
 * reading one from disk ({@linkcode readJobFile}).
 *
 * @module
 */

import { JobFileError } from "../errors.ts";

import { describeJsonError } from "./_json_error.ts";

/** One job of a job file, validated, with its defaults applied. */
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
  if (text.trim() === "") {
    throw new JobFileError(`${path}: the file is empty; a job file is a JSON object with "jobs"`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new JobFileError(`${path}: not valid JSON: ${describeJsonError(text, error as Error)}`);
  }
}
