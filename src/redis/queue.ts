/**
 * The producer side of the Redis queue: {@linkcode RedisQueue} connects,
 * pushes job files, waits for their outcomes, counts, and starts consumers
 * (`consumer.ts`). The keys are named in `_keys.ts`; the scripts that move
 * jobs between them, and why no job is lost, are in `_scripts.ts`.
 *
 * @module
 */

import type { JobFile } from "../jobs/mod.ts";
import { RedisConnectionError } from "../errors.ts";
import { delay } from "../_util.ts";
import { RedisClient, type RedisClientOptions, type RedisReply } from "./client.ts";
import { RedisConsumer } from "./consumer.ts";
import type { ConsumeOptions, ConsumerSettings } from "./types.ts";
import { type QueueKeys, queueKeys } from "./_keys.ts";
import { hashTagOf } from "./_cluster.ts";
import { type GroupInfo, groupsOf, heldBack, setGroup } from "./_groups.ts";
import type { GroupLimits, GroupRate } from "../jobs/groups.ts";
import { runScript, UNSCHEDULE, WAKE } from "./_scripts.ts";
import { PUSH } from "./_push.ts";
import { entryOf, notBefore } from "./_entry.ts";
import { type Definition, definitionOf, scheduleOf } from "./_definition.ts";
import { parseResult, type QueueResult, streamRecords } from "./_records.ts";
import { retryWait, withBlock } from "./_timing.ts";
import {
  type ConsumerInfo,
  consumersOf,
  type DeadAction,
  deadOf,
  type DeadRecord,
  deadRecordFor,
  deleteDead,
  latestOutcomes,
  outcomeAt,
  type OutcomeCounts,
  outcomeCounts,
  type OutcomeMark,
  type OutcomeRecord,
  retryDead,
  type RunningJob,
  runningOf,
} from "./_inspect.ts";
import { cancelJobs, type CancelReport } from "./_cancel.ts";

/** Options of {@linkcode RedisQueue.connect}. */
export interface RedisQueueOptions extends RedisClientOptions {
  /**
   * The server: `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
   *
   * @default {the TASKPOOL_REDIS_URL environment variable}
   */
  url?: string;
  /** The list that holds the queue's jobs; the other keys start with its name and ":". */
  queue: string;
  /**
   * About how many outcomes `<queue>:results` keeps (older ones are trimmed).
   *
   * @default {1000000}
   */
  maxResults?: number;
}

/** What {@linkcode RedisQueue.prototype.push} enqueued. */
export interface PushReceipt {
  /** The id of this push; entries carry it as `batch`. */
  batch: string;
  /** The one-off jobs' ids enqueued, in file order: what `wait()` waits for (duplicates are not). */
  ids: string[];
  /**
   * Jobs with a `key` that a job in the queue held, so not enqueued: each
   * with the id of the holder (in its own push) and whether the holder's
   * entry was replaced by this job's (`onDuplicate: "replace"`).
   */
  duplicates: PushDuplicate[];
  /** The recurring jobs registered (or replaced) by the push: `wait()` does not wait for their runs. */
  schedules: string[];
  /** The last record of `<queue>:results` before the push: outcomes are read from here on. */
  from: string;
}

/** A job of a push that was not enqueued: its key was held (see {@linkcode PushReceipt.duplicates}). */
export interface PushDuplicate {
  /** This job's id. */
  id: string;
  /** The id of the job that holds the key, and its push's batch. */
  heldBy: { id: string; batch: string };
  /** The holder's entry was replaced by this job's (it keeps the holder's id). */
  replaced: boolean;
}

/** A recurring job registered in a queue, from {@linkcode RedisQueue.prototype.schedules}. */
export interface ScheduleInfo {
  /** The job's id; its runs are `<id>@<tick>`. */
  id: string;
  /** Its rule: `cron <expression>` or `every <duration>`. */
  rule: string;
  /** The time zone of a cron rule ("UTC" for `every`). */
  timezone: string;
  /** Its next tick, ms since the epoch (`undefined` while a consumer is firing it). */
  next?: number;
  /** Its last run that has an outcome, and that outcome. */
  lastRun?: { id: string; status: string };
  /** Its runs queued or running now. */
  active: number;
  /** What a tick does while a run before it is under way: `skip`, `queue` or `allow`. */
  overlap: string;
  /** What a consumer does with ticks a whole period old: `skip` them, or run `one`. */
  catchUp: string;
}

