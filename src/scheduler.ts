/**
 * Runs the jobs of a validated job file on a worker pool: dependencies,
 * priorities, retries with backoff, timeouts, command jobs, and the
 * drain-on-exit of the seeds (`stop()` starts nothing new and lets what is
 * queued and running finish; `cancel()` ends what still runs).
 *
 * @module
 */

import type { Job, JobFile } from "./job_file.ts";
import { type TaskSpec, WorkerPool } from "./pool.ts";
import { runCommand, terminateTree } from "./_command.ts";
import { pushTask, type Sink } from "./_sink.ts";

/** How an attempt went. */
type Outcome = Partial<JobResult> & { ok: boolean };

/** How a job ended. */
export type JobStatus = "succeeded" | "failed" | "skipped" | "not-run" | "cancelled";

/** The outcome of one job, reported once. */
export interface JobResult {
  /** The job's id. */
  id: string;
  /** How it ended. */
  status: JobStatus;
  /** Attempts made (0 for a job that never started). */
  attempts: number;
  /** When its last attempt started, ms since the epoch. */
  start?: number;
  /** How long its last attempt took, ms. */
  duration?: number;
  /** A task's return value, when it succeeded. */
  result?: unknown;
  /** Why it failed, was skipped, not run or cancelled. */
  error?: string;
  /** A command's exit code. */
  exitCode?: number;
  /** The last lines a command wrote (stdout and stderr, up to 2 KB). */
  output?: string;
}

/** Options of {@linkcode Scheduler}. */
export interface SchedulerOptions {
  /**
   * Workers of the pool; also how many jobs run at once.
   *
   * @default {the file's "workers", else navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * Tasks queued in the pool beyond those running.
   *
   * @default {the file's "capacity", else the larger of workers * 2 and 64}
   */
  capacity?: number;
  /**
   * After the first job fails for good, start nothing new.
   *
   * @default {false}
   */
  failFast?: boolean;
  /** Called when an attempt starts. */
  onStart?: (job: Job, attempt: number) => void;
  /** Called once per job when it ends. */
  onFinish?: (result: JobResult) => void;
}

/** The epoch time of `performance.now()`'s 0. */
const TIME_ORIGIN = performance.timeOrigin;

/** Tasks queued in the pool by default (at least): enough to keep the workers busy. */
const DEFAULT_CAPACITY = 64;

