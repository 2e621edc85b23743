/**
 * Job files: reading, validation, and the plan. Every problem of a file is
 * found before anything runs, each with its JSON path and a way to fix it.
 *
 * @module
 */

import { describeJsonError } from "./_json_error.ts";
import { findCycle } from "./_cycle.ts";
import { parseDuration } from "./duration.ts";
import { suggest } from "./_suggest.ts";

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

/** Thrown by {@linkcode readJobFile} when the file cannot be read or is not JSON: one line. */
export class JobFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the file, and how to fix it.
   */
  constructor(message: string) {
    super(message);
    this.name = "JobFileError";
  }
}

/** Largest job file read, in bytes. */
export const MAX_JOB_FILE_BYTES = 64 * 1024 * 1024;

const TOP_FIELDS = ["$schema", "workers", "capacity", "defaults", "jobs"];
const DEFAULT_FIELDS = ["priority", "retries", "backoff", "timeout"];
const JOB_FIELDS = [
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
];
const DEFAULT_BACKOFF_MS = 1000;

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

/**
 * Validates a parsed job file. Never throws: any input gives either a file
 * or the list of every problem, each with its JSON path.
 *
 * @param data The parsed JSON.
 * @param path The file's path: task modules, `cwd` are relative to its folder.
 * @returns The validated file, or the problems.
 *
 * @example Validate a job file
 * ```ts
 * import { validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const result = validateJobFile({ jobs: [{ id: "a", command: ["true"], after: ["b"] }] }, "/tmp/jobs.json");
 * assert(!result.ok);
 * assert.strictEqual(result.problems[0].path, "jobs[0].after[0]");
 * ```
 */
