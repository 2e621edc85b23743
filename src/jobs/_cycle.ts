/**
 * The dependency-cycle check of validation: the one walk over the whole
 * dependency graph, written for files of many thousands of jobs and chains
 * as long (no recursion, no maps of its own).
 *
 * @module
 */

import type { Job } from "./job_file.ts";

/**
 * A dependency cycle among jobs (only their known dependencies), as
 * `a → b → a`: the first found, walking from each job in file order.
 * For speed, it looks ids up in validation's own map of them, `byId`, and
 * keeps each job's state in a typed array indexed by its position in the
 * file (`count` is the file's number of jobs): no maps of its own.
 *
 * @param jobs The valid jobs, in file order.
 * @param byId The same jobs by id: the known ids.
 * @param count The number of entries in the file's `jobs` (more than any job's `index`).
 * @returns Where the cycle closes (the file index of the job it comes back
 * to) and its ids, first and last alike; or `undefined` when there is none.
 *
 * @example Find a cycle of two jobs
 * ```ts
 * import { findCycle } from "./_cycle.ts";
 * import type { Job } from "./job_file.ts";
 * import assert from "node:assert";
 *
 * const job = (id: string, index: number, after: string[]): Job => ({
 *   id, index, kind: "command", args: [], after, priority: 0, retries: 0, backoff: 0,
 * });
 * const jobs = [job("a", 0, ["b"]), job("b", 1, ["a"]), job("c", 2, [])];
 * const byId = new Map(jobs.map((job) => [job.id, job]));
 * assert.deepStrictEqual(findCycle(jobs, byId, 3), { index: 0, path: ["a", "b", "a"] });
 * ```
 */
export function findCycle(
  jobs: Job[],
  byId: Map<string, Job>,
  count: number,
): { index: number; path: string[] } | undefined {
  const state = new Uint8Array(count); // 0: not seen, 1: on the path, 2: done
  // An explicit stack (a long chain must not overflow the call stack), empty
  // again after each walk: each root reuses it.
  const path: Job[] = [];
  const next: number[] = [];
  for (let j = 0; j < jobs.length; j++) {
    const root = jobs[j];
    // A job that waits for nothing is on no cycle: no walk, no state.
    if (root.after.length === 0 || state[root.index] !== 0) continue;
    path.push(root);
    next.push(0);
    state[root.index] = 1;
    while (path.length > 0) {
      const job = path[path.length - 1];
      const k = next[next.length - 1]++;
      if (k >= job.after.length) {
        state[job.index] = 2;
        path.pop();
        next.pop();
        continue;
      }
      const dep = byId.get(job.after[k]);
      if (dep === undefined) continue;
      const seen = state[dep.index];
      if (seen === 1) {
        const cycle = path.slice(path.indexOf(dep)).map((job) => job.id);
        cycle.push(dep.id);
        return { index: dep.index, path: cycle };
      }
      if (seen === 0) {
        state[dep.index] = 1;
        path.push(dep);
        next.push(0);
      }
    }
  }
  return undefined;
}
