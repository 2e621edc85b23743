/**
 * A pool of Deno Web Workers fed through one shared bounded queue in a
 * SharedArrayBuffer: `run`, `submit`, `execute` and `map` tasks, with
 * backpressure, cancellation, crash recovery and a draining `close()`.
 * Inside a task, `taskSignal()` is its abort signal.
 *
 * @example Run a function in a worker
 * ```ts
 * import { WorkerPool } from "@taskpool/taskpool/pool";
 * import assert from "node:assert";
 *
 * await using pool = new WorkerPool({ workers: 1 });
 * assert.strictEqual(await pool.execute((n: number) => n + 1, 41), 42);
 * ```
 *
 * @module
 */

export * from "./worker_pool.ts";
export * from "./types.ts";
export * from "./task_signal.ts";
export { PoolClosedError, TaskError, TimeoutError, WorkerCrashedError } from "../errors.ts";