/** How many entries each part of a queue holds. */
export interface QueueCounts {
  /** Waiting in the list. */
  queued: number;
  /** Held by consumers (in their processing lists). */
  processing: number;
  /** Retries waiting for their backoff. */
  delayed: number;
  /** Waiting for their `after` jobs. */
  blocked: number;
  /** In the dead list. */
  dead: number;
  /** Registered consumers. */
  consumers: number;
}

/** Milliseconds `wait()` blocks per XREAD. */
const READ_BLOCK_MS = 1000;
const DEFAULT_MAX_RESULTS = 1_000_000;
/** Jobs per PUSH call: a push of any size goes in calls of this many. */
export const PUSH_CHUNK = 1000;
/** PUSH calls a push keeps in flight at once. */
const PUSH_IN_FLIGHT = 4;

/** One PUSH call's jobs, as the script reads them. */
interface PushChunk {
  jobs: number;
  /**
   * An entry, or a keyed one: `[entry, ref, key, replace 0/1, head bytes,
   * tail bytes, priority]`, and its group last if it has one.
   */
  ready: (string | (string | number)[])[];
  /** `[priority, entry]` of unkeyed ready jobs whose priority is not 0 (`<queue>:priority`). */
  prioritized: [number, string][];
  /** `[priority, entry, group]` of unkeyed ready jobs with a group (held back by it: `_group_lua.ts`). */
  grouped: [number, string, string][];
  /** `[at, member]`, or with a key `[at, member, ref, key]`. */
  later: ([number, string] | [number, string, string, string])[];
  /** `[ref, entry, after refs, at]`, or with a key `[…, key]`. */
  blocked: ([string, string, string[], number] | [string, string, string[], number, string])[];
  schedules: [string, string, number][];
}

const encoder = new TextEncoder();

function newChunk(): PushChunk {
  return {
    jobs: 0,
    ready: [],
    prioritized: [],
    grouped: [],
    later: [],
    blocked: [],
    schedules: [],
  };
}

/**
 * A job queue in a Redis list, shared by any number of producers and
 * consumers on any number of machines.
 *
 * Guarantees:
 * - **At least once.** A consumer moves each entry atomically into its own
 *   processing list (BLMOVE) and removes it only together with recording
 *   its outcome. A consumer that dies (its heartbeat expires) has its list
 *   moved back to the queue by another. So a job can run twice (a consumer
 *   that died after finishing, before recording): make tasks idempotent.
 * - **Retries** go to `<queue>:delayed` for their backoff, with the attempt
 *   number in the entry; after the last attempt the entry goes to
 *   `<queue>:dead` with its error. Malformed entries go there too.
 * - **Dependencies** (`after`) between the jobs of one push are honoured
 *   across consumers: a job is queued only once its dependencies have
 *   succeeded, and is recorded `skipped` if one failed.
 * - **Order**: first in, first out, except that moved-back and pushed jobs
 *   of higher `priority` go first; with several consumers, jobs may finish
 *   in any order.
 *
 * @example Push two jobs, one after the other, and wait for their outcomes
 * ```ts
 * import { RedisClient, RedisQueue, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   const name = `doc:${crypto.randomUUID()}`;
 *   await using queue = await RedisQueue.connect({ url, queue: name });
 *   const checked = validateJobFile({
 *     jobs: [{ id: "build", command: ["true"] }, { id: "test", command: ["true"], after: ["build"] }],
 *   }, "./jobs.json");
 *   assert(checked.ok);
 *   const receipt = await queue.push(checked.file);
 *   const consumer = queue.consume({ workers: 2 });
 *   const results = await queue.wait(receipt);
 *   consumer.stop();
 *   await consumer.done;
 *   assert.deepStrictEqual(results.map((r) => r.status), ["succeeded", "succeeded"]);
 *   await using redis = await RedisClient.connect(url);
 *   await redis.send(["DEL", `${name}:results`]); // the only key a finished queue leaves
 * }
 * ```
 */
