/**
 * The names of a queue's keys, spelled in one place for the producer, the
 * consumer and the scripts' callers.
 *
 * ## Keys (for a queue named `q`)
 *
 * | key                   | type   | holds                                                |
 * | --------------------- | ------ | ---------------------------------------------------- |
 * | `q`                   | list   | ready entries: producers LPUSH, consumers take RIGHT |
 * | `q:priority`          | zset   | ready entries of priority ≠ 0: `<seq>|<entry>`, −prio |
 * | `q:priorityseq`       | string | the sequence that keeps equal priorities in order    |
 * | `q:processing:<c>`    | list   | what consumer `c` holds (BLMOVE q → here)            |
 * | `q:consumers`         | set    | consumer ids that may hold jobs                      |
 * | `q:heartbeat:<c>`     | string | `c` is alive while it exists (PX TTL): JSON, counts  |
 * | `q:delayed`           | zset   | retries and delayed jobs, scored by when they are due|
 * | `q:blocked`           | hash   | `batch/id` → entry of a job waiting for `after` jobs |
 * | `q:pending`           | hash   | `batch/id` → how many of its `after` jobs are left   |
 * | `q:dependents:<b/id>` | set    | `batch/id`s waiting for job `b/id`                   |
 * | `q:results`           | stream | one record per outcome: batch, id, status, data      |
 * | `q:dead`              | list   | entries that failed for good or were malformed       |
 * | `q:notbefore`         | hash   | `batch/id` → ms: a blocked job's `at`, kept apart    |
 * | `q:schedules`         | hash   | recurring job id → its definition (JSON)             |
 * | `q:ticks`             | zset   | recurring job id, scored by its next tick (ms)       |
 * | `q:active`            | hash   | recurring job id → its runs queued or running        |
 * | `q:lastrun`           | hash   | recurring job id → its last run's id and outcome     |
 * | `q:waiting:<id>`      | list   | runs of job `id` waiting for the one before (queue)  |
 * | `q:unique`            | hash   | a job's `key` → `batch/id` and entry of its holder   |
 * | `q:progress:<c>`      | hash   | `batch/id` → start and progress of a job `c` runs    |
 * | `q:cancel`            | set    | `batch/id`s of running jobs whose cancel was asked   |
 * | `q:groups`            | hash   | group → its limits (JSON); the keys of groups follow |
 * | `q:group:<g>`         | zset   | jobs of group `g` held back by its limits            |
 * | `q:groupactive:<g>`   | set    | `batch/id`s of `g`'s jobs let in and not done        |
 * | `q:grouppending:<g>`  | set    | with a rate: `g`'s jobs let in, not started yet      |
 * | `q:grouprate:<g>`     | zset   | with a rate: `g`'s starts in the last window         |
 * | `q:groupticks`        | zset   | groups held by their rate, by when one may start     |
 *
 * (How a grouped job moves through these: `_group_lua.ts`.)
 *
 * A recurring job's runs are entries like any other, with the id
 * `<job id>@<tick>` and `"schedule": "<job id>"`, from which the ack of
 * their outcome updates `active`, `lastrun` and `waiting:<id>`.
 *
 * The scripts build the names with a consumer id or a job key in them from
 * {@linkcode QueueKeys.prefix}, so the two spellings must agree.
 *
 * @module
 */

/** The key names of queue `name`. */
export interface QueueKeys {
  /** The list of ready entries: the queue's own name. */
  queue: string;
  /** The set of consumer ids that may hold jobs. */
  consumers: string;
  /** The sorted set of retries, by due time. */
  delayed: string;
  /** The hash of jobs waiting for their `after` jobs. */
  blocked: string;
  /** The hash of how many `after` jobs each blocked job still waits for. */
  pending: string;
  /** The stream of outcomes. */
  results: string;
  /** The list of entries that failed for good or were malformed. */
  dead: string;
  /** The hash of blocked jobs' `at` (ms), released to `delayed` when due later. */
  notBefore: string;
  /** The hash of recurring jobs' definitions, by id. */
  schedules: string;
  /** The sorted set of recurring jobs, by their next tick. */
  ticks: string;
  /** The hash of how many runs of each recurring job are queued or running. */
  active: string;
  /** The hash of each recurring job's last run and its outcome. */
  lastRun: string;
  /** The hash of held unique keys: `key` → `<batch/id>\n<entry>` of the job that holds it. */
  unique: string;
  /** The set of refs (`batch/id`) of running jobs whose cancel was asked for. */
  cancel: string;
  /** The sorted set of ready entries whose priority is not 0 (see `_scripts.ts`'s ENQUEUE). */
  priority: string;
  /** The hash of groups' limits, by group name (see `_group_lua.ts`). */
  groups: string;
  /** The list of runs of recurring job `id` waiting for the run before (`overlap: "queue"`). */
  waiting(id: string): string;
  /** Prefix of `processing:<c>`, `heartbeat:<c>`, `dependents:<b/id>`, `waiting:<id>`. */
  prefix: string;
  /** The processing list of a consumer. */
  processing(consumer: string): string;
  /** The heartbeat key of a consumer. */
  heartbeat(consumer: string): string;
  /** The hash of a consumer's running jobs' progress (see `_progress.ts`). */
  progress(consumer: string): string;
}

