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
  readonly #file: JobFile;
  readonly #options: SchedulerOptions;
  readonly #workers: number;
  readonly #capacity: number;
  readonly #results = new Map<string, JobResult>();
  readonly #waitingFor = new Map<string, number>();
  readonly #dependents = new Map<string, Job[]>();
  readonly #ready = new Heap();
  readonly #attempts = new Map<string, number>();
  readonly #children = new Set<Deno.ChildProcess>();
  readonly #retryTimers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #specs = new Map<string, TaskSpec>();
  #pool: WorkerPool | null = null;
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
    this.#file = file;
    this.#options = options;
    this.#workers = options.workers ?? file.workers ?? (navigator.hardwareConcurrency || 1);
    this.#capacity = options.capacity ?? file.capacity ??
      Math.max(this.#workers * 2, DEFAULT_CAPACITY);
    for (const job of file.jobs) {
      this.#waitingFor.set(job.id, job.after.length);
      for (const dep of job.after) {
        const list = this.#dependents.get(dep);
        if (list) list.push(job);
        else this.#dependents.set(dep, [job]);
      }
    }
  }

  /** Jobs that have ended so far. */
  get finished(): number {
    return this.#results.size;
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
    for (const job of this.#file.jobs) if (job.after.length === 0) this.#ready.push(job);
    const finished = new Promise<void>((resolve) => this.#done = resolve);
    this.#pump();
    await finished;
    await this.#pool.close();
    return this.#file.jobs.map((job) => this.#results.get(job.id)!);
  }

  /** Starts nothing new; what is queued and running finishes. The rest is reported `not-run`. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const [id, timer] of this.#retryTimers) {
      clearTimeout(timer);
      this.#retryTimers.delete(id);
      this.#finish(this.#jobOf(id), "failed", { error: "interrupted before its next attempt" });
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

  #jobOf(id: string): Job {
    return this.#file.jobs.find((job) => job.id === id)!;
  }

  /** Starts ready jobs while there is room; resolves the run once nothing is left to happen. */
  #pump(): void {
    const limit = this.#workers + this.#capacity;
    while (!this.#stopping && this.#running < limit && this.#ready.size > 0) {
      const job = this.#ready.peek()!;
      if (job.kind === "command" && this.#commands >= this.#workers) break;
      this.#ready.pop();
      this.#start(job);
    }
    if (
      this.#running === 0 && this.#retryTimers.size === 0 &&
      (this.#stopping || this.#ready.size === 0)
    ) {
      for (const job of this.#file.jobs) {
        if (!this.#results.has(job.id)) {
          this.#finish(job, "not-run", {
            error: this.#stopping ? "not started: the run was stopped" : "never became ready",
          });
        }
      }
      this.#done?.();
    }
  }

  #start(job: Job): void {
    const attempt = (this.#attempts.get(job.id) ?? 0) + 1;
    this.#attempts.set(job.id, attempt);
    this.#running++;
    if (job.kind === "command") this.#commands++;
    this.#options.onStart?.(job, attempt);
    const start = Date.now();
    const began = performance.now();
    const ended = (outcome: Outcome) =>
      this.#ended(job, attempt, outcome, start, performance.now() - began);
    if (job.kind === "task") {
      // Callbacks, not async functions: this runs once per job, 10,000s of times.
      this.#pool!.run(this.#specOf(job)).then(
        (result) => ended({ ok: true, result }),
        (error) => ended({ ok: false, error: (error as Error)?.message ?? String(error) }),
      );
    } else {
      runCommand(job, this.#children).then(
        ended,
        (error) => ended({ ok: false, error: String(error) }),
      );
    }
  }

  /** The pool's task spec of a job, made once. */
  #specOf(job: Job): TaskSpec {
    let spec = this.#specs.get(job.id);
    if (spec === undefined) {
      spec = { module: job.module, name: job.name!, args: job.args, timeout: job.timeout };
      this.#specs.set(job.id, spec);
    }
    return spec;
  }

  #ended(job: Job, attempt: number, outcome: Outcome, start: number, duration: number): void {
    this.#running--;
    if (job.kind === "command") this.#commands--;
    outcome.start = start;
    outcome.duration = duration;
    if (outcome.ok) {
      this.#finish(job, "succeeded", outcome);
      for (const next of this.#dependents.get(job.id) ?? []) {
        const left = this.#waitingFor.get(next.id)! - 1;
        this.#waitingFor.set(next.id, left);
        if (left === 0 && !this.#results.has(next.id)) this.#ready.push(next);
      }
    } else if (this.#cancelled) {
      outcome.error = `cancelled: ${outcome.error}`;
      this.#finish(job, "cancelled", outcome);
    } else if (attempt <= job.retries && !this.#stopping) {
      const delay = job.backoff * 2 ** (attempt - 1) * (0.5 + Math.random());
      this.#retryTimers.set(
        job.id,
        setTimeout(() => {
          this.#retryTimers.delete(job.id);
          if (this.#stopping) this.#finish(job, "failed", outcome);
          else this.#ready.push(job);
          this.#pump();
        }, delay),
      );
    } else {
      this.#finish(job, "failed", outcome);
      this.#skipDependents(job);
      if (this.#options.failFast) this.stop();
    }
    this.#pump();
  }

  #skipDependents(failed: Job): void {
    // A loop, not recursion: a chain of 100,000 jobs must not overflow the stack.
    const stack = [failed];
    while (stack.length > 0) {
      const job = stack.pop()!;
      const why = job === failed
        ? `skipped: "${job.id}" failed`
        : `skipped: "${job.id}" was skipped`;
      for (const next of this.#dependents.get(job.id) ?? []) {
        if (this.#results.has(next.id)) continue;
        this.#finish(next, "skipped", { error: why });
        stack.push(next);
      }
    }
  }

  #finish(job: Job, status: JobStatus, details: Partial<Outcome>): void {
    if (this.#results.has(job.id)) return;
    const result: JobResult = { id: job.id, status, attempts: this.#attempts.get(job.id) ?? 0 };
    if (details.start !== undefined) result.start = details.start;
    if (details.duration !== undefined) result.duration = details.duration;
    if (details.result !== undefined) result.result = details.result;
    if (details.error !== undefined) result.error = details.error;
    if (details.exitCode !== undefined) result.exitCode = details.exitCode;
    if (details.output !== undefined) result.output = details.output;
    this.#results.set(job.id, result);
    this.#specs.delete(job.id);
    this.#options.onFinish?.(result);
  }
}

/** A binary heap of jobs: higher priority first, then file order. */
class Heap {
  readonly #items: Job[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Job | undefined {
    return this.#items[0];
  }

  push(job: Job): void {
    const items = this.#items;
    items.push(job);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Job | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && before(items[l], items[best])) best = l;
        if (r < items.length && before(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

function before(a: Job, b: Job): boolean {
  return a.priority > b.priority || (a.priority === b.priority && a.index < b.index);
}