export class RedisQueue {
  /** The queue's list key. */
  readonly name: string;
  readonly #url: string;
  readonly #options: RedisQueueOptions;
  readonly #client: RedisClient;
  readonly #keys: QueueKeys;
  readonly #maxResults: number;
  #reader: RedisClient | null = null;
  #closed = false;

  private constructor(url: string, options: RedisQueueOptions, client: RedisClient) {
    this.name = options.queue;
    this.#url = url;
    this.#options = options;
    this.#client = client;
    this.#keys = queueKeys(options.queue);
    this.#maxResults = options.maxResults ?? DEFAULT_MAX_RESULTS;
  }

  /**
   * Connects to the server of `options.url` (or `TASKPOOL_REDIS_URL`).
   *
   * @param options The server, the queue's name, client options.
   * @returns The queue.
   * @throws {TypeError} When there is no URL, the URL is wrong, or the queue name is empty.
   * @throws {RedisConnectionError} When the server cannot be reached or refuses the password.
   *
   * @example A queue needs a name
   * ```ts
   * import { RedisQueue } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await assert.rejects(RedisQueue.connect({ url: "redis://127.0.0.1:1", queue: "" }), TypeError);
   * ```
   */
  static async connect(options: RedisQueueOptions): Promise<RedisQueue> {
    if (typeof options.queue !== "string" || options.queue === "") {
      throw new TypeError(
        `Cannot use queue as its name must be a non-empty string: current value is ${
          JSON.stringify(options.queue)
        }`,
      );
    }
    const url = options.url ?? Deno.env.get("TASKPOOL_REDIS_URL");
    if (!url) {
      // The CLI puts its --redis flag in the place of the 'url' option.
      throw new TypeError(
        "no Redis URL: pass the 'url' option, e.g. redis://host:6379/0, or set TASKPOOL_REDIS_URL",
      );
    }
    const client = await RedisClient.connect(url, options);
    if (client.cluster && hashTagOf(options.queue) === undefined) {
      client.close();
      // The CLI puts its --queue flag in the place of "the queue's name".
      throw new TypeError(
        `Cannot use the queue "${options.queue}" on a Redis Cluster: the queue's name needs a hash tag, such as "{${options.queue}}", so that all its keys share one slot and every script runs on one node`,
      );
    }
    return new RedisQueue(url, options, client);
  }

