/**
 * The consumer side of the Redis queue: {@linkcode RedisConsumer} takes
 * entries into its processing list, runs them on a worker pool, and records
 * each outcome with the ACK script. What keeps a job from being lost is
 * described in `_scripts.ts`.
 *
 * @module
 */

import { PoolCore } from "../pool/_core.ts";
import { type AttemptOutcome, Attempts, retryDelay } from "../run/_attempt.ts";
import { RedisConnectionError, RedisError } from "../errors.ts";
import { checkMs, delay, MAX_TIMER_MS } from "../_util.ts";
import { type RedisArg, RedisClient, type RedisClientOptions, type RedisReply } from "./client.ts";
import { ackKeys, consumerKeyTypes, type QueueKeys } from "./_keys.ts";
import {
  ACK,
  checkKeyTypes,
  promote,
  recover,
  releaseHeld,
  RETRY,
  runScript,
  TAKE,
  WAKE,
} from "./_scripts.ts";
import { Ticker } from "./_ticker.ts";
import { Depth } from "./_depth.ts";
import { systemClock } from "../run/clock.ts";
import { type Entry, isEntry, keyOf, keyOfMalformed, notText, parseEntry } from "./_entry.ts";
import { beatInfo, FLUSH_MS, ProgressBoard } from "./_progress.ts";
import { GroupStarts } from "./_groups.ts";
import { deadRecord, type QueueResult, toJson } from "./_records.ts";
import { retryWait, withBlock } from "./_timing.ts";
import {
  type ConsumeOptions,
  type ConsumerSettings,
  type ConsumerStats,
  type Held,
  newStats,
} from "./types.ts";

/** Seconds a BLMOVE blocks before it is re-issued. */
const BLOCK_SECONDS = 2;
/** Entries taken with one round trip after a blocking take (when there is room). */
const TAKE_BATCH = 256;
/** Most outcomes one ACK call records (the rest go in the next call, at once). */
const ACK_BATCH = 256;
/** How often any consumer looks for due retries, ms (the one that scheduled a retry also wakes at its due time). */
const PROMOTE_EVERY_MS = 1000;
const DEFAULT_HEARTBEAT_MS = 10_000;
/** The longest time between two beats, ms (see `#beat`). */
const BEAT_MAX_MS = 1000;
const DEFAULT_GRACE_MS = 30_000;
/** How long the last deregistration of a consumer that holds nothing may take, ms. */
const LEAVE_TIMEOUT_MS = 500;

/**
 * One consumer of a {@linkcode RedisQueue}: a worker pool fed from the
 * queue, running each attempt of a job as the local `Scheduler` does. Made by {@linkcode RedisQueue.prototype.consume}, which
 * hands it the queue's server, client options and keys; it opens two
 * connections of its own (one for blocking takes, one for the rest).
 *
 * It holds at most `workers + capacity` jobs and takes one only when it has
 * room. `stop()` (or the `signal`) takes nothing more, lets what it holds
 * finish and be recorded, gives back anything taken but not started, and
 * deregisters; `done` then resolves. `cancel()` ends at once, leaving what
 * it holds in its processing list for another consumer to recover.
 *
 * @example Run a pushed job, then stop
 * ```ts
 * import { RedisClient, RedisQueue, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   const name = `doc:${crypto.randomUUID()}`;
 *   await using queue = await RedisQueue.connect({ url, queue: name });
 *   const checked = validateJobFile({ jobs: [{ id: "ok", command: ["true"] }] }, "./jobs.json");
 *   assert(checked.ok);
 *   const receipt = await queue.push(checked.file);
 *   const consumer = queue.consume({ workers: 1 });
 *   await queue.wait(receipt);
 *   consumer.stop();
 *   const stats = await consumer.done;
 *   assert.strictEqual(stats.succeeded, 1);
 *   await using redis = await RedisClient.connect(url);
 *   await redis.send(["DEL", `${name}:results`]); // the only key a finished queue leaves
 * }
 * ```
 */