export function validateJobFile(data: unknown, path: string): Validation {
  const problems: JobFileProblem[] = [];
  const report = (at: string, message: string) => problems.push({ path: at, message });
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  if (!isObject(data)) {
    report("(file)", `expected a JSON object with "jobs", got ${typeName(data)}`);
    return { ok: false, problems };
  }
  unknownFields(data, TOP_FIELDS, "", report);
  const workers = optionalInteger(data, "workers", "", 1, 1024, report);
  const capacity = optionalInteger(data, "capacity", "", 1, 1 << 20, report);
  const defaults = isObject(data.defaults) ? data.defaults : {};
  if (data.defaults !== undefined && !isObject(data.defaults)) {
    report("defaults", `expected an object, got ${typeName(data.defaults)}`);
  } else if (data.defaults !== undefined) {
    unknownFields(defaults, DEFAULT_FIELDS, "defaults", report);
  }
  const base = {
    priority: numberField(defaults, "priority", "defaults", report) ?? 0,
    retries: optionalInteger(defaults, "retries", "defaults", 0, 100, report) ?? 0,
    backoff: durationField(defaults, "backoff", "defaults", report) ?? DEFAULT_BACKOFF_MS,
    timeout: durationField(defaults, "timeout", "defaults", report),
  };
  if (!Array.isArray(data.jobs)) {
    report(
      "jobs",
      data.jobs === undefined
        ? 'missing: add "jobs": [ … ]'
        : `expected an array, got ${typeName(data.jobs)}`,
    );
    return { ok: false, problems };
  }
  const jobs: Job[] = [];
  // Every valid job by its id: the known ids, for duplicates, dependencies and cycles.
  const byId = new Map<string, Job>();
  const tasks = new Map<string, ParsedTask>();
  const list: unknown[] = data.jobs;
  // For speed, a plain loop rather than forEach with a callback, and a job's
  // path ("jobs[3]") is built only for a problem. Like forEach, it skips holes.
  for (let index = 0, count = list.length; index < count; index++) {
    const raw = list[index];
    if (raw === undefined && !(index in list)) continue;
    if (!isObject(raw)) {
      report(`jobs[${index}]`, `expected a job object, got ${typeName(raw)}`);
      continue;
    }
    unknownJobFields(raw, index, report);
    const id = raw.id;
    if (typeof id !== "string" || id === "") {
      report(
        `jobs[${index}].id`,
        id === undefined
          ? "missing: every job needs a unique id"
          : `expected a non-empty string, got ${typeName(id)}`,
      );
      continue;
    }
    const first = byId.get(id);
    if (first !== undefined) {
      report(
        `jobs[${index}].id`,
        `duplicate id "${id}" (also jobs[${first.index}]); ids must be unique`,
      );
      continue;
    }
    // For speed, a field that is not there takes the default without a call.
    const priority = raw.priority === undefined
      ? base.priority
      : numberField(raw, "priority", index, report) ?? base.priority;
    const retries = raw.retries === undefined
      ? base.retries
      : optionalInteger(raw, "retries", index, 0, 100, report) ?? base.retries;
    const backoff = raw.backoff === undefined
      ? base.backoff
      : durationField(raw, "backoff", index, report) ?? base.backoff;
    const timeout = raw.timeout === undefined
      ? base.timeout
      : durationField(raw, "timeout", index, report) ?? base.timeout;
    const after: string[] = [];
    let job: Job;
    const hasTask = raw.task !== undefined;
    const hasCommand = raw.command !== undefined;
    if (hasTask === hasCommand) {
      report(
        `jobs[${index}]`,
        hasTask
          ? 'has both "task" and "command"; keep one'
          : 'needs "task" ("./file.ts#export") or "command" (["program", "arg"])',
      );
      // The file has a problem, so this job is never returned: only its id
      // and dependencies matter (for the checks below).
      job = { id, index, kind: "task", args: [], after, priority, retries, backoff, timeout };
    } else if (hasTask) {
      // Thousands of jobs name the same few tasks: parse and resolve each once.
      let task: ParsedTask | undefined;
      if (typeof raw.task === "string") {
        task = tasks.get(raw.task);
        if (task === undefined) tasks.set(raw.task, task = parseTask(raw.task, dir));
      }
      if (task === undefined || task.name === "") {
        report(
          `jobs[${index}].task`,
          `expected "path/to/module.ts#exportName", got ${show(raw.task)}`,
        );
      } else if (task.module === "") {
        report(`jobs[${index}].task`, `cannot make a module URL of ${show(task.specifier)}`);
      }
      let args: unknown[] = [];
      if (raw.args !== undefined && !Array.isArray(raw.args)) {
        report(`jobs[${index}].args`, `expected an array of arguments, got ${typeName(raw.args)}`);
      } else if (Array.isArray(raw.args)) args = raw.args;
      if (raw.cwd !== undefined) report(`jobs[${index}].cwd`, 'only command jobs take "cwd"');
      if (raw.env !== undefined) report(`jobs[${index}].env`, 'only command jobs take "env"');
      // For speed, the job is made with all its fields at once (adding
      // fields later costs a second allocation per job). When the task is
      // not valid, a problem was reported and the job is never returned.
      job = {
        id,
        index,
        kind: "task",
        args,
        after,
        priority,
        retries,
        backoff,
        timeout,
        module: task?.module,
        name: task?.name,
      };
    } else {
      const command = raw.command;
      let valid: string[] | undefined;
      if (
        !Array.isArray(command) || command.length === 0 ||
        command.some((part) => typeof part !== "string")
      ) {
        report(
          `jobs[${index}].command`,
          `expected a non-empty array of strings such as ["gzip", "-k", "big.log"], got ${
            JSON.stringify(command)
          }`,
        );
      } else valid = command as string[];
      if (raw.args !== undefined) {
        report(`jobs[${index}].args`, 'only task jobs take "args"; put them in "command"');
      }
      let cwd: string | undefined = dir;
      if (raw.cwd !== undefined) {
        if (typeof raw.cwd !== "string") {
          report(`jobs[${index}].cwd`, `expected a path, got ${typeName(raw.cwd)}`);
          cwd = undefined;
        } else cwd = resolvePath(raw.cwd, dir);
      }
      // As for tasks, all fields at once; with a problem, the job is never returned.
      job = {
        id,
        index,
        kind: "command",
        args: [],
        after,
        priority,
        retries,
        backoff,
        timeout,
        command: valid,
        cwd,
      };
      if (raw.env !== undefined) {
        if (!isObject(raw.env) || Object.values(raw.env).some((v) => typeof v !== "string")) {
          report(`jobs[${index}].env`, "expected an object of string values");
        } else job.env = raw.env as Record<string, string>;
      }
    }
    if (raw.after !== undefined) {
      if (!Array.isArray(raw.after)) {
        report(`jobs[${index}].after`, `expected an array of job ids, got ${typeName(raw.after)}`);
      } else {
        for (let k = 0; k < raw.after.length; k++) {
          const dep: unknown = raw.after[k];
          if (typeof dep !== "string") {
            report(`jobs[${index}].after[${k}]`, `expected a job id, got ${typeName(dep)}`);
          } else if (dep === id) {
            report(`jobs[${index}].after[${k}]`, `a job cannot wait for itself`);
          } else after.push(dep);
        }
      }
    }
    byId.set(id, job);
    jobs.push(job);
  }
  // Every job in `jobs` has its id in `byId`: it is the set of known ids.
  // (An index rather than for-of: no iterator, in code that runs cold.)
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j];
    for (let k = 0; k < job.after.length; k++) {
      const dep = job.after[k];
      if (byId.has(dep)) continue;
      const hint = suggest(dep, jobs.map((job) => job.id));
      // Its place in the file: entries that were not ids are not in `job.after`.
      const at = (data.jobs as Record<string, unknown[]>[])[job.index].after.indexOf(dep);
      report(
        `jobs[${job.index}].after[${at}]`,
        `unknown job "${dep}"${hint ? `; did you mean "${hint}"?` : ""}`,
      );
    }
  }
  const cycle = findCycle(jobs, byId, list.length);
  if (cycle) report(`jobs[${cycle.index}].after`, `dependency cycle: ${cycle.path.join(" → ")}`);
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, file: { path, workers, capacity, jobs } };
}