  /**
   * Enqueues the jobs of a validated job file. Jobs without `after` go to
   * the queue (higher `priority` first, then file order); the others wait in
   * `<queue>:blocked` until their dependencies have succeeded. Task modules
   * and command directories below `base` are stored relative to it.
   *
   * The jobs go in chunks of {@linkcode PUSH_CHUNK}, a few calls in flight at
   * once, so memory stays flat however large the file: first every job that
   * waits for another (none of them can run yet), then the rest. So no job
   * can finish before the jobs waiting for it are registered.
   *
   * @param file A validated job file.
   * @param options `base`: the directory paths are made relative to (default: the current one).
   * @returns The receipt for {@linkcode RedisQueue.prototype.wait}.
   * @throws {RedisConnectionError} When the connection broke before any job was queued (the
   *   push may or may not have happened); an `Error` saying how many jobs were queued, with
   *   the first failure as its `cause`, when it broke after some were.
   */
  async push(file: JobFile, options: { base?: string } = {}): Promise<PushReceipt> {
    const base = options.base ?? Deno.cwd();
    const batch = crypto.randomUUID().slice(0, 13).replace("-", "");
    const now = Date.now();
    const ordered = [...file.jobs].sort((a, b) => b.priority - a.priority || a.index - b.index);
    const last = await this.#client.send(["XREVRANGE", this.#keys.results, "+", "-", "COUNT", 1]);
    const from = Array.isArray(last) && Array.isArray(last[0]) ? String(last[0][0]) : "0-0";
    const k = this.#keys;
    // The file's group limits first: its jobs are let in under them.
    for (const [name, limits] of Object.entries(file.groups ?? {})) {
      await setGroup(this.#client, k, name, limits);
    }
    const schedules: string[] = [];
    const duplicates: PushDuplicate[] = [];
    let chunk = newChunk();
    let accepted = 0;
    let failure: unknown;
    const inFlight = new Set<Promise<unknown>>();
    const send = async () => {
      const jobs = chunk.jobs;
      const body = JSON.stringify(chunk);
      chunk = newChunk();
      const sent = runScript(
        this.#client,
        PUSH,
        [k.queue, k.blocked, k.pending, k.delayed, k.notBefore, k.schedules, k.ticks, k.unique],
        [k.prefix, body],
      ).then((reply) => {
        accepted += jobs;
        const [, found] = reply as [number, [string, string, number][]];
        for (const [id, holder, replaced] of found) {
          const slash = holder.indexOf("/");
          duplicates.push({
            id,
            heldBy: { id: holder.slice(slash + 1), batch: holder.slice(0, slash) },
            replaced: replaced === 1,
          });
        }
      }, (error) => failure ??= error);
      inFlight.add(sent);
      sent.finally(() => inFlight.delete(sent));
      if (inFlight.size >= PUSH_IN_FLIGHT) await Promise.race(inFlight);
    };
    // Phase 1: jobs that wait for others; phase 2: the rest.
    for (const waiting of [true, false]) {
      for (const job of ordered) {
        if (failure !== undefined) break;
        if ((job.schedule === undefined && job.after.length > 0) !== waiting) continue;
        if (job.schedule !== undefined) {
          const definition = definitionOf(job, base);
          const first = job.schedule.next(new Date(now)).getTime();
          chunk.schedules.push([job.id, JSON.stringify(definition), first]);
          schedules.push(job.id);
        } else {
          const entry = JSON.stringify(entryOf(job, base, batch));
          const at = notBefore(job, now) ?? 0;
          const ref = `${batch}/${job.id}`;
          const key = job.key;
          if (waiting) {
            // A dependency listed twice counts once: PUSH counts the set's members.
            const after = [...new Set(job.after)].map((id) => `${batch}/${id}`);
            chunk.blocked.push(
              key === undefined ? [ref, entry, after, at] : [ref, entry, after, at, key],
            );
          } else if (at > now) {
            const member = `${ref}|${entry}`;
            chunk.later.push(key === undefined ? [at, member] : [at, member, ref, key]);
          } else if (key === undefined && job.group !== undefined) {
            chunk.grouped.push([job.priority, entry, job.group]);
          } else if (key === undefined && job.priority !== 0) {
            chunk.prioritized.push([job.priority, entry]);
          } else if (key === undefined) chunk.ready.push(entry);
          else {
            // The entry starts with its id and ends with its batch (entryOf):
            // a replacement keeps the holder's and takes the middle.
            const head = encoder.encode(`{"id":${JSON.stringify(job.id)}`).length;
            const tail = encoder.encode(`,"batch":${JSON.stringify(batch)}}`).length;
            const replace = job.onDuplicate === "replace" ? 1 : 0;
            const keyed = [entry, ref, key, replace, head, tail, job.priority];
            chunk.ready.push(job.group === undefined ? keyed : [...keyed, job.group]);
          }
        }
        if (++chunk.jobs === PUSH_CHUNK) await send();
      }
      if (chunk.jobs > 0 && failure === undefined) await send();
      // Every waiting job is registered before any other job is queued.
      await Promise.all(inFlight);
    }
    if (failure !== undefined) {
      if (accepted === 0) throw failure;
      throw new Error(
        `the push stopped after ${accepted} of ${ordered.length} jobs were queued (batch ${batch}): ${
          (failure as Error)?.message ?? failure
        }`,
        { cause: failure },
      );
    }
    const skipped = new Set(duplicates.map((d) => d.id));
    return {
      batch,
      ids: file.jobs.filter((job) => job.schedule === undefined && !skipped.has(job.id))
        .map((job) => job.id),
      duplicates,
      schedules,
      from,
    };
  }

  /**
   * Waits for the outcome of every job of a push, reading `<queue>:results`;
   * a job that ran more than once is reported once (its first outcome).
   * Lost connections are retried; `signal` is the way out.
   *
   * @param receipt What `push()` returned.
   * @param options `signal` to stop waiting, `onResult` per outcome as it arrives.
   * @returns The outcomes in file order.
   * @throws The signal's reason when aborted.
   */
  async wait(
    receipt: PushReceipt,
    options: {
      signal?: AbortSignal;
      onResult?: (result: QueueResult) => void;
      onWarning?: (message: string) => void;
    } = {},
  ): Promise<QueueResult[]> {
    const { signal } = options;
    signal?.throwIfAborted();
    const wanted = new Set(receipt.ids);
    const found = new Map<string, QueueResult>();
    // XREAD BLOCK holds its connection: one of its own, kept for the next wait().
    const reader = this.#reader ?? await RedisClient.connect(this.#url, this.#options);
    this.#reader = null;
    const abort = () => reader.close();
    signal?.addEventListener("abort", abort, { once: true });
    if (signal?.aborted) abort(); // while connecting
    let last = receipt.from;
    let failures = 0;
    try {
      while (found.size < wanted.size) {
        signal?.throwIfAborted();
        let reply: RedisReply;
        try {
          reply = await reader.send(
            ["XREAD", "COUNT", 1000, "BLOCK", READ_BLOCK_MS, "STREAMS", this.#keys.results, last],
            { timeout: withBlock(READ_BLOCK_MS, this.#options.commandTimeout) },
          );
          failures = 0;
        } catch (error) {
          signal?.throwIfAborted();
          if (!(error instanceof RedisConnectionError)) throw error;
          options.onWarning?.(`${error.message}; retrying`);
          await delay(retryWait(++failures), signal);
          continue;
        }
        for (const [id, fields] of streamRecords(reply)) {
          last = id;
          if (fields.batch !== receipt.batch || !wanted.has(fields.id)) continue;
          if (found.has(fields.id)) continue;
          const result = parseResult(fields);
          found.set(fields.id, result);
          options.onResult?.(result);
        }
      }
    } finally {
      signal?.removeEventListener("abort", abort);
      if (this.#reader === null && !this.#closed && !signal?.aborted) this.#reader = reader;
      else reader.close();
    }
    return receipt.ids.map((id) => found.get(id)!);
  }

  /**
   * Starts a consumer: it takes jobs while its pool has room and runs them
   * until stopped. See {@linkcode RedisConsumer}.
   *
   * @param options Pool size, heartbeat, callbacks.
   * @returns The running consumer.
   * @throws {RangeError} When `heartbeat` is not an integer of at least 100 ms.
   */
  consume(options: ConsumeOptions = {}): RedisConsumer {
    const settings: ConsumerSettings = {
      url: this.#url,
      clientOptions: this.#options,
      keys: this.#keys,
      maxResults: this.#maxResults,
    };
    return new RedisConsumer(settings, options);
  }

  /**
   * Counts what each part of the queue holds.
   *
   * @returns The counts.
   */
  async counts(): Promise<QueueCounts> {
    const k = this.#keys;
    const c = this.#client;
    const consumers = await c.send(["SMEMBERS", k.consumers]) as string[];
    const [tail, listed, prioritized, delayed, blocked, dead, ...lists] = await Promise.all([
      // Wake markers wait near the tail (the last 1,000 looked at): not jobs.
      c.send(["LPOS", k.queue, WAKE, "RANK", -1, "COUNT", 0, "MAXLEN", 1000]),
      c.send(["LLEN", k.queue]),
      c.send(["ZCARD", k.priority]),
      c.send(["ZCARD", k.delayed]),
      c.send(["HLEN", k.blocked]),
      c.send(["LLEN", k.dead]),
      ...consumers.map((id) => c.send(["LLEN", k.processing(id)])),
    ]) as number[];
    const processing = lists.reduce((sum, n) => sum + n, 0);
    const markers = (tail as unknown as number[]).length;
    // Read apart, not at once: a take between the reads must not make it negative.
    const queued = Math.max(0, listed - markers) + prioritized + await heldBack(c, k);
    return { queued, processing, delayed, blocked, dead, consumers: consumers.length };
  }

  /**
   * Sets a group's limits for the queue, across all its consumers: at most
   * `concurrency` of its jobs run at once, at most `rate` start in any
   * window (sliding). Jobs the new limits allow start at once; jobs already
   * running go on under a lower limit. A push of a job file with `groups`
   * does the same for each of them. `{}` lifts the limits.
   *
   * @param name The group.
   * @param limits `concurrency`, `rate` (`"10/1s"`, or `{ limit, window }` in ms).
   * @returns How many of its jobs are still held back.
   * @throws {TypeError} For a bad name or limits, saying what is wrong.
   */
  setGroup(
    name: string,
    limits: GroupLimits | { concurrency?: number; rate?: string | GroupRate },
  ): Promise<number> {
    return setGroup(this.#client, this.#keys, name, limits);
  }

  /**
   * Lists the queue's groups: limits, jobs held back, jobs let in (running,
   * or queued to start next), and with a rate the starts of the last window.
   *
   * @returns The groups, by name.
   */
  groups(): Promise<GroupInfo[]> {
    return groupsOf(this.#client, this.#keys);
  }

  /**
   * Lists the recurring jobs registered in the queue, by id.
   *
   * @returns Each job's rule, next tick, last run and how many runs are under way.
   */
  async schedules(): Promise<ScheduleInfo[]> {
    const k = this.#keys;
    const c = this.#client;
    const [definitions, ticks, active, last] = await Promise.all([
      c.send(["HGETALL", k.schedules]),
      c.send(["ZRANGE", k.ticks, 0, -1, "WITHSCORES"]),
      c.send(["HGETALL", k.active]),
      c.send(["HGETALL", k.lastRun]),
    ]) as string[][];
    const pairs = (list: string[]) => {
      const map = new Map<string, string>();
      for (let i = 0; i + 1 < list.length; i += 2) map.set(list[i], list[i + 1]);
      return map;
    };
    const tickOf = pairs(ticks);
    const activeOf = pairs(active);
    const lastOf = pairs(last);
    const infos: ScheduleInfo[] = [];
    for (const [id, json] of pairs(definitions)) {
      const d = JSON.parse(json) as Definition;
      const info: ScheduleInfo = {
        id,
        rule: d.rule.kind === "cron"
          ? `cron ${d.rule.expression}`
          : `every ${scheduleOf(d).toString()}`,
        timezone: d.rule.kind === "cron" ? d.rule.timezone : "UTC",
        active: Number(activeOf.get(id) ?? 0),
        overlap: d.overlap,
        catchUp: d.catchUp,
      };
      if (tickOf.has(id)) info.next = Number(tickOf.get(id));
      if (lastOf.has(id)) info.lastRun = JSON.parse(lastOf.get(id)!);
      infos.push(info);
    }
    return infos.sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  }

  /**
   * Removes recurring jobs: no tick of theirs fires any more (runs already
   * queued or running go on).
   *
   * @param ids The recurring jobs' ids.
   * @returns The ids that were registered (and are removed now).
   */
  async unschedule(ids: string[]): Promise<string[]> {
    const k = this.#keys;
    const known = await this.#client.send(["HMGET", k.schedules, ...ids]) as RedisReply[];
    const found = ids.filter((_, i) => known[i] !== null);
    if (found.length > 0) {
      await runScript(this.#client, UNSCHEDULE, [k.schedules, k.ticks, k.active, k.lastRun], [
        k.prefix,
        ...found,
      ]);
    }
    return found;
  }

  /**
   * The queue's registered consumers, from their heartbeats: alive or dead
   * (a dead one's jobs wait for another consumer to recover them).
   *
   * @returns Each consumer's host, last beat, held jobs and counts.
   */
  consumers(): Promise<ConsumerInfo[]> {
    return consumersOf(this.#client, this.#keys);
  }

  /**
   * The jobs running now that their consumers reported: those whose task
   * reported progress, and any that has run for a second or more (shorter
   * ones are not written, so a queue at full speed pays nothing for this).
   *
   * @returns The jobs, longest-running first, with their latest progress.
   */
  async running(): Promise<RunningJob[]> {
    const ids = await this.#client.send(["SMEMBERS", this.#keys.consumers]) as string[];
    return runningOf(this.#client, this.#keys, ids);
  }

  /**
   * The latest outcomes recorded, newest first.
   *
   * @param options `count` (default 20) and `failedOnly` (looks back through at most 10,000).
   * @returns The outcomes, each with its record's id in `<queue>:results`.
   */
  outcomes(options: { count?: number; failedOnly?: boolean } = {}): Promise<OutcomeRecord[]> {
    return latestOutcomes(this.#client, this.#keys, options.count ?? 20, options.failedOnly);
  }

  /**
   * Counts the outcomes recorded since a mark (from the previous call): the
   * total exactly, the split by status from the newest 200 (scaled when
   * there were more). What the dashboard's throughput chart reads each
   * second: two commands, whatever the rate.
   *
   * @param since The mark of the previous call; none: only the mark now.
   * @returns The new mark, the total since, and the counts by status.
   */
  outcomeCounts(since?: OutcomeMark): Promise<OutcomeCounts> {
    return outcomeCounts(this.#client, this.#keys, since);
  }

  /**
   * One outcome by its record's id (from {@linkcode RedisQueue.prototype.outcomes}).
   *
   * @param record The record's id in `<queue>:results`.
   * @returns The outcome, or undefined when the stream no longer has it.
   */
  outcome(record: string): Promise<OutcomeRecord | undefined> {
    return outcomeAt(this.#client, this.#keys, record);
  }

  /**
   * The dead list: its length and first records (newest first).
   *
   * @param options `count`: how many records at most (default 50).
   * @returns The total and the records, each with the `ref` the actions take.
   */
  dead(options: { count?: number } = {}): Promise<{ total: number; records: DeadRecord[] }> {
    return deadOf(this.#client, this.#keys, options.count ?? 50);
  }

  /**
   * The dead record of one job (its latest, if it died more than once).
   *
   * @param id The job's id.
   * @param batch Its push's batch ("" for an entry pushed by hand).
   * @returns The record, or undefined when the dead list has none for it.
   */
  deadRecord(id: string, batch: string): Promise<DeadRecord | undefined> {
    return deadRecordFor(this.#client, this.#keys, id, batch);
  }

  /**
   * Sends dead jobs back to the queue without their attempt count (they get
   * their retries again). Each record moves in one atomic step: retried once
   * however many hands ask at once.
   *
   * @param refs Records' refs (from {@linkcode RedisQueue.prototype.dead}), or "all".
   * @returns Per record: `done`, `gone` (no longer there), `held` (its unique key is held), `malformed`.
   */
  retryDead(refs: string[] | "all"): Promise<DeadAction[]> {
    return retryDead(this.#client, this.#keys, refs);
  }

  /**
   * Deletes dead records.
   *
   * @param refs Records' refs (from {@linkcode RedisQueue.prototype.dead}), or "all".
   * @returns Per record: `done`, or `gone` (no longer there).
   */
  deleteDead(refs: string[] | "all"): Promise<DeadAction[]> {
    return deleteDead(this.#client, this.#keys, refs);
  }

  /**
   * Cancels jobs wherever they are. A waiting, delayed or blocked job is
   * taken out and recorded `cancelled` in one step (its dependents
   * `skipped`, its unique key freed). A running one's consumer, on whatever
   * machine, learns of it within a second (it reads `<queue>:cancel` with
   * its heartbeat), aborts it as a timeout would, and records it
   * `cancelled`, without a retry; this waits up to `wait` ms for those
   * outcomes.
   *
   * @param ids The jobs' ids (of any push, or of `options.batch`); none, with a batch: all its jobs.
   * @param options `batch`, `wait` (ms, default 10,000), `signal` to stop waiting.
   * @returns Per job: where it was found (`waiting`, `delayed`, `blocked`, `running`,
   * `finished` or `unknown`) and its outcome when known.
   * @throws {TypeError} With neither ids nor a batch.
   */
  cancel(
    ids: string[],
    options: { batch?: string; wait?: number; signal?: AbortSignal } = {},
  ): Promise<CancelReport[]> {
    if (ids.length === 0 && options.batch === undefined) {
      return Promise.reject(new TypeError("Cannot cancel: give job ids, or a batch"));
    }
    return cancelJobs(
      this.#client,
      this.#keys,
      this.#maxResults,
      { ids, batch: options.batch },
      options.wait ?? 10_000,
      options.signal,
    );
  }

  /** Closes the queue's connection (consumers have their own). Idempotent. */
  close(): void {
    this.#closed = true;
    this.#client.close();
    this.#reader?.close();
    this.#reader = null;
  }

  /** Calls `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }
}