export class RedisConsumer {
  // About 410 lines of code, past the ~400 we aim for: one state machine (what
  // is held, the take loop, acks in flight, reconciling) whose steps share its
  // private fields; split, they would hand that state back and forth.
  /** The consumer's id; its processing list is `<queue>:processing:<id>`. */
  readonly id: string;
  /** Resolves with the stats once the consumer has stopped; rejects if it could not run. */
  readonly done: Promise<ConsumerStats>;
  /** What it did so far. */
  readonly stats: ConsumerStats = newStats();
  readonly #url: string;
  readonly #clientOptions: RedisClientOptions;
  readonly #keys: QueueKeys;
  readonly #processing: string;
  readonly #maxResults: string;
  readonly #options: ConsumeOptions;
  readonly #workers: number;
  /** How many jobs it may hold now (see `_depth.ts`). */
  readonly #depth: Depth;
  readonly #ttl: number;
  readonly #base: string;
  /** Entries held, by `keyOf` (an entry may be held twice: a copy recovered back to us). */
  readonly #held = new Map<string, number>();
  readonly #commandsWaiting: Held[] = [];
  /** Jobs of groups with a rate wait for a free worker; their starts are told (`_groups.ts`). */
  readonly #groups: GroupStarts<Held>;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** The held jobs whose attempt runs, by the attempt's token (recycled). */
  readonly #running: Array<Held | undefined> = [];
  readonly #freeTokens: number[] = [];
  #heldCount = 0;
  #client: RedisClient | null = null;
  #taker: RedisClient | null = null;
  /** The taker connection's id on the server (`CLIENT ID`), once known. */
  #takerId: number | undefined;
  #pool: PoolCore | null = null;
  #attempts: Attempts | null = null;
  /** The running jobs' start and progress, for `<queue>:progress:<id>`. */
  readonly #board: ProgressBoard;
  #ticker: Ticker | null = null;
  #ticking: Promise<void> | undefined;
  #stopping = false;
  #cancelled = false;
  /** A PROMOTE is set for a due time before the next round. */
  #promoteSoon = false;
  #reconcile = false;
  /** Acks in flight, each settled once its reply was handled (see `#reconcileHeld`). */
  readonly #acks = new Set<Promise<void>>();
  /** Outcomes waiting for the ACK call at the end of this turn. */
  readonly #outcomes: Array<
    {
      raw: Entry;
      result: QueueResult;
      dead: string;
      schedule: string;
      key: string;
      written?: string;
    }
  > = [];
  /** Seconds a BLMOVE blocks: below a third of the heartbeat (see `#takeLoop`). */
  readonly #block: number;
  /** The first Redis error that stopped the consumer. */
  #failure: unknown;
  #wake: (() => void) | null = null;
  #cancelling: Promise<unknown> | undefined;
  readonly #grace: number;
  /** When a stopping consumer stops retrying writes (`performance.now()`); Infinity until a stop. */
  #giveUpAt = Infinity;
  /** When the consumer was made, ms since the epoch (its beat says it). */
  readonly #since = Date.now();
  /** Held jobs when `stop()` was called. */
  #heldAtStop = 0;

