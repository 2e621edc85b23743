/**
 * Running a job file's jobs on a worker pool: dependencies, priorities,
 * retries with backoff, timeouts, command jobs, and the drain-on-exit of a
 * stop (`Scheduler`).
 *
 * @example Run one job
 * ```ts
 * import { Scheduler, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const checked = validateJobFile({ jobs: [{ id: "hi", command: ["true"] }] }, "/tmp/jobs.json");
 * assert(checked.ok);
 * const [result] = await new Scheduler(checked.file, { workers: 1 }).run();
 * assert.strictEqual(result.status, "succeeded");
 * ```
 *
 * @module
 */

export * from "./scheduler.ts";
export * from "./types.ts";
export * from "./clock.ts";
