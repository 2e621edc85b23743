/**
 * Runs the jobs of a validated job file on a worker pool: dependencies,
 * priorities, retries with backoff, timeouts, command jobs, and the
 * drain-on-exit of the seeds (`stop()` starts nothing new and lets what is
 * queued and running finish; `cancel()` ends what still runs).
 *
 * @module
 */

import type { Job, JobFile } from "./jobs/mod.ts";
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
    const jobs = this.#jobs = file.jobs;
    this.#entries = new Array(jobs.length);
    this.#ready = new ReadyQueue(jobs);
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
    this.#ready.start();
    const finished = new Promise<void>((resolve) => this.#done = resolve);
    this.#pump();
    await finished;
    await this.#pool.close();
    return this.#entries.map((entry) => entry!.result!);
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
        start: 0,
        began: 0,
        result: undefined,
      };
    }
    return entry;
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
    const ready = this.#ready;
    while (!this.#stopping && this.#running < limit) {
      const at = ready.peek();
      if (at < 0) break;
      if (this.#jobs[at].kind === "command" && this.#commands >= this.#workers) break;
      ready.pop();
      this.#start(this.#entry(at));
    }
    if (
      this.#running === 0 && this.#retryTimers.size === 0 &&
      (this.#stopping || ready.peek() < 0)
    ) {
      for (let at = 0; at < this.#jobs.length; at++) {
        const entry = this.#entry(at);
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
    entry.start = Date.now();
    entry.began = performance.now();
    if (job.kind === "task") {
      // The job is its own task spec: module, name, args and timeout.
      const spec = job as TaskSpec;
      let queued = false;
      try {
        // No promise per task: the outcome comes to #sink, as the pool's
        // map() does (the run phase of the 10,000-job bench took ~8 % less).
        queued = pushTask(this.#pool!, spec, this.#sink, entry.at);
      } catch {
        // run() rejects with the same error, later: a job that cannot start
        // ends in a microtask, not inside this loop.
      }
      if (!queued) {
        // Callbacks, not async functions: this runs once per job, 10,000s of times.
        this.#pool!.run(spec).then(
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

  /**
   * Where the pool delivers the outcomes of task jobs: from its result pump,
   * and from `terminate()` (a cancel), a task's timeout or a dead worker's
   * handling, all synchronously.
   */
  readonly #sink: Sink = {
    deliver: (seq, ok, value) => {
      const entry = this.#entries[seq]!;
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

  #ended(entry: Entry, outcome: Outcome): void {
    const job = entry.job;
    this.#running--;
    if (job.kind === "command") this.#commands--;
    outcome.start = entry.start;
    outcome.duration = performance.now() - entry.began;
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
  /** When the current attempt started: ms since the epoch, and `performance.now()`. */
  start: number;
  began: number;
  /** How it ended, once it has. */
  result: JobResult | undefined;
}

/**
 * The ready jobs (as positions in the file), higher priority first, then
 * file order. Most are ready at the start, and they usually are in that
 * order already (one priority): then this reads the file's own job array
 * with a cursor, skipping the jobs that wait, with no copy of it. Jobs that
 * become ready later (dependents, retries) go through a heap. A heap of all
 * of them took ~23 ms of sampled main-thread time in profiles of the
 * 10,000-job bench (~13 levels per pop).
 */
class ReadyQueue {
  readonly #jobs: Job[];
  /** The positions of the jobs ready at the start, sorted, when file order is not their order. */
  #sorted: number[] | null = null;
  /** Next place to look in the file (or in `#sorted`). */
  #cursor = 0;
  readonly #later = new Heap();

  constructor(jobs: Job[]) {
    this.#jobs = jobs;
    this.#cursor = jobs.length; // nothing until start()
  }

  /** Takes the jobs that wait for nothing as ready. */
  start(): void {
    const jobs = this.#jobs;
    this.#cursor = 0;
    // File order is their order unless a priority rises along the file.
    let last = Infinity;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      if (job.after.length > 0) continue;
      if (job.priority > last) {
        const sorted: number[] = [];
        for (let k = 0; k < jobs.length; k++) if (jobs[k].after.length === 0) sorted.push(k);
        sorted.sort((a, b) => (rank(jobs[a], a, jobs[b], b) ? -1 : 1));
        this.#sorted = sorted;
        return;
      }
      last = job.priority;
    }
  }

  /** The position of the first job that is ready, or -1 if none is. */
  peek(): number {
    const first = this.#first();
    const later = this.#later.peek();
    if (first < 0) return later === undefined ? -1 : later.at;
    if (later === undefined || rank(this.#jobs[first], first, later.job, later.at)) return first;
    return later.at;
  }

  /** Takes the job `peek()` named. */
  pop(): void {
    const first = this.#first();
    const later = this.#later.peek();
    if (
      first >= 0 && (later === undefined || rank(this.#jobs[first], first, later.job, later.at))
    ) {
      this.#cursor++;
    } else this.#later.pop();
  }

  /** Adds a job that became ready. */
  push(entry: Entry): void {
    this.#later.push(entry);
  }

  /** The next job ready at the start that has not been taken, or -1; moves the cursor to it. */
  #first(): number {
    const sorted = this.#sorted;
    if (sorted !== null) return this.#cursor < sorted.length ? sorted[this.#cursor] : -1;
    const jobs = this.#jobs;
    let at = this.#cursor;
    while (at < jobs.length && jobs[at].after.length > 0) at++;
    this.#cursor = at;
    return at < jobs.length ? at : -1;
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

/** Whether entry `a` goes before entry `b`. */
function before(a: Entry, b: Entry): boolean {
  return rank(a.job, a.at, b.job, b.at);
}

/**
 * Whether job `a` (at position `atA` of the file's jobs) goes before job `b`
 * among ready jobs: higher priority, then file order (the position, which
 * is `index` unless the jobs of a file were filtered or reordered).
 */
function rank(a: Job, atA: number, b: Job, atB: number): boolean {
  const p = a.priority;
  const q = b.priority;
  return p > q || (p === q && atA < atB);
}