/**
 * The keys of queue `name`.
 *
 * @param name The queue's name, which is also its list's key.
 * @returns Every key name, and functions for the per-consumer ones.
 *
 * @example Name a consumer's processing list
 * ```ts
 * import { queueKeys } from "./_keys.ts";
 * import assert from "node:assert";
 *
 * const keys = queueKeys("jobs");
 * assert.strictEqual(keys.results, "jobs:results");
 * assert.strictEqual(keys.processing("host:42:ab12"), "jobs:processing:host:42:ab12");
 * ```
 */
export function queueKeys(name: string): QueueKeys {
  const prefix = `${name}:`;
  return {
    queue: name,
    consumers: `${prefix}consumers`,
    delayed: `${prefix}delayed`,
    blocked: `${prefix}blocked`,
    pending: `${prefix}pending`,
    results: `${prefix}results`,
    dead: `${prefix}dead`,
    notBefore: `${prefix}notbefore`,
    schedules: `${prefix}schedules`,
    ticks: `${prefix}ticks`,
    active: `${prefix}active`,
    lastRun: `${prefix}lastrun`,
    unique: `${prefix}unique`,
    cancel: `${prefix}cancel`,
    priority: `${prefix}priority`,
    groups: `${prefix}groups`,
    waiting: (id) => `${prefix}waiting:${id}`,
    prefix,
    processing: (consumer) => `${prefix}processing:${consumer}`,
    heartbeat: (consumer) => `${prefix}heartbeat:${consumer}`,
    progress: (consumer) => `${prefix}progress:${consumer}`,
  };
}

/**
 * The keys a consumer writes, each with the type it must have (or not
 * exist), for `checkKeyTypes` when the consumer starts and after WRONGTYPE.
 *
 * @param keys The queue's keys.
 * @param consumer The consumer's id (its processing list is checked too).
 * @returns `[key, type]` pairs, types as `TYPE` names them.
 *
 * @example The results must be a stream
 * ```ts
 * import { consumerKeyTypes, queueKeys } from "./_keys.ts";
 * import assert from "node:assert";
 *
 * const pairs = consumerKeyTypes(queueKeys("jobs"), "c1");
 * assert.deepStrictEqual(pairs.find(([key]) => key === "jobs:results"), ["jobs:results", "stream"]);
 * ```
 */
export function consumerKeyTypes(keys: QueueKeys, consumer: string): Array<[string, string]> {
  return [
    [keys.queue, "list"],
    [keys.processing(consumer), "list"],
    [keys.results, "stream"],
    [keys.dead, "list"],
    [keys.blocked, "hash"],
    [keys.pending, "hash"],
    [keys.delayed, "zset"],
    [keys.notBefore, "hash"],
    [keys.active, "hash"],
    [keys.lastRun, "hash"],
    [keys.unique, "hash"],
    [keys.progress(consumer), "hash"],
    [keys.cancel, "set"],
    [keys.priority, "zset"],
    [`${keys.prefix}priorityseq`, "string"],
    [keys.groups, "hash"],
    [`${keys.prefix}groupticks`, "zset"],
  ];
}

/**
 * The KEYS of the ACK script (see `_scripts.ts`), in its order.
 *
 * @param keys The queue's keys.
 * @param consumer The calling consumer's id.
 * @returns The key names.
 *
 * @example The caller's processing list comes first
 * ```ts
 * import { ackKeys, queueKeys } from "./_keys.ts";
 * import assert from "node:assert";
 *
 * const keys = ackKeys(queueKeys("jobs"), "c1");
 * assert.strictEqual(keys[0], "jobs:processing:c1");
 * assert.strictEqual(keys.length, 13);
 * ```
 */
export function ackKeys(keys: QueueKeys, consumer: string): string[] {
  return [
    keys.processing(consumer),
    keys.queue,
    keys.results,
    keys.dead,
    keys.blocked,
    keys.pending,
    keys.active,
    keys.lastRun,
    keys.delayed,
    keys.notBefore,
    keys.unique,
    keys.progress(consumer),
    keys.cancel,
  ];
}
