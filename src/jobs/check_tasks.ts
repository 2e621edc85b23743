/**
 * The check that a job file's tasks exist: each task module imported once,
 * in this thread, and each task's export looked up in it. Kept apart from
 * validation, which never imports anything.
 *
 * @module
 */

import type { JobFile, JobFileProblem } from "./job_file.ts";
import { suggest } from "./_suggest.ts";

/**
 * Checks that every task job's module exists and exports its function
 * (importing each module once, in this thread). Returns the problems.
 *
 * @param file A validated job file.
 * @returns Problems with paths, empty when all is well.
 *
 * @example Check task modules
 * ```ts
 * import { checkTasks, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const result = validateJobFile({ jobs: [{ id: "a", task: "./missing.ts#run" }] }, "/tmp/jobs.json");
 * assert(result.ok);
 * const problems = await checkTasks(result.file);
 * assert.match(problems[0].message, /cannot load/);
 * ```
 */
export async function checkTasks(file: JobFile): Promise<JobFileProblem[]> {
  const problems: JobFileProblem[] = [];
  // Each module once, in order; for speed, a module already loaded (or
  // failed) is taken from this map without an await for every job.
  const modules = new Map<string, Record<string, unknown> | Error>();
  const jobs = file.jobs;
  for (let j = 0; j < jobs.length; j++) {
    const job = jobs[j];
    if (job.kind !== "task" || job.module === undefined) continue;
    let loaded = modules.get(job.module);
    if (loaded === undefined) {
      const loading: Promise<Record<string, unknown> | Error> = import(job.module)
        .catch((error: Error) => error);
      loaded = await loading;
      modules.set(job.module, loaded);
    }
    const module = loaded;
    if (module instanceof Error) {
      problems.push({
        path: `jobs[${job.index}].task`,
        message: `cannot load ${job.module}: ${firstLine(module.message)}`,
      });
    } else if (typeof module[job.name!] !== "function") {
      const exported = Object.keys(module).filter((key) => typeof module[key] === "function");
      const hint = suggest(job.name!, exported);
      problems.push({
        path: `jobs[${job.index}].task`,
        message: `${job.module} has no exported function "${job.name}"${
          hint
            ? `; did you mean "${hint}"?`
            : `; it exports ${exported.map((n) => `"${n}"`).join(", ") || "no functions"}`
        }`,
      });
    }
  }
  return problems;
}

/** The first line of a load error (a syntax error's message goes on to quote the source). */
function firstLine(text: string): string {
  return text.split("\n")[0];
}