// -- Helpers --

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A value for a message, short, and safe for anything (even cycles). */
function show(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 60 ? `${text.slice(0, 60)}…` : text;
  } catch {
    return typeName(value);
  }
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "string") {
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
  }
  return `${typeof value} ${String(value)}`;
}

function unknownFields(
  object: Record<string, unknown>,
  known: string[],
  at: string,
  report: (at: string, message: string) => void,
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

/** For speed, a Set: each job's every key is looked up in it. */
const JOB_FIELD_SET = new Set(JOB_FIELDS);

/**
 * {@linkcode unknownFields} for job `index`, without its allocations (this
 * runs for every job): for-in walks the keys without making an array of
 * them, and without an iterator. It gives an object's own keys first, in the
 * same order as `Object.keys`, then inherited ones, which are skipped.
 */
function unknownJobFields(
  object: Record<string, unknown>,
  index: number,
  report: (at: string, message: string) => void,
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

function optionalInteger(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  min: number,
  max: number,
  report: (at: string, message: string) => void,
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

function numberField(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  report: (at: string, message: string) => void,
): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    report(fieldPath(at, key), `expected a number, got ${typeName(value)}`);
    return undefined;
  }
  return value;
}

function durationField(
  object: Record<string, unknown>,
  key: string,
  at: string | number,
  report: (at: string, message: string) => void,
): number | undefined {
  const value = object[key];
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined) {
    report(
      fieldPath(at, key),
      `expected a duration such as "500ms", "30s", "2m" or a number of ms, got ${typeName(value)}`,
    );
  }
  return ms;
}

function resolvePath(path: string, dir: string): string {
  const joined = path.startsWith("/") ? path : `${dir}/${path}`;
  const parts: string[] = [];
  for (const part of joined.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return "/" + parts.join("/");
}

/** A job's `task` taken apart: `name` is empty when it is not "module#export". */
interface ParsedTask {
  specifier: string;
  /** The module's URL; empty when none can be made of the specifier. */
  module: string;
  name: string;
}

function parseTask(task: string, dir: string): ParsedTask {
  if (!/^.+#[A-Za-z_$][\w$]*$/.test(task)) return { specifier: "", module: "", name: "" };
  const hash = task.lastIndexOf("#");
  const specifier = task.slice(0, hash);
  let module: string;
  try {
    module = resolveAgainst(specifier, dir);
  } catch {
    module = ""; // not a path a URL can hold (say, a lone surrogate)
  }
  return { specifier, module, name: task.slice(hash + 1) };
}

function resolveAgainst(specifier: string, dir: string): string {
  if (/^[a-z][a-z0-9+.-]+:/i.test(specifier)) return specifier;
  return new URL(
    `file://${resolvePath(specifier, dir).split("/").map(encodeURIComponent).join("/")}`,
  ).href;
}
