/**
 * Validation of a job file: every problem of a parsed file found at once,
 * each with its JSON path and a way to fix it, or the file with its
 * defaults applied and its paths resolved.
 *
 * @module
 */

import type { Job, JobFile, JobFileProblem, Validation } from "./job_file.ts";
import {
  DEFAULT_FIELDS,
  durationField,
  isObject,
  numberField,
  optionalInteger,
  type Report,
  show,
  TOP_FIELDS,
  typeName,
  unknownFields,
  unknownJobFields,
} from "./_fields.ts";
import { type ParsedTask, parseTask, resolvePath } from "./_resolve.ts";
import {
  hasTimeFields,
  readTimeFields,
  type ScheduleCache,
  type TimeFields,
} from "./_time_fields.ts";
import { suggest } from "./_suggest.ts";
import { findCycle } from "./_cycle.ts";
import { groupNameProblem, readGroups } from "./groups.ts";

/** A job's `backoff` when neither it nor `defaults` gives one, in ms. */
const DEFAULT_BACKOFF_MS = 1000;

/** What a job takes when it does not say: the file's `defaults`, else taskpool's. */
interface Defaults {
  priority: number;
  retries: number;
  backoff: number;
  timeout: number | undefined;
}

/**
 * What thousands of jobs of one file share, parsed once: tasks (by their
 * `task`) and schedules (by their rule).
 */
interface FileCache {
  tasks: Map<string, ParsedTask>;
  schedules: ScheduleCache;
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
  const report: Report = (at, message) => problems.push({ path: at, message });
  const dir = path.replace(/\/[^/]*$/, "") || "/";
  if (!isObject(data)) {
    report("(file)", `expected a JSON object with "jobs", got ${typeName(data)}`);
    return { ok: false, problems };
  }
  unknownFields(data, TOP_FIELDS, "", report);
  const workers = optionalInteger(data, "workers", "", 1, 1024, report);
  const capacity = optionalInteger(data, "capacity", "", 1, 1 << 20, report);
  const base = readDefaults(data.defaults, report);
  const groups = readGroups(data.groups, report);
  if (!Array.isArray(data.jobs)) {
    report(
      "jobs",
      data.jobs === undefined
        ? 'missing: add "jobs": [ … ]'
        : `expected an array, got ${typeName(data.jobs)}`,
    );
    return { ok: false, problems };
  }
  const list: unknown[] = data.jobs;
  // Every job with a usable id, by its id: the known ids, for duplicates,
  // dependencies and cycles.
  const byId = new Map<string, Job>();
  const jobs = readJobs(list, base, dir, byId, report);
  unknownDependencies(jobs, byId, list, report);
  const cycle = findCycle(jobs, byId, list.length);
  if (cycle) report(`jobs[${cycle.index}].after`, `dependency cycle: ${cycle.path.join(" → ")}`);
  if (problems.length > 0) return { ok: false, problems };
  const file: JobFile = { path, workers, capacity, jobs };
  if (groups !== undefined) file.groups = groups;
  return { ok: true, file };
}

/** The file's `defaults`, checked; what it leaves out is taskpool's own. */
function readDefaults(value: unknown, report: Report): Defaults {
  const defaults = isObject(value) ? value : {};
  if (value !== undefined && !isObject(value)) {
    report("defaults", `expected an object, got ${typeName(value)}`);
  } else if (value !== undefined) {
    unknownFields(defaults, DEFAULT_FIELDS, "defaults", report);
  }
  return {
    priority: numberField(defaults, "priority", "defaults", report) ?? 0,
    retries: optionalInteger(defaults, "retries", "defaults", 0, 100, report) ?? 0,
    backoff: durationField(defaults, "backoff", "defaults", report) ?? DEFAULT_BACKOFF_MS,
    timeout: durationField(defaults, "timeout", "defaults", report),
  };
}

/**
 * The jobs of `list` that have a usable id, in file order, each also put in
 * `byId`. An entry that is not an object or has no id is left out with its
 * problem reported; a job with a duplicate id is checked (every problem of
 * it reported) and left out; a job with other problems is kept (its id and
 * dependencies matter to the checks that follow) and its problems reported.
 */
function readJobs(
  list: unknown[],
  base: Defaults,
  dir: string,
  byId: Map<string, Job>,
  report: Report,
): Job[] {
  const jobs: Job[] = [];
  // Thousands of jobs name the same few tasks and rules: parse each once.
  const cache: FileCache = { tasks: new Map(), schedules: new Map() };
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
      // Its other fields are checked all the same (every problem at once),
      // but it stays out of the known ids: the first job of the id is "id".
      readJob(raw, index, id, base, dir, cache, report);
      continue;
    }
    const job = readJob(raw, index, id, base, dir, cache, report);
    byId.set(id, job);
    jobs.push(job);
  }
  return jobs;
}

