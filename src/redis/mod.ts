/**
 * A job queue in Redis that several machines consume at once: the producer
 * ({@linkcode RedisQueue}), the consumer ({@linkcode RedisConsumer}), and the
 * small RESP client they run on ({@linkcode RedisClient}), which is also
 * handy for looking into a queue's keys.
 *
 * @example Look at a queue
 * ```ts
 * import { RedisQueue } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using queue = await RedisQueue.connect({ url, queue: `doc:${crypto.randomUUID()}` });
 *   const counts = await queue.counts();
 *   assert.strictEqual(counts.queued, 0);
 * }
 * ```
 *
 * @module
 */

export {
  type PushDuplicate,
  type PushReceipt,
  type QueueCounts,
  RedisQueue,
  type RedisQueueOptions,
  type ScheduleInfo,
} from "./queue.ts";
export { RedisConsumer } from "./consumer.ts";
export type { ConsumeOptions, ConsumerStats } from "./types.ts";
export type { QueueResult } from "./_records.ts";
export type { CancelReport } from "./_cancel.ts";
export type { GroupInfo } from "./_groups.ts";
export type {
  ConsumerInfo,
  DeadAction,
  DeadRecord,
  OutcomeCounts,
  OutcomeMark,
  OutcomeRecord,
  RunningJob,
} from "./_inspect.ts";
export {
  type RedisArg,
  RedisClient,
  type RedisClientOptions,
  type RedisReply,
  type RedisSendOptions,
} from "./client.ts";
export { parseRedisUrl, type RedisUrl } from "./_url.ts";
export { RedisConnectionError, RedisError } from "../errors.ts";
