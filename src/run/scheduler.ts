/**
 * Runs the jobs of a validated job file on a worker pool: dependencies,
 * priorities, retries with backoff, timeouts, command jobs, and the
 * drain-on-exit of the seeds (`stop()` starts nothing new and lets what is
 * queued and running finish; `cancel()` ends what still runs).
 *
 * @module
 */

import type { Job, JobFile } from "../jobs/mod.ts";
import { PoolCore } from "../pool/_core.ts";
import { type AttemptOutcome, Attempts, retryDelay } from "./_attempt.ts";
import { type Ready, ReadyQueue } from "./_ready_queue.ts";
import { GroupGate } from "./_groups.ts";
import { Ticks } from "./_recurring.ts";
import { type Clock, systemClock } from "./clock.ts";
import { atInstant } from "./_timer.ts";
import type { JobResult, JobStatus, SchedulerOptions } from "./types.ts";

/** Tasks queued in the pool by default (at least): enough to keep the workers busy. */
const DEFAULT_CAPACITY = 64;

/**
 * Runs a job file's jobs on a {@linkcode WorkerPool}.
 *
 * Each job appears exactly once in the results. A job runs only after all
 * of its `after` jobs succeeded; if one of them failed (for good), it is
 * `skipped`. Among ready jobs, higher `priority` starts first, then file
 * order (the order of `file.jobs`). A failed attempt is retried `retries`
 * times, after `backoff` doubled per retry, with ±50 % jitter. Tasks and
 * commands together run at most `workers` at a time (tasks may also wait in
 * the pool's queue).
 *
 * Time: a job with `delay` (counted from the start of the run) or `at` does
 * not start before then (its dependencies still apply). A recurring job
 * (`cron` or `every`) runs at each of its ticks, as a run with the id
 * `<job id>@<tick in ISO 8601, UTC>`, with its `overlap` and `catchUp`
 * (see `_recurring.ts`); a file with recurring jobs runs until `stop()`.
 * The scheduler reads time from `options.clock`, which a test may drive.
 *
 * @example Run two dependent jobs
 * ```ts
 * import { Scheduler, validateJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const checked = validateJobFile({
 *   jobs: [
 *     { id: "hello", command: ["echo", "hello"] },
 *     { id: "world", command: ["echo", "world"], after: ["hello"] },
 *   ],
 * }, "/tmp/jobs.json");
 * assert(checked.ok);
 * const results = await new Scheduler(checked.file, { workers: 1 }).run();
 * assert.deepStrictEqual(results.map((r) => [r.id, r.status]), [["hello", "succeeded"], ["world", "succeeded"]]);
 * ```
 */
export class Scheduler {
  readonly #options: SchedulerOptions;
  readonly #workers: number;
  readonly #capacity: number;
  readonly #jobs: Job[];
  /**
   * All the per-job state, by position in the file (no Map lookup per job).
   * A job's entry is made when it is first needed: in the constructor for
   * jobs that wait or are waited for, else when it starts or, never
   * started, when the run ends (the constructor runs once, in code still
   * cold; 10,000 objects made there showed).
   */
  readonly #entries: Array<Entry | undefined>;
  readonly #ready: ReadyQueue;
  /** The groups' limits, and the jobs they hold back. */
  readonly #groups: GroupGate<Entry>;
  readonly #retryTimers = new Map<Entry, unknown>();
  /** One-off jobs waiting for their `delay` or `at`, with the way to cancel each wait. */
  readonly #timed = new Map<Entry, () => void>();
  readonly #clock: Clock;
  /** The run's recurring jobs, from `run()` on. */
  #ticks: Ticks | null = null;
  #attempts: Attempts | null = null;
  #pool: PoolCore | null = null;
  #finished = 0;
  /** Attempts handed out and not ended: tasks in the pool (queued or running) and commands. */
  #handed = 0;
  /** When the run began, ms since the epoch. */
  #startedAt = 0;
  #stopping = false;
  #cancelled = false;
  #done: (() => void) | null = null;