/**
 * Job `index`, whose id `readJobs` has checked: its fields read, its
 * defaults applied, its paths resolved, and its problems reported. With a
 * problem, the job is made all the same, but the file is not returned.
 */
function readJob(
  raw: Record<string, unknown>,
  index: number,
  id: string,
  base: Defaults,
  dir: string,
  cache: FileCache,
  report: Report,
): Job {
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
  const after: string[] = []; // filled last, so that its problems follow the job's others
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
    // and dependencies matter (for the checks that follow).
    job = { id, index, kind: "task", args: [], after, priority, retries, backoff, timeout };
  } else if (hasTask) {
    const task = readTask(raw.task, index, dir, cache.tasks, report);
    const args = readArgs(raw.args, index, report);
    otherKindFields(raw, "task", index, report);
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
    const command = readCommand(raw.command, index, report);
    otherKindFields(raw, "command", index, report);
    const cwd = raw.cwd === undefined ? dir : readCwd(raw.cwd, index, dir, report);
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
      command,
      cwd,
    };
    const env = raw.env === undefined ? undefined : readEnv(raw.env, index, report);
    if (env !== undefined) job.env = env;
  }
  // For speed, one test for all the time fields: most jobs have none, and
  // then the job keeps the shape it was made with.
  if (hasTimeFields(raw)) addTimeFields(job, readTimeFields(raw, index, cache.schedules, report));
  if (raw.key !== undefined || raw.onDuplicate !== undefined) readKey(raw, index, job, report);
  if (raw.group !== undefined) {
    const problem = groupNameProblem(raw.group);
    if (problem === undefined) job.group = raw.group as string;
    else report(`jobs[${index}].group`, problem);
  }
  // A recurring job's `after` is a problem, which readTimeFields reports.
  if (raw.after !== undefined && raw.cron === undefined && raw.every === undefined) {
    readAfter(raw.after, index, id, after, report);
  }
  return job;
}

/** The longest `key`, in characters. */
const MAX_KEY_LENGTH = 1024;

/** Reads job `index`'s `key` and `onDuplicate` into `job`, reporting what is wrong. */
function readKey(raw: Record<string, unknown>, index: number, job: Job, report: Report): void {
  const key = raw.key;
  if (key !== undefined) {
    if (typeof key !== "string" || key === "" || key.length > MAX_KEY_LENGTH) {
      report(
        `jobs[${index}].key`,
        `expected a non-empty string of at most ${MAX_KEY_LENGTH} characters, got ${show(key)}`,
      );
    } else if (raw.cron !== undefined || raw.every !== undefined) {
      report(
        `jobs[${index}].key`,
        "a recurring job cannot have a key: each of its runs is a job of its own; remove the key",
      );
    } else job.key = key;
  }
  const onDuplicate = raw.onDuplicate;
  if (onDuplicate === undefined) return;
  if (onDuplicate !== "skip" && onDuplicate !== "replace") {
    report(`jobs[${index}].onDuplicate`, `expected "skip" or "replace", got ${show(onDuplicate)}`);
  } else if (key === undefined) {
    report(
      `jobs[${index}].onDuplicate`,
      'only a job with a "key" has duplicates; add a key or remove this',
    );
  } else job.onDuplicate = onDuplicate;
}

/** Adds to `job` the time fields it has (and only those: see the doc of `Job`). */
function addTimeFields(job: Job, time: TimeFields): void {
  if (time.delay !== undefined) job.delay = time.delay;
  if (time.at !== undefined) job.at = time.at;
  if (time.schedule !== undefined) job.schedule = time.schedule;
  if (time.overlap !== undefined) job.overlap = time.overlap;
  if (time.catchUp !== undefined) job.catchUp = time.catchUp;
}

/**
 * Job `index`'s `task`, taken apart and resolved against `dir`, through
 * `tasks` (each distinct task once). Reports a task that is not
 * "module#export" or whose module makes no URL; returns it all the same.
 */
function readTask(
  value: unknown,
  index: number,
  dir: string,
  tasks: Map<string, ParsedTask>,
  report: Report,
): ParsedTask | undefined {
  let task: ParsedTask | undefined;
  if (typeof value === "string") {
    task = tasks.get(value);
    if (task === undefined) tasks.set(value, task = parseTask(value, dir));
  }
  if (task === undefined || task.name === "") {
    report(`jobs[${index}].task`, `expected "path/to/module.ts#exportName", got ${show(value)}`);
  } else if (task.module === "") {
    report(`jobs[${index}].task`, `cannot make a module URL of ${show(task.specifier)}`);
  }
  return task;
}

