/**
 * The plan of a job file: the order its jobs would start in, as the CLI's
 * `--dry-run` prints it.
 *
 * @module
 */

import type { Job, JobFile } from "./job_file.ts";

/**
 * The order jobs would start in: levels of jobs whose dependencies are all
 * in earlier levels, each sorted by priority (higher first), then file order.
 *
 * @param file A validated job file.
 * @returns The levels, as lists of job ids.
 *
 * @example Plan a job file
 * ```ts
 * import { plan, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const result = validateJobFile({
 *   jobs: [{ id: "b", command: ["true"], after: ["a"] }, { id: "a", command: ["true"] }],
 * }, "/tmp/jobs.json");
 * assert(result.ok);
 * assert.deepStrictEqual(plan(result.file), [["a"], ["b"]]);
 * ```
 */
export function plan(file: JobFile): string[][] {
  // Depth = 1 + the deepest dependency, computed in dependency order
  // (Kahn's algorithm: no recursion, so a long chain is fine).
  const depth = new Map<string, number>();
  const left = new Map(file.jobs.map((job) => [job.id, job.after.length]));
  const dependents = new Map<string, Job[]>();
  for (const job of file.jobs) {
    for (const dep of job.after) {
      const list = dependents.get(dep);
      if (list) list.push(job);
      else dependents.set(dep, [job]);
    }
  }
  const ready = file.jobs.filter((job) => job.after.length === 0);
  for (const job of ready) depth.set(job.id, 0);
  while (ready.length > 0) {
    const job = ready.pop()!;
    for (const next of dependents.get(job.id) ?? []) {
      depth.set(next.id, Math.max(depth.get(next.id) ?? 0, depth.get(job.id)! + 1));
      const remaining = left.get(next.id)! - 1;
      left.set(next.id, remaining);
      if (remaining === 0) ready.push(next);
    }
  }
  const levels: Job[][] = [];
  for (const job of file.jobs) (levels[depth.get(job.id) ?? 0] ??= []).push(job);
  return levels.map((jobs) =>
    jobs.sort((a, b) => b.priority - a.priority || a.index - b.index).map((job) => job.id)
  );
}