  // Consumers are made by RedisQueue.prototype.consume(), which checks
  // nothing itself: the RangeError for a bad heartbeat is thrown here.
  /** @ignore */
  constructor(settings: ConsumerSettings, options: ConsumeOptions = {}) {
    const { url, clientOptions, keys, maxResults } = settings;
    this.#url = url;
    this.#clientOptions = clientOptions;
    this.#keys = keys;
    this.#maxResults = String(maxResults);
    this.#options = options;
    this.id = options.id ??
      `${Deno.hostname()}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
    this.#processing = keys.processing(this.id);
    this.#board = new ProgressBoard(keys.progress(this.id));
    this.#groups = new GroupStarts(keys, () => this.#client!, (m) => this.#warn(m));
    this.#workers = options.workers ?? (navigator.hardwareConcurrency || 1);
    this.#depth = new Depth(this.#workers, options.capacity);
    this.#ttl = options.heartbeat ?? DEFAULT_HEARTBEAT_MS;
    this.#base = options.base ?? Deno.cwd();
    if (!Number.isInteger(this.#ttl) || this.#ttl < 100 || this.#ttl > MAX_TIMER_MS) {
      throw new RangeError(
        `Cannot consume as 'heartbeat' must be an integer from 100 to ${MAX_TIMER_MS} ms: current value is ${this.#ttl}`,
      );
    }
    this.#block = Math.min(BLOCK_SECONDS, Math.floor(this.#ttl / 3) / 1000);
    this.#grace = checkMs(options.grace ?? DEFAULT_GRACE_MS, "consume", "grace");
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
    this.done = this.#run();
  }

  /** Jobs held now (running, queued in the pool, or being recorded). */
  get held(): number {
    return this.#heldCount;
  }

  /** Its pool's workers now, idle and running (all 0 before it started and after it ended). */
  get workers(): { idle: number; running: number } {
    const stats = this.#pool?.stats();
    return { idle: stats?.idle ?? 0, running: stats?.running ?? 0 };
  }

  /** Takes nothing more; what is held finishes and is recorded; then `done` resolves. Idempotent. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#ticker?.stop(); // a stopping consumer fires no tick: the others do
    this.#giveUpAt = performance.now() + this.#grace;
    this.#heldAtStop = this.#heldCount;
    // Ends a blocked BLMOVE now, on the server: CLIENT UNBLOCK makes it answer
    // nil, so nothing it might still move lands after we deregister (closing
    // the connection left the server a moment in which a push could). Without
    // Redis, closing is all there is.
    const id = this.#takerId;
    if (id === undefined || !this.#client?.connected) this.#taker?.close();
    else {
      // On a cluster, to the queue's node, where the taker blocks.
      const route = this.#keys.queue;
      this.#client.send(["CLIENT", "UNBLOCK", id], { timeout: LEAVE_TIMEOUT_MS, route })
        .catch(() => this.#taker?.close());
    }
    this.#wake?.();
  }

  /**
   * Ends at once: running tasks and commands are killed and nothing more is
   * recorded; held jobs stay in the processing list, and the heartbeat is
   * removed so that another consumer recovers them without waiting for it
   * to expire.
   */
  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.stop();
    this.#wake?.(); // a drain in progress ends now
    this.#attempts?.cancel();
    // Remove the heartbeat (briefly: the server may be down), then close, which
    // ends every write still waiting for the server.
    const client = this.#client;
    this.#cancelling = client === null
      ? undefined
      : client.send(["DEL", this.#keys.heartbeat(this.id)], { timeout: 300 })
        .catch(() => {}).finally(() => client.close());
  }

  async #run(): Promise<ConsumerStats> {
    try {
      this.#client = await RedisClient.connect(this.#url, this.#clientOptions);
      this.#taker = await RedisClient.connect(this.#url, this.#clientOptions);
    } catch (error) {
      this.#client?.close();
      throw error;
    }
    if (this.#cancelled) {
      // Cancelled while connecting: nothing was registered or taken.
      this.#client.close();
      this.#taker.close();
      return this.stats;
    }
    if (this.#stopping) this.#taker.close();
    this.#pool = new PoolCore({
      workers: this.#workers,
      capacity: this.#depth.poolCapacity,
      name: "taskpool consumer",
      // Work comes at Redis round-trip pace: a worker (or the main thread)
      // that polls for it burns a core the server and this process need.
      // redis_bench against spin 10, 3 runs: 1.09-1.20x jobs/s, 0.85-0.94x
      // consumer CPU per job without it.
      spin: 0,
      signalAll: true, // a cancel from anywhere aborts taskSignal() (see _cancel.ts)
    });
    this.#attempts = new Attempts(
      this.#pool,
      (token, outcome) => this.#attemptEnded(token, outcome),
      (token, value) => this.#board.progress(token, value),
    );
    try {
      await checkKeyTypes(this.#client, consumerKeyTypes(this.#keys, this.id));
      await this.#beat();
      // At least every second: the beat carries the counts a dashboard charts.
      this.#every(Math.min(this.#ttl / 3, BEAT_MAX_MS), () => this.#beat());
      await this.#recover();
      this.#every(this.#ttl / 2, () => this.#recover());
      this.#every(PROMOTE_EVERY_MS, () => this.#promote());
      this.#every(FLUSH_MS, () => this.#board.send(this.#client!));
      this.#ticker = new Ticker(
        this.#client,
        this.#keys,
        this.#maxResults,
        this.#options.clock ?? systemClock,
        (message) => this.#warn(message),
      );
      this.#ticking = this.#ticker.run();
      await this.#takeLoop();
    } catch (error) {
      this.#fail(error);
    }
    await this.#drained();
    if (!this.#cancelled) await this.#leave();
    else {
      await this.#cancelling;
    }
    this.#ticker?.stop();
    await this.#ticking;
    this.stats.fired = this.#ticker?.fired ?? 0;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.#cancelled) this.#pool.terminate();
    else await this.#pool.close();
    this.#client.close();
    this.#taker.close();
    if (this.#failure !== undefined) throw this.#failure;
    return this.stats;
  }

  /**
   * Gives back what was taken but never reached us (a BLMOVE cut by
   * stop()), and deregisters. Holding nothing, it tries once, briefly: with
   * Redis gone, nothing is lost by leaving, and the heartbeat expires by
   * itself.
   */
  async #leave(): Promise<void> {
    const release = (timeout?: number) =>
      releaseHeld(this.#client!, this.#keys, this.id, [], true, timeout);
    try {
      if (this.#heldAtStop === 0 && this.stats.unrecorded.length === 0) {
        // Briefly only when Redis is gone: reachable, deregistering may take a loaded server's time.
        await release(this.#client!.connected ? undefined : LEAVE_TIMEOUT_MS);
      } else await this.#durable("give back and deregister", release);
    } catch (error) {
      if (!(error instanceof RedisConnectionError)) return; // reported by #durable
      this.#warn(
        `cannot deregister: ${error.message}; this consumer's heartbeat expires by itself within ${this.#ttl} ms`,
      );
    }
  }

  /** Takes entries while there is room, until stopped. */
  async #takeLoop(): Promise<void> {
    const k = this.#keys;
    let failures = 0;
    /** "1": the last BLMOVE moved a wake marker into our list, for TAKE to drop. */
    let woken = "0";
    while (!this.#stopping) {
      // Here, and only here, no take is in flight (see `#reconcileHeld`).
      if (this.#reconcile) await this.#reconcileHeld();
      if (this.#heldCount >= this.#depth.limit) {
        await new Promise<void>((resolve) => this.#wake = resolve);
        this.#wake = null;
        continue;
      }
      let reply: RedisReply;
      try {
        // First without blocking, as many as there is room for, the highest
        // priority first (in the list or in <queue>:priority: see TAKE).
        const room = Math.min(this.#depth.limit - this.#heldCount, TAKE_BATCH);
        const taken = await runScript(this.#taker!, TAKE, [k.queue, this.#processing], [
          room,
          woken,
        ]);
        woken = "0";
        if (Array.isArray(taken) && taken.length > 0) {
          for (const entry of taken) if (isEntry(entry)) this.#take(entry);
          continue;
        }
        // A BLMOVE ends (on the server) before our heartbeat could expire, so
        // one that outlives us cannot move an entry into a list that another
        // consumer has already recovered and no longer watches.
        // Its connection's id first (a reconnect changes it), for stop()'s CLIENT UNBLOCK.
        // A server that refuses CLIENT (some managed ones): stop() closes the connection instead.
        this.#takerId = await this.#taker!.send(["CLIENT", "ID"], { route: this.#keys.queue })
          .catch((e) => e instanceof RedisError ? undefined : Promise.reject(e)) as
            | number
            | undefined;
        if (this.#stopping) break;
        reply = await this.#taker!.send(
          ["BLMOVE", k.queue, this.#processing, "RIGHT", "LEFT", this.#block],
          { timeout: withBlock(this.#block * 1000, this.#clientOptions.commandTimeout) },
        );
        failures = 0;
      } catch (error) {
        if (this.#stopping) break;
        if (!(error instanceof RedisConnectionError)) throw error;
        // A move may have happened with its reply lost: look in our list once we can.
        this.#reconcile = true;
        this.#warn(`${error.message}; retrying`);
        await delay(retryWait(++failures));
        continue;
      }
      // A marker: something was queued in <queue>:priority; the next TAKE finds it.
      if (reply === WAKE) woken = "1";
      else if (isEntry(reply)) this.#take(reply);
    }
  }

  /**
   * Gives back entries of our processing list that we do not hold: their
   * replies were lost. Runs in the take loop between takes, so no take is in
   * flight; the acks sent before the LRANGE (on the same connection, so run
   * before it) are awaited first, so that what they took counts as held.
   */
  async #reconcileHeld(): Promise<void> {
    const before = [...this.#acks];
    let list: RedisReply;
    try {
      list = await this.#client!.send(["LRANGE", this.#processing, 0, -1]);
    } catch {
      return; // still down: the loop tries again after its next take
    }
    await Promise.allSettled(before);
    this.#reconcile = false;
    const counts = new Map(this.#held);
    const orphans: Entry[] = [];
    for (const raw of list as Entry[]) {
      const key = keyOf(raw);
      const held = counts.get(key) ?? 0;
      if (held > 0) counts.set(key, held - 1);
      else orphans.push(raw);
    }
    if (orphans.length > 0) {
      await this.#durable(
        "give back",
        () => releaseHeld(this.#client!, this.#keys, this.id, orphans, false),
      ).catch(() => {});
    }
  }

  #take(raw: Entry): void {
    this.stats.taken++;
    this.#heldCount++;
    const key = keyOf(raw);
    this.#held.set(key, (this.#held.get(key) ?? 0) + 1);
    const parsed = typeof raw === "string" ? parseEntry(raw, this.#base) : notText(raw);
    if (!parsed.ok) {
      this.stats.malformed++;
      const error = `malformed entry: ${parsed.error}`;
      const result: QueueResult = {
        id: parsed.id,
        batch: parsed.batch,
        status: "failed",
        attempts: 0,
        error,
        consumer: this.id,
      };
      this.#options.onFinish?.(result);
      // A malformed entry may still hold a unique key: its outcome frees it.
      this.#ack(raw, result, deadRecord(raw, error, this.id, 0), "", keyOfMalformed(raw));
      return;
    }
    // A parsed entry was text (bytes that are not UTF-8 never parse).
    const held: Held = { raw: raw as string, ...parsed };
    if (held.job.kind === "command" && this.#attempts!.commands >= this.#workers) {
      this.#commandsWaiting.push(held);
    } else if (!this.#groups.defer(held, this.#busy, this.#workers)) this.#start(held);
  }

  #start(held: Held): void {
    this.#options.onStart?.(held.job, held.attempt);
    const token = this.#freeTokens.pop() ?? this.#running.length;
    this.#running[token] = held;
    this.#board.started(token, held.batch, held.job.id, held.attempt, Date.now());
    this.#attempts!.start(held.job, token);
    this.#groups.started(held);
  }

  /** Attempts under way: handed to the pool or running. */
  get #busy(): number {
    return this.#running.length - this.#freeTokens.length;
  }

  /** An attempt ended: record it, then start a command that waited for a free one. */
  #attemptEnded(token: number, outcome: AttemptOutcome): void {
    if (this.#depth.ran(outcome.duration)) this.#wake?.();
    const held = this.#running[token]!;
    this.#running[token] = undefined;
    this.#freeTokens.push(token);
    this.#ended(held, outcome, token);
    if (held.job.kind === "command") {
      const next = this.#commandsWaiting.shift();
      if (next) this.#start(next);
    }
    if (this.#cancelled) return; // the pool is ending: nothing more starts
    for (const next of this.#groups.next(this.#busy, this.#workers)) this.#start(next);
  }

  #ended(held: Held, outcome: AttemptOutcome, slot: number): void {
    if (this.#cancelled) return; // left in the processing list for recovery
    const { job, attempt, raw, batch } = held;
    const { ok, ...details } = outcome;
    // Cancelled and yet done: the work was done, and is recorded so.
    const cancelled = !ok && held.cancelled === true;
    const result: QueueResult = {
      id: job.id,
      batch,
      status: ok ? "succeeded" : cancelled ? "cancelled" : "failed",
      attempts: attempt,
      ...details,
      consumer: this.id,
    };
    const retryIn = ok || cancelled ? -1 : retryDelay(job, attempt);
    if (retryIn >= 0) {
      this.#board.retried(slot);
      this.stats.retried++;
      const wait = Math.round(retryIn);
      const token = crypto.randomUUID().slice(0, 8);
      const next = `${token}|${JSON.stringify({ ...held.value, attempt: attempt + 1 })}`;
      this.#options.onRetry?.(job, attempt, result.error ?? "failed");
      const k = this.#keys;
      this.#durable(
        `schedule the retry of ${job.id}`,
        (timeout) =>
          runScript(this.#client!, RETRY, [this.#processing, k.queue, k.delayed, k.cancel], [
            raw,
            next,
            wait,
            `${batch}/${job.id}`,
          ], { timeout }),
      ).then((reply) => {
        if (reply !== -1) {
          this.#after(wait, () => this.#promote().catch(() => {}));
          return this.#let(raw);
        }
        // Its cancel came before our heartbeat read it: recorded cancelled (the ACK lets it go).
        this.stats.retried--;
        held.cancelled = true;
        this.#ended(held, outcome, -1);
      }, () => {
        this.stats.unrecorded.push(job.id);
        this.#let(raw);
      });
      return;
    }
    if (ok) this.stats.succeeded++;
    else if (cancelled) this.stats.cancelled++;
    else this.stats.failed++;
    this.#options.onFinish?.(result);
    this.#ack(
      raw,
      result,
      ok || cancelled
        ? ""
        : deadRecord(JSON.stringify(held.value), result.error ?? "", this.id, attempt),
      held.schedule,
      held.job.key,
      this.#board.ended(slot),
    );
  }

  /**
   * Queues an outcome for the next ACK call: the outcomes of one turn (the
   * results the pool delivered together) go in one call, sent in a microtask
   * at the end of the turn.
   */
  #ack(
    raw: Entry,
    result: QueueResult,
    dead: string,
    schedule = "",
    key = "",
    written?: string,
  ): void {
    this.#outcomes.push({ raw, result, dead, schedule, key, written });
    if (this.#outcomes.length === 1) queueMicrotask(() => this.#sendOutcomes());
  }

  /**
   * Records the queued outcomes and removes their entries (one script call),
   * taking as many next entries in the same step while not stopping; then
   * lets the entries go. Their places are kept until the reply, so the next
   * entries have room.
   */
  #sendOutcomes(): void {
    const outcomes = this.#outcomes.splice(0, ACK_BATCH);
    if (this.#outcomes.length > 0) queueMicrotask(() => this.#sendOutcomes());
    const k = this.#keys;
    const keys = ackKeys(k, this.id);
    // The refs written to the progress hash go with their outcomes.
    const written = outcomes.flatMap(({ written }) => written === undefined ? [] : [written]);
    // Made once: a call sent again sends the same.
    const fields = outcomes.map(({ result, dead, schedule, key }) => [
      result.batch,
      result.id,
      result.status,
      toJson(result),
      dead,
      schedule,
      key,
    ]);
    const what = outcomes.length === 1
      ? `record the outcome of ${outcomes[0].result.id || "an entry"}`
      : `record the outcomes of ${outcomes.length} jobs`;
    let again = "0";
    const handled = this.#durable(what, (timeout) => {
      // As many as it frees, less any excess over the depth (which may have
      // shrunk: long jobs are not hoarded); the take loop fills growth.
      const room = this.#depth.limit - (this.#heldCount - outcomes.length);
      const take = this.#stopping ? 0 : Math.max(0, Math.min(outcomes.length, room));
      // Raw entries that are not UTF-8 go as the bytes they are.
      const args: RedisArg[] = [
        k.prefix,
        this.#maxResults,
        take,
        again,
        written.length,
        ...written,
      ];
      for (let i = 0; i < outcomes.length; i++) args.push(outcomes[i].raw, ...fields[i]);
      const asked = performance.now();
      const sent = runScript(this.#client!, ACK, keys, args, { timeout });
      if (take > 0 && again === "0") {
        sent.then(() => {
          if (this.#depth.roundTrip(performance.now() - asked)) this.#wake?.();
        }, () => {});
      }
      again = "1";
      return sent.catch((error) => {
        if (take > 0 && error instanceof RedisConnectionError) {
          // A lost reply may have carried next entries: the take loop looks
          // in our list (woken now if it waits for room).
          this.#reconcile = true;
          this.#wake?.();
        }
        throw error;
      });
    })
      .then((reply) => {
        const taken = Array.isArray(reply) && Array.isArray(reply[1]) ? reply[1] : [];
        for (const { raw } of outcomes) this.#let(raw);
        for (const next of taken) if (isEntry(next)) this.#take(next);
      }, () => {
        for (const { raw, result } of outcomes) {
          this.stats.unrecorded.push(result.id || "(malformed entry)");
          this.#let(raw);
        }
      });
    this.#acks.add(handled);
    handled.finally(() => this.#acks.delete(handled));
  }

  /** Forgets a held entry, and wakes the taker (room) or the drain. */
  #let(raw: Entry): void {
    const key = keyOf(raw);
    const n = this.#held.get(key)! - 1;
    if (n === 0) this.#held.delete(key);
    else this.#held.set(key, n);
    this.#heldCount--;
    this.#wake?.();
  }

  /** Resolves once nothing is held (or at once when cancelled). */
  async #drained(): Promise<void> {
    while (this.#heldCount > 0 && !this.#cancelled) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }

  #beat(): Promise<unknown> {
    const info = beatInfo(this.stats, this.#heldCount, this.#workers, this.#ttl, this.#since);
    const k = this.#keys;
    return Promise.all([
      this.#groups.refresh(),
      this.#client!.send(["SET", k.heartbeat(this.id), info, "PX", this.#ttl]),
      this.#client!.send(["SADD", k.consumers, this.id]),
      // Cancels asked for: found within a beat (a second) by whoever holds the job.
      this.#heldCount === 0 ? undefined : this.#client!.send(["SMEMBERS", k.cancel])
        .then((refs) => this.#cancelHeld(new Set(refs as string[]))),
    ]);
  }

  /** Ends the held jobs whose ref `refs` has, as a timeout would; they end `cancelled`. */
  #cancelHeld(refs: Set<string>): void {
    if (refs.size === 0) return;
    const asked = (held: Held) => !held.cancelled && refs.has(`${held.batch}/${held.job.id}`);
    const reason = new Error("cancelled: a cancel was asked for (taskpool cancel)");
    this.#running.forEach((held, token) => {
      if (held !== undefined && asked(held)) {
        held.cancelled = true;
        this.#attempts!.abort(token, reason);
      }
    });
    for (const held of this.#commandsWaiting.filter(asked)) {
      this.#commandsWaiting.splice(this.#commandsWaiting.indexOf(held), 1);
      held.cancelled = true;
      this.#ended(held, { ok: false, error: reason.message, start: Date.now(), duration: 0 }, -1);
    }
  }

  async #recover(): Promise<void> {
    const [moved, gone] = await recover(this.#client!, this.#keys, this.id);
    if (gone.length > 0) {
      this.stats.recovered += moved;
      this.#options.onRecover?.(moved, gone);
    }
  }

  /** Moves due retries in, and lets in jobs a group's rate held (a call of its own when due soon). */
  async #promote(): Promise<void> {
    const next = await promote(this.#client!, this.#keys);
    if (next < 0 || next >= PROMOTE_EVERY_MS || this.#promoteSoon) return;
    this.#promoteSoon = true;
    this.#after(next, () => {
      this.#promoteSoon = false;
      this.#promote().catch(() => {}); // the round every second warns
    });
  }

  /** Runs `task` every `ms` until the consumer ends; a failure is a warning. */
  #every(ms: number, task: () => Promise<unknown>): void {
    const tick = () => {
      task().catch((error) => this.#warn(`${(error as Error).message}; retrying`))
        .finally(() => {
          if (!this.#done()) this.#after(ms, tick);
        });
    };
    this.#after(ms, tick);
  }

  #after(ms: number, fn: () => void): void {
    if (this.#done()) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #done(): boolean {
    return this.#cancelled || (this.#stopping && this.#heldCount === 0);
  }

  /**
   * Runs a write until it succeeds: a lost connection is retried with
   * backoff (the scripts are safe to run twice); a Redis error is reported
   * and given up (the entry stays in the processing list, and is given back
   * when the consumer stops).
   */
  async #durable(
    what: string,
    write: (timeout: number | undefined) => Promise<unknown>,
  ): Promise<unknown> {
    for (let retry = 1;; retry++) {
      // Stopping, a write gets what is left of the grace, and no retry after it.
      const left = this.#giveUpAt - performance.now();
      const timeout = Number.isFinite(left) ? Math.max(1, Math.round(left)) : undefined;
      try {
        return await write(timeout);
      } catch (error) {
        const more = this.#giveUpAt - performance.now();
        if (error instanceof RedisConnectionError && !this.#cancelled && more > 0) {
          this.#warn(`cannot ${what}: ${error.message}; retrying`);
          await delay(Math.min(retryWait(retry), more));
          continue;
        }
        if (error instanceof RedisConnectionError && !this.#cancelled) {
          this.#warn(`cannot ${what}: ${error.message}; giving up, the grace of the stop is over`);
        } else if (!this.#cancelled) {
          // The ACK checks no key's type (see `_scripts.ts`): name the one at fault.
          if (error instanceof RedisError && error.message.includes("WRONGTYPE")) {
            await checkKeyTypes(this.#client!, consumerKeyTypes(this.#keys, this.id))
              .catch((named) => this.#fail(named));
          }
          this.#fail(error);
        }
        throw error;
      }
    }
  }

  #warn(message: string): void {
    if (!this.#cancelled) this.#options.onWarning?.(message);
  }

  /**
   * Stops the consumer for an error Redis will keep giving (a key of the
   * wrong type, a script the server refuses): `done` rejects with it. What
   * could not be recorded stays in the processing list and is given back.
   */
  #fail(error: unknown): void {
    this.#failure ??= error;
    this.stop();
  }
}