/** Reports the fields of job `index`, of kind `kind`, that only the other kind takes. */
function otherKindFields(
  raw: Record<string, unknown>,
  kind: "task" | "command",
  index: number,
  report: Report,
): void {
  if (kind === "task") {
    if (raw.cwd !== undefined) report(`jobs[${index}].cwd`, 'only command jobs take "cwd"');
    if (raw.env !== undefined) report(`jobs[${index}].env`, 'only command jobs take "env"');
  } else if (raw.args !== undefined) {
    report(`jobs[${index}].args`, 'only task jobs take "args"; put them in "command"');
  }
}

/** Task job `index`'s `args`: the array itself, or an empty one when it is missing or wrong. */
function readArgs(value: unknown, index: number, report: Report): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    report(`jobs[${index}].args`, `expected an array of arguments, got ${typeName(value)}`);
    return [];
  }
  return value;
}

/** Command job `index`'s `command`: a non-empty array of strings, else `undefined`. */
function readCommand(value: unknown, index: number, report: Report): string[] | undefined {
  if (
    !Array.isArray(value) || value.length === 0 ||
    value.some((part) => typeof part !== "string")
  ) {
    report(
      `jobs[${index}].command`,
      `expected a non-empty array of strings such as ["gzip", "-k", "big.log"], got ${show(value)}`,
    );
    return undefined;
  }
  return value as string[];
}

/** Command job `index`'s `cwd` (given), resolved against `dir`; `undefined` when it is not a string. */
function readCwd(value: unknown, index: number, dir: string, report: Report): string | undefined {
  if (typeof value !== "string") {
    report(`jobs[${index}].cwd`, `expected a path, got ${typeName(value)}`);
    return undefined;
  }
  return resolvePath(value, dir);
}

/** Command job `index`'s `env` (given): an object of strings, else `undefined`. */
function readEnv(
  value: unknown,
  index: number,
  report: Report,
): Record<string, string> | undefined {
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    report(`jobs[${index}].env`, "expected an object of string values");
    return undefined;
  }
  return value as Record<string, string>;
}

/**
 * Fills `after`, job `index`'s dependencies, from its `after` (given):
 * each entry that is a string and not the job's own `id`. The others are
 * reported. Whether a dependency names a job is checked once all are read.
 */
function readAfter(
  value: unknown,
  index: number,
  id: string,
  after: string[],
  report: Report,
): void {
  if (!Array.isArray(value)) {
    report(`jobs[${index}].after`, `expected an array of job ids, got ${typeName(value)}`);
    return;
  }
  for (let k = 0; k < value.length; k++) {
    const dep: unknown = value[k];
    if (typeof dep !== "string") {
      report(`jobs[${index}].after[${k}]`, `expected a job id, got ${typeName(dep)}`);
    } else if (dep === id) {
      report(`jobs[${index}].after[${k}]`, `a job cannot wait for itself`);
    } else after.push(dep);
  }
}

/**
 * Reports each dependency that names no job of the file, with the id it
 * most likely meant, or names a recurring job (which never ends, so no job
 * can wait for it). It runs once every job is read, since a job may wait
 * for one further down the file.
 */
function unknownDependencies(
  jobs: Job[],
  byId: Map<string, Job>,
  list: unknown[],
  report: Report,
): void {
  // Every job in `jobs` has its id in `byId`: it is the set of known ids.
  // (An index rather than for-of: no iterator, in code that runs cold.)
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j];
    for (let k = 0; k < job.after.length; k++) {
      const dep = job.after[k];
      const target = byId.get(dep);
      if (target !== undefined && target.schedule === undefined && target.key === undefined) {
        continue;
      }
      // Its place in the file: entries that were not ids are not in `job.after`.
      const at = (list as Record<string, unknown[]>[])[job.index].after.indexOf(dep);
      if (target?.key !== undefined) {
        report(
          `jobs[${job.index}].after[${at}]`,
          `"${dep}" has a key (jobs[${target.index}]): a push may skip it as a duplicate, so no job can wait for it; remove its key or this dependency`,
        );
        continue;
      }
      if (target !== undefined) {
        report(
          `jobs[${job.index}].after[${at}]`,
          `"${dep}" is a recurring job (jobs[${target.index}]): it runs at each tick and never ends, so no job can wait for it`,
        );
        continue;
      }
      // The job itself is never the suggestion: it cannot wait for itself.
      const hint = suggest(dep, jobs.filter((other) => other !== job).map((other) => other.id));
      report(
        `jobs[${job.index}].after[${at}]`,
        `unknown job "${dep}"${hint ? `; did you mean "${hint}"?` : ""}`,
      );
    }
  }
}
