/**
 * Validation of a job file: every problem of a parsed file found at once,
 * each with its JSON path and a way to fix it, or the file with its
 * defaults applied and its paths resolved.
 *
 * @module
 */

import type { Job, JobFileProblem, Validation } from "./job_file.ts";
import {
  DEFAULT_FIELDS,
  durationField,
  isObject,
  numberField,
  optionalInteger,
  show,
  TOP_FIELDS,
  typeName,
  unknownFields,
  unknownJobFields,
} from "./_fields.ts";
import { type ParsedTask, parseTask, resolvePath } from "./_resolve.ts";
import { suggest } from "./_suggest.ts";
import { findCycle } from "./_cycle.ts";

/** A job's `backoff` when neither it nor `defaults` gives one, in ms. */
const DEFAULT_BACKOFF_MS = 1000;

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
