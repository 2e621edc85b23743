/**
 * The public types of a Redis consumer: its options and its stats, and
 * what the queue hands it.
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";
import type { Clock } from "../run/clock.ts";
import type { RedisClientOptions } from "./client.ts";
import type { QueueKeys } from "./_keys.ts";
import type { QueueResult } from "./_records.ts";

/** Options of {@linkcode RedisQueue.prototype.consume}. */
export interface ConsumeOptions {
  /**
   * Workers of the consumer's pool.
   *
   * @default {navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * Tasks queued in the pool beyond the running ones. The consumer holds at
   * most `workers + capacity` jobs, and takes one only when it has room.
   * Unset, the depth follows the jobs: about as many as the workers finish
   * in one Redis round trip, from `workers * 2` (long jobs) up to 64 (jobs
   * much shorter than a round trip), so short jobs go many per round trip
   * while long ones are not hoarded.
   *
   * @default {automatic: workers * 2 to max(workers * 2, 64)}
   */
  capacity?: number;
  /**
   * The directory that relative task modules and command directories of
   * entries resolve against: a checkout of the code that pushed them.
   *
   * @default {the current directory}
   */
  base?: string;
  /**
   * Milliseconds the consumer's heartbeat lives: it is renewed every third
   * of this (at least every second), and a consumer silent for this long is presumed dead and its
   * jobs are moved back to the queue.
   *
   * @default {10000}
   */
  heartbeat?: number;
  /** The consumer's id (unique among the queue's consumers). @default {host:pid:random} */
  id?: string;
  /**
   * Milliseconds a stopping consumer keeps trying to record the outcomes of
   * the jobs it holds when Redis does not answer; then it gives up, and
   * those jobs stay in its processing list for another consumer to recover
   * (`ConsumerStats.unrecorded` names them). A consumer that holds nothing
   * when it stops makes one short attempt to deregister, and ends.
   *
   * @default {30000}
   */
  grace?: number;
  /**
   * Where the consumer's ticker reads the time and sleeps (the ticks of
   * recurring jobs); a test may pass a clock it moves itself.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /** Stops taking jobs when aborted; what is held finishes (as `stop()`). */
  signal?: AbortSignal;
  /** Called when an attempt starts. */
  onStart?: (job: Job, attempt: number) => void;
  /** Called once per job this consumer finishes: succeeded, failed for good, or malformed. */
  onFinish?: (result: QueueResult) => void;
  /** Called when a failed attempt is scheduled to run again. */
  onRetry?: (job: Job, attempt: number, error: string) => void;
  /** Called when this consumer moved a dead consumer's jobs back to the queue. */
  onRecover?: (moved: number, consumers: string[]) => void;
  /** Called with a one-line warning (the connection was lost, a write failed and is retried). */
  onWarning?: (message: string) => void;
}

/** What a consumer did. */
export interface ConsumerStats {
  /** Entries taken from the queue. */
  taken: number;
  /** Jobs that succeeded. */
  succeeded: number;
  /** Jobs that failed for good (sent to the dead list). */
  failed: number;
  /** Failed attempts scheduled to run again. */
  retried: number;
  /** Jobs cancelled while this consumer held them (see `RedisQueue.prototype.cancel`). */
  cancelled: number;
  /** Malformed entries sent to the dead list. */
  malformed: number;
  /** Entries moved back to the queue from dead consumers. */
  recovered: number;
  /** Ticks of recurring jobs this consumer fired (another consumer fires the rest). */
  fired: number;
  /**
   * Ids of held jobs whose outcome (or retry) could not be recorded before
   * the `grace` of a stop ran out: they stay in the consumer's processing
   * list, for another consumer to recover once its heartbeat expires.
   */
  unrecorded: string[];
}

/**
 * What a consumer takes from its queue. {@linkcode RedisQueue.prototype.consume}
 * hands it over as a plain object; it is not public API.
 */
export interface ConsumerSettings {
  /** The server's URL: the consumer opens connections of its own. */
  url: string;
  /** The queue's options, for those connections. */
  clientOptions: RedisClientOptions;
  /** The queue's keys. */
  keys: QueueKeys;
  /** About how many records `<queue>:results` keeps. */
  maxResults: number;
}

/** A consumer's stats before it did anything. */
export function newStats(): ConsumerStats {
  return {
    taken: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
    cancelled: 0,
    malformed: 0,
    recovered: 0,
    fired: 0,
    unrecorded: [],
  };
}

/** A job a consumer holds (`consumer.ts`). */
export interface Held {
  raw: string;
  job: Job;
  batch: string;
  attempt: number;
  /** The recurring job this entry is a run of, or "". */
  schedule: string;
  value: Record<string, unknown>;
  /** Its cancel was asked for (`<queue>:cancel`): it ends `cancelled`, not retried. */
  cancelled?: boolean;
}
