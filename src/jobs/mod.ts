/**
 * Job files: reading one ({@linkcode readJobFile}), validating it
 * ({@linkcode validateJobFile}), checking that its task modules load
 * ({@linkcode checkTasks}), the order its jobs start in ({@linkcode plan}),
 * the durations it may hold ({@linkcode parseDuration}), and the schedules of
 * its recurring jobs ({@linkcode parseCron}, {@linkcode parseEvery}). Every problem
 * of a file is found before anything runs, each with its JSON path and a way
 * to fix it.
 *
 * @example Validate a job file and plan it
 * ```ts
 * import { plan, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const result = validateJobFile({
 *   jobs: [
 *     { id: "test", command: ["make", "test"], after: ["build"] },
 *     { id: "build", command: ["make"] },
 *   ],
 * }, "/tmp/jobs.json");
 * assert(result.ok);
 * assert.deepStrictEqual(plan(result.file), [["build"], ["test"]]);
 * ```
 *
 * @module
 */

export * from "./job_file.ts";
export * from "./validate.ts";
export * from "./check_tasks.ts";
export * from "./plan.ts";
export * from "./duration.ts";
export * from "./cron.ts";
export * from "./every.ts";
export { JobFileError } from "../errors.ts";
export * from "./groups.ts";
