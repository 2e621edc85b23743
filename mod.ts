/**
 * taskpool: a Deno-native task scheduler. A bounded channel in shared memory
 * (Rust's `sync_channel` across Web Workers); built on it, a worker pool
 * (`WorkerPool`); on the pool, a scheduler for job files (`Scheduler`, the
 * CLI's engine); and a queue in Redis that several machines consume at once
 * (`RedisQueue`).
 *
 * @example A channel between two ends
 * ```ts
 * import { syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<string>(8);
 * await tx.send("hello");
 * tx.close();
 * assert.deepStrictEqual(await Array.fromAsync(rx), ["hello"]);
 * ```
 *
 * @module
 */

export * from "./src/channel/mod.ts";
export * from "./src/errors.ts";
export * from "./src/pool/mod.ts";
export * from "./src/jobs/mod.ts";
export * from "./src/run/mod.ts";
export * from "./src/redis/mod.ts";
export * from "./src/dashboard/mod.ts";