/**
 * Runs a job file's jobs on a {@linkcode WorkerPool}.
 *
 * Each job appears exactly once in the results. A job runs only after all
 * of its `after` jobs succeeded; if one of them failed (for good), it is
 * `skipped`. Among ready jobs, higher `priority` starts first, then file
 * order. A failed attempt is retried `retries` times, after `backoff`
 * doubled per retry, with ±50 % jitter. Tasks and commands together run at
 * most `workers` at a time (tasks may also wait in the pool's queue).
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
  /** One per job, in file order: all the per-job state (no Map lookup per job). */
  readonly #entries: Entry[] = [];
  readonly #ready = new ReadyQueue();
  readonly #children = new Set<Deno.ChildProcess>();
  readonly #retryTimers = new Map<Entry, ReturnType<typeof setTimeout>>();
  #pool: WorkerPool | null = null;
  #finished = 0;
  #running = 0;
  #commands = 0;
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
    this.#workers = options.workers ?? file.workers ?? (navigator.hardwareConcurrency || 1);
    this.#capacity = options.capacity ?? file.capacity ??
      Math.max(this.#workers * 2, DEFAULT_CAPACITY);
    const jobs = file.jobs;
    const entries = this.#entries;
    // Only the jobs named in an `after` need finding by id: a map of those
    // alone, not of every job (this runs once, in code still cold).
    const named = new Map<string, Entry | undefined>();
    for (let i = 0; i < jobs.length; i++) {
      const after = jobs[i].after;
      for (let k = 0; k < after.length; k++) named.set(after[k], undefined);
    }
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      const entry: Entry = {
        job,
        at: i,
        waitingFor: job.after.length,
        dependents: undefined,
        attempts: 0,
        began: 0,
        spec: undefined,
        result: undefined,
      };
      entries.push(entry);
      if (named.size > 0 && named.has(job.id)) named.set(job.id, entry);
    }
    if (named.size === 0) return;
    for (const entry of entries) {
      const after = entry.job.after;
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

  /** Jobs running (or queued in the pool) now. */
  get running(): number {
    return this.#running;
  }

  /**
   * Runs every job and resolves with their results, in file order, once all
   * have ended (or, after `stop()`, once what had started has ended).
   *
   * @returns One result per job.
   */
  async run(): Promise<JobResult[]> {
    this.#pool = new WorkerPool({
      workers: this.#workers,
      capacity: this.#capacity,
      name: "taskpool cli",
    });
    const first: Entry[] = [];
    for (const entry of this.#entries) if (entry.waitingFor === 0) first.push(entry);
    this.#ready.start(first);
    const finished = new Promise<void>((resolve) => this.#done = resolve);
    this.#pump();
    await finished;
    await this.#pool.close();
    return this.#entries.map((entry) => entry.result!);
  }

  /** Starts nothing new; what is queued and running finishes. The rest is reported `not-run`. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const [entry, timer] of this.#retryTimers) {
      clearTimeout(timer);
      this.#retryTimers.delete(entry);
      this.#finish(entry, "failed", { error: "interrupted before its next attempt" });
    }
    this.#pump();
  }

  /** Ends what still runs (tasks are terminated, commands get SIGTERM, then SIGKILL): `cancelled`. */
  cancel(): void {
    this.stop();
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#pool?.terminate();
    for (const child of this.#children) terminateTree(child);
  }

  /** Starts ready jobs while there is room; resolves the run once nothing is left to happen. */
  #pump(): void {
    const limit = this.#workers + this.#capacity;
    while (!this.#stopping && this.#running < limit && this.#ready.size > 0) {
      const entry = this.#ready.peek()!;
      if (entry.job.kind === "command" && this.#commands >= this.#workers) break;
      this.#ready.pop();
      this.#start(entry);
    }
    if (
      this.#running === 0 && this.#retryTimers.size === 0 &&
      (this.#stopping || this.#ready.size === 0)
    ) {
      for (const entry of this.#entries) {
        if (entry.result === undefined) {
          this.#finish(entry, "not-run", {
            error: this.#stopping ? "not started: the run was stopped" : "never became ready",
          });
        }
      }
      this.#done?.();
    }
  }

  #start(entry: Entry): void {
    const job = entry.job;
    // One attempt of a job at a time: the entry holds the current one's.
    entry.attempts++;
    this.#running++;
    if (job.kind === "command") this.#commands++;
    this.#options.onStart?.(job, entry.attempts);
    entry.began = this.#now();
    if (job.kind === "task") {
      entry.spec ??= { module: job.module, name: job.name!, args: job.args, timeout: job.timeout };
      let queued = false;
      try {
        // No promise per task: the outcome comes to #sink (a third less
        // main-thread time per task, like the pool's map()).
        queued = pushTask(this.#pool!, entry.spec, this.#sink, entry.at);
      } catch {
        // run() rejects with the same error, later: a job that cannot start
        // ends in a microtask, not inside this loop.
      }
      if (!queued) {
        // Callbacks, not async functions: this runs once per job, 10,000s of times.
        this.#pool!.run(entry.spec).then(
          (result) => this.#ended(entry, { ok: true, result }),
          (error) => this.#ended(entry, { ok: false, error: errorText(error) }),
        );
      }
    } else {
      runCommand(job, this.#children).then(
        (outcome) => this.#ended(entry, outcome),
        (error) => this.#ended(entry, { ok: false, error: String(error) }),
      );
    }
  }

  /** Where the pool delivers the outcomes of task jobs, from its result pump. */
  readonly #sink: Sink = {
    deliver: (seq, ok, value) => {
      const entry = this.#entries[seq];
      try {
        this.#ended(entry, ok ? { ok, result: value } : { ok, error: errorText(value) });
      } catch (error) {
        // An onFinish or onStart that threw: not the pool's to handle. It
        // stays uncaught, as it would in a promise callback.
        queueMicrotask(() => {
          throw error;
        });
      }
    },
  };

  /**
   * `performance.now()`, read once per batch of starts and ends: the pool
   * delivers results by batches, and a clock read per start and per end
   * showed in profiles. Exact to the time a batch takes (tens of µs).
   */
  #now(): number {
    if (this.#clock < 0) {
      this.#clock = performance.now();
      queueMicrotask(this.#resetClock);
    }
    return this.#clock;
  }

  #clock = -1;
  readonly #resetClock = () => this.#clock = -1;

  #ended(entry: Entry, outcome: Outcome): void {
    const job = entry.job;
    this.#running--;
    if (job.kind === "command") this.#commands--;
    outcome.start = Math.floor(TIME_ORIGIN + entry.began);
    outcome.duration = this.#now() - entry.began;
    if (outcome.ok) {
      this.#finish(entry, "succeeded", outcome);
      if (entry.dependents !== undefined) {
        for (const next of entry.dependents) {
          if (--next.waitingFor === 0 && next.result === undefined) this.#ready.push(next);
        }
      }
    } else if (this.#cancelled) {
      outcome.error = `cancelled: ${outcome.error}`;
      this.#finish(entry, "cancelled", outcome);
    } else if (entry.attempts <= job.retries && !this.#stopping) {
      const delay = job.backoff * 2 ** (entry.attempts - 1) * (0.5 + Math.random());
      this.#retryTimers.set(
        entry,
        setTimeout(() => {
          this.#retryTimers.delete(entry);
          if (this.#stopping) this.#finish(entry, "failed", outcome);
          else this.#ready.push(entry);
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

  #finish(entry: Entry, status: JobStatus, details: Partial<Outcome>): void {
    if (entry.result !== undefined) return;
    const result: JobResult = { id: entry.job.id, status, attempts: entry.attempts };
    if (details.start !== undefined) result.start = details.start;
    if (details.duration !== undefined) result.duration = details.duration;
    if (details.result !== undefined) result.result = details.result;
    if (details.error !== undefined) result.error = details.error;
    if (details.exitCode !== undefined) result.exitCode = details.exitCode;
    if (details.output !== undefined) result.output = details.output;
    entry.result = result;
    entry.spec = undefined;
    this.#finished++;
    this.#options.onFinish?.(result);
  }
}

function errorText(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/** A job and its state during a run. */
interface Entry {
  readonly job: Job;
  /** Its place in the scheduler's entries (the file's jobs may have been filtered). */
  readonly at: number;
  /** Its `after` jobs that have not succeeded yet. */
  waitingFor: number;
  /** The jobs whose `after` names it. */
  dependents: Entry[] | undefined;
  /** Attempts started. */
  attempts: number;
  /** When the current attempt started (`performance.now()`, read by batch). */
  began: number;
  /** The pool's task spec of a task job, made at its first attempt. */
  spec: TaskSpec | undefined;
  /** How it ended, once it has. */
  result: JobResult | undefined;
}

/**
 * The ready jobs, higher priority first, then file order. Most become ready
 * at the start, and they usually are in that order already (one priority):
 * they are a sorted array read by a cursor. Only jobs that become ready
 * later (dependents, retries) go through a heap. A heap of all of them cost
 * the run phase ~20 % of its time in profiles (10,000 jobs, ~13 levels per pop).
 */
class ReadyQueue {
  #first: Entry[] = [];
  #head = 0;
  readonly #later = new Heap();

  /** Takes the jobs ready at the start (in file order). */
  start(entries: Entry[]): void {
    for (let i = 1; i < entries.length; i++) {
      if (!before(entries[i - 1], entries[i])) {
        entries.sort((a, b) => (before(a, b) ? -1 : 1));
        break;
      }
    }
    this.#first = entries;
    this.#head = 0;
  }

  get size(): number {
    return this.#first.length - this.#head + this.#later.size;
  }

  peek(): Entry | undefined {
    const a = this.#first[this.#head];
    const b = this.#later.peek();
    if (a === undefined) return b;
    return b === undefined || before(a, b) ? a : b;
  }

  pop(): Entry | undefined {
    const a = this.#first[this.#head];
    const b = this.#later.peek();
    if (a !== undefined && (b === undefined || before(a, b))) {
      this.#first[this.#head++] = undefined!; // let it go once it has run
      return a;
    }
    return this.#later.pop();
  }

  push(entry: Entry): void {
    this.#later.push(entry);
  }
}

/** A binary heap of jobs: higher priority first, then file order. */
class Heap {
  readonly #items: Entry[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Entry | undefined {
    return this.#items[0];
  }

  push(entry: Entry): void {
    // Moves the hole up, not the entry by swaps: no temporaries per level.
    const items = this.#items;
    let i = items.length;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = entry;
  }

  pop(): Entry | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const child = l + 1 < n && before(items[l + 1], items[l]) ? l + 1 : l;
        if (!before(items[child], last)) break;
        items[i] = items[child];
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  const p = a.job.priority;
  const q = b.job.priority;
  return p > q || (p === q && a.job.index < b.job.index);
}