  /**
   * Prepares a run; nothing starts before `run()`.
   *
   * @param file A validated job file.
   * @param options Workers, capacity, fail-fast, event callbacks.
   */
  constructor(file: JobFile, options: SchedulerOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#workers = options.workers ?? file.workers ?? (navigator.hardwareConcurrency || 1);
    this.#capacity = options.capacity ?? file.capacity ??
      Math.max(this.#workers * 2, DEFAULT_CAPACITY);
    const jobs = this.#jobs = file.jobs;
    this.#entries = new Array(jobs.length);
    this.#ready = new ReadyQueue(jobs);
    this.#groups = new GroupGate<Entry>(file.groups ?? {}, this.#clock, (entry) => {
      entry.admitted = true;
      this.#ready.push(entry);
    }, () => this.#pump());
    // Only the jobs named in an `after` need finding by id: a map of those
    // alone, not of every job.
    const named = new Map<string, Entry | undefined>();
    for (let i = 0; i < jobs.length; i++) {
      const after = jobs[i].after;
      for (let k = 0; k < after.length; k++) named.set(after[k], undefined);
    }
    if (named.size === 0) return;
    for (let i = 0; i < jobs.length; i++) {
      const id = jobs[i].id;
      if (named.has(id)) named.set(id, this.#entry(i));
    }
    for (let i = 0; i < jobs.length; i++) {
      const after = jobs[i].after;
      if (after.length === 0) continue;
      const entry = this.#entry(i);
      for (let k = 0; k < after.length; k++) {
        const before = named.get(after[k]);
        if (before === undefined) continue; // never ready: reported "not-run"
        if (before.dependents === undefined) before.dependents = [entry];
        else before.dependents.push(entry);
      }
    }
  }

  /** Jobs that have ended so far. */
  get finished(): number {
    return this.#finished;
  }

  /**
   * Jobs running now: tasks a worker has taken (their start), and commands.
   * Tasks handed to the pool that no worker has started are `waiting`.
   */
  get running(): number {
    const attempts = this.#attempts;
    if (attempts === null) return 0;
    return Math.min(this.#handed, attempts.commands + this.#pool!.stats().running);
  }

  /** Jobs handed to the pool that no worker has started yet. */
  get waiting(): number {
    return this.#handed - this.running;
  }

  /** The next tick of a recurring job, ms since the epoch; `undefined` when none comes. */
  get nextTick(): number | undefined {
    return this.#ticks?.nextTick;
  }

  /**
   * Runs every job and resolves with their results, in file order, once all
   * have ended (or, after `stop()`, once what had started has ended).
   *
   * @returns One result per job.
   */
  async run(): Promise<JobResult[]> {
    this.#pool = new PoolCore({
      workers: this.#workers,
      capacity: this.#capacity,
      name: "taskpool cli",
    });
    // Every attempt's token is its job's position in the file.
    const onProgress = this.#options.onProgress;
    this.#attempts = new Attempts(
      this.#pool,
      (at, outcome) => this.#ended(this.#entries[at]!, outcome),
      onProgress && ((at, value) => onProgress(this.#entries[at]!.job, value)),
    );
    this.#ready.start();
    this.#startedAt = this.#clock.now();
    const recurring: Job[] = [];
    for (let at = 0; at < this.#jobs.length; at++) {
      const job = this.#jobs[at];
      if (job.schedule !== undefined) recurring.push(job);
      else if ((job.delay !== undefined || job.at !== undefined) && job.after.length === 0) {
        this.#becomesReady(this.#entry(at));
      }
    }
    this.#ticks = new Ticks(recurring, {
      clock: this.#clock,
      startRun: (job, tick) => this.#startRun(job, tick),
      skipTick: (job, tick) =>
        this.#finish(this.#runEntry(job, tick), "skipped", {
          error: `skipped: the run of "${job.id}" before it was still running`,
        }),
    });
    this.#ticks.start();
    const finished = new Promise<void>((resolve) => this.#done = resolve);
    this.#pump();
    await finished;
    await this.#pool.close();
    // One result per one-off job in file order, then one per run of a recurring job.
    const results: JobResult[] = [];
    for (let at = 0; at < this.#entries.length; at++) {
      const entry = this.#entries[at]!;
      if (at < this.#jobs.length && entry.job.schedule !== undefined) continue;
      results.push(entry.result!);
    }
    return results;
  }

  /** A run of recurring `job` for the tick at `tick`: a job of its own, at the end of the entries. */
  #runEntry(job: Job, tick: number): Entry {
    const { schedule: _schedule, overlap: _overlap, catchUp: _catchUp, ...rest } = job;
    const run: Job = { ...rest, id: `${job.id}@${new Date(tick).toISOString()}` };
    const entry: Entry = {
      job: run,
      at: this.#entries.length,
      waitingFor: 0,
      dependents: undefined,
      attempts: 0,
      readyAt: tick,
      result: undefined,
      recurring: undefined,
      admitted: false,
    };
    this.#entries.push(entry);
    return entry;
  }

  #startRun(job: Job, tick: number): void {
    const entry = this.#runEntry(job, tick);
    entry.recurring = job; // its end lets a queued tick start
    this.#ready.push(entry);
    this.#pump();
  }

  /** The entry of the job at position `at`, made on first use. */
  #entry(at: number): Entry {
    let entry = this.#entries[at];
    if (entry === undefined) {
      const job = this.#jobs[at];
      entry = this.#entries[at] = {
        job,
        at,
        waitingFor: job.after.length,
        dependents: undefined,
        attempts: 0,
        readyAt: 0,
        result: undefined,
        recurring: undefined,
        admitted: false,
      };
    }
    return entry;
  }

  /**
   * Starts nothing new: the jobs that are running (a worker took the task,
   * or the command was spawned) finish; tasks handed to the pool that no
   * worker has started are withdrawn and, like every job not started,
   * reported `not-run`. So what a stop waits for is bounded by the running
   * jobs (`running` says how many).
   */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const [entry, timer] of this.#retryTimers) {
      this.#clock.clearTimer(timer);
      this.#retryTimers.delete(entry);
      this.#finish(entry, "failed", { error: "interrupted before its next attempt" });
    }
    for (const cancel of this.#timed.values()) cancel(); // reported not-run below
    this.#timed.clear();
    for (const [job, tick] of this.#ticks?.stop() ?? []) {
      this.#finish(this.#runEntry(job, tick), "not-run", {
        error: "not started: the run was stopped",
      });
    }
    this.#attempts?.withdraw();
    this.#pump();
  }

  /** Ends what still runs (tasks are terminated, commands get SIGTERM, then SIGKILL): `cancelled`. */
  cancel(): void {
    this.stop();
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#attempts?.cancel();
  }

  /**
   * Starts ready jobs while there is room; resolves the run once nothing is
   * left to happen. Tasks and commands together run at most `workers` at a
   * time: tasks handed to the pool start as its workers come free, so a
   * command starts only when fewer than `workers` jobs are handed, and
   * while commands run no task waits in the pool beyond the free workers.
   * With no command running, `capacity` more tasks wait in the pool so that
   * its workers never wait for this thread.
   */
  #pump(): void {
    const workers = this.#workers;
    const prefetch = workers + this.#capacity;
    const ready = this.#ready;
    while (!this.#stopping) {
      const at = ready.peek();
      if (at < 0) break;
      const entry = this.#entry(at);
      // A command, or a job of a group with a rate (its start counts when
      // handed out: so a worker must be free for it), starts on a free worker.
      const group = entry.job.group;
      const room = entry.job.kind === "command" || this.#attempts!.commands > 0 ||
          (group !== undefined && this.#groups.rated(group))
        ? workers
        : prefetch;
      if (this.#handed >= room) break;
      ready.pop();
      if (group !== undefined) {
        const letIn = entry.admitted;
        entry.admitted = false;
        if (!this.#groups.admit(group, entry, letIn)) continue;
        this.#start(entry);
        this.#groups.afterStart(group);
        continue;
      }
      this.#start(entry);
    }
    if (
      this.#handed === 0 && this.#retryTimers.size === 0 && this.#timed.size === 0 &&
      (this.#stopping || (ready.peek() < 0 && !this.#ticks!.live && this.#groups.held === 0))
    ) {
      this.#groups.close();
      for (let at = 0; at < this.#entries.length; at++) {
        const entry = this.#entry(at);
        if (entry.result === undefined && entry.job.schedule === undefined) {
          this.#finish(entry, "not-run", {
            error: this.#stopping ? "not started: the run was stopped" : "never became ready",
          });
        }
      }
      this.#done?.();
    }
  }

  #start(entry: Entry): void {
    // One attempt of a job at a time: the entry holds the current one's.
    entry.attempts++;
    this.#handed++;
    this.#options.onStart?.(entry.job, entry.attempts);
    this.#attempts!.start(entry.job, entry.at);
  }

  #ended(entry: Entry, outcome: AttemptOutcome): void {
    const job = entry.job;
    this.#handed--;
    if (job.group !== undefined) this.#groups.ended(job.group);
    let delay: number;
    if (outcome.withdrawn) {
      entry.attempts--; // it never started
      this.#finish(entry, "not-run", { error: "not started: the run was stopped" });
    } else if (outcome.ok) {
      this.#finish(entry, "succeeded", outcome);
      if (entry.dependents !== undefined) {
        for (const next of entry.dependents) {
          if (--next.waitingFor === 0 && next.result === undefined) this.#becomesReady(next);
        }
      }
    } else if (this.#cancelled) {
      outcome.error = `cancelled: ${outcome.error}`;
      this.#finish(entry, "cancelled", outcome);
    } else if (!this.#stopping && (delay = retryDelay(job, entry.attempts)) >= 0) {
      this.#retryTimers.set(
        entry,
        this.#clock.setTimer(() => {
          this.#retryTimers.delete(entry);
          if (this.#stopping) this.#finish(entry, "failed", outcome);
          else this.#becomesReady(entry);
          this.#pump();
        }, delay),
      );
    } else {
      this.#finish(entry, "failed", outcome);
      this.#skipDependents(entry);
      if (this.#options.failFast) this.stop();
    }
    this.#pump();
  }

  /**
   * A job whose dependencies succeeded, or whose retry is due, or that waits
   * for nothing but its time: ready from now, or from its `delay` or `at`
   * if that is later (a first attempt only).
   */
  #becomesReady(entry: Entry): void {
    const job = entry.job;
    const due = entry.attempts > 0
      ? undefined
      : job.at ?? (job.delay === undefined ? undefined : this.#startedAt + job.delay);
    if (due !== undefined && due > this.#clock.now()) {
      this.#timed.set(
        entry,
        atInstant(this.#clock, due, () => {
          this.#timed.delete(entry);
          entry.readyAt = due;
          this.#ready.push(entry);
          this.#pump();
        }),
      );
      return;
    }
    entry.readyAt = this.#clock.now();
    this.#ready.push(entry);
  }

  #skipDependents(failed: Entry): void {
    // A loop, not recursion: a chain of 100,000 jobs must not overflow the stack.
    const stack = [failed];
    while (stack.length > 0) {
      const entry = stack.pop()!;
      if (entry.dependents === undefined) continue;
      const why = entry === failed
        ? `skipped: "${entry.job.id}" failed`
        : `skipped: "${entry.job.id}" was skipped`;
      for (const next of entry.dependents) {
        if (next.result !== undefined) continue;
        this.#finish(next, "skipped", { error: why });
        stack.push(next);
      }
    }
  }

  #finish(entry: Entry, status: JobStatus, details: Partial<AttemptOutcome>): void {
    if (entry.result !== undefined) return;
    const result: JobResult = { id: entry.job.id, status, attempts: entry.attempts };
    if (details.start !== undefined) {
      result.start = details.start;
      // From when it was ready (the run's start, for a job ready then) to its start.
      result.wait = Math.max(0, details.start - (entry.readyAt || this.#startedAt));
    }
    if (details.duration !== undefined) result.duration = details.duration;
    if (details.result !== undefined) result.result = details.result;
    if (details.error !== undefined) result.error = details.error;
    if (details.exitCode !== undefined) result.exitCode = details.exitCode;
    if (details.output !== undefined) result.output = details.output;
    entry.result = result;
    this.#finished++;
    if (entry.recurring !== undefined) this.#ticks!.runEnded(entry.recurring);
    this.#options.onFinish?.(result);
  }
}

/** A job and its state during a run. */
interface Entry extends Ready {
  readonly job: Job;
  /** Its place in the scheduler's entries (the file's jobs may have been filtered). */
  readonly at: number;
  /** Its `after` jobs that have not succeeded yet. */
  waitingFor: number;
  /** The jobs whose `after` names it. */
  dependents: Entry[] | undefined;
  /** Attempts started. */
  attempts: number;
  /** When it became ready to start, ms since the epoch; 0 for a job ready when the run began. */
  readyAt: number;
  /** For a run of a recurring job that was started: that job (its ticks are told when the run ends). */
  recurring: Job | undefined;
  /** How it ended, once it has. */
  result: JobResult | undefined;
  /** Let in by its group (its place kept): started without being held again. */
  admitted: boolean;
}
