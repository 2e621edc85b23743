/**
 * One attempt of a job, written once for both runners of jobs (the local
 * `Scheduler` and the Redis consumer): a task job on the pool, a command job
 * as a subprocess, each with its timeout; its outcome with when it started
 * and how long it ran; and the wait before the next attempt.
 *
 * A task's outcome comes to this object as a pool `Sink` (no promise per
 * task), with when a worker started it and how long it ran; a command's is
 * timed here. `onEnd(token, outcome)` is called exactly once per `start`.
 *
 * @module
 */

import { backoff } from "../_util.ts";
import type { Job } from "../jobs/mod.ts";
import { type PoolCore, type Sink, WithdrawnError } from "../pool/_core.ts";
import type { TaskSpec } from "../pool/types.ts";
import { type CommandOutcome, runCommand, terminateTree } from "./_command.ts";

/** How one attempt of a job went. */
export interface AttemptOutcome {
  /** It succeeded: a task returned, or a command exited 0 in time. */
  ok: boolean;
  /** A task's return value, when it succeeded. */
  result?: unknown;
  /** Why it failed. */
  error?: string;
  /** A command's exit code, when it ran. */
  exitCode?: number;
  /** The last lines a command wrote (stdout and stderr, up to 2 KB). */
  output?: string;
  /**
   * It never started: its task was withdrawn from the pool before a worker
   * took it (a stopped run).
   */
  withdrawn?: boolean;
  /**
   * When it began to run, ms since the epoch: when a worker took the task,
   * or the command's process was spawned. For a task settled before its
   * result came (a timeout, a cancel), when it was handed to the pool.
   */
  start: number;
  /** How long it ran, ms (for a task settled early: since it was handed to the pool). */
  duration: number;
}

/**
 * The wait in ms before the attempt after attempt number `attempt` (1 for
 * the first) of `job` failed: its `backoff` doubled per retry, with ±50 %
 * jitter; or -1 when the job has no retry left.
 */
export function retryDelay(job: Job, attempt: number): number {
  return attempt <= job.retries ? backoff(attempt, job.backoff) : -1;
}

/** The text of a failure: an error's message, or the value as a string. */
export function errorText(error: unknown): string {
  return (error as Error)?.message ?? String(error);
}

/**
 * Runs attempts of jobs on one pool, and the commands among them as
 * subprocesses, reporting each outcome to `onEnd` with the caller's token.
 * A token names one attempt in progress: the caller may reuse it once its
 * outcome came.
 */
export class Attempts implements Sink {
  readonly #pool: PoolCore;
  readonly #onEnd: (token: number, outcome: AttemptOutcome) => void;
  readonly #children = new Set<Deno.ChildProcess>();
  /** When the attempt of each token started: ms since the epoch, and `performance.now()`. */
  readonly #starts: number[] = [];
  readonly #began: number[] = [];
  /** The abort of each running command's attempt, by token (see `abort`). */
  readonly #aborts: Array<AbortController | undefined> = [];
  #commands = 0;

  /**
   * @param pool The pool task jobs run on.
   * @param onEnd Called once per attempt with its token and outcome. It must
   * not throw: an exception it throws is rethrown in a microtask (uncaught,
   * as from a promise callback), not into the pool.
   */
  constructor(
    pool: PoolCore,
    onEnd: (token: number, outcome: AttemptOutcome) => void,
    onProgress?: (token: number, value: unknown) => void,
  ) {
    this.#pool = pool;
    this.#onEnd = onEnd;
    // Only a listener makes the pool pass progress on (see `Sink.progress`).
    if (onProgress !== undefined) this.progress = onProgress;
  }

  /** Where the pool sends a running task's progress, when someone listens. (The pool's `Sink`.) */
  progress?: (token: number, value: unknown) => void;

  /** Command jobs running now. */
  get commands(): number {
    return this.#commands;
  }

  /** Starts an attempt of `job`; its outcome goes to `onEnd(token, …)`. */
  start(job: Job, token: number): void {
    this.#starts[token] = Date.now();
    this.#began[token] = performance.now();
    if (job.kind === "task") {
      try {
        // The job is its own task spec: module, name, args and timeout.
        this.#pool.queueTo(job as TaskSpec, this, token);
      } catch (error) {
        // A job that cannot start ends in a microtask, not inside the caller's loop.
        queueMicrotask(() => this.deliver(token, false, error, 0, -1));
      }
      return;
    }
    this.#commands++;
    const abort = this.#aborts[token] = new AbortController();
    runCommand(job, this.#children, abort.signal).then(
      (outcome) => this.#end(token, outcome),
      (error) => this.#end(token, { ok: false, error: String(error) }),
    );
  }

  /**
   * Where the pool delivers a task's outcome: from its result pump (with
   * when a worker started it and how long it ran), and from `terminate()`,
   * `withdraw()`, a task's timeout or a dead worker's handling, all
   * synchronously. (The pool's `Sink`.)
   */
  deliver(token: number, ok: boolean, value: unknown, startUs: number, runUs: number): void {
    let outcome: AttemptOutcome;
    if (runUs >= 0) {
      const details = ok ? { ok, result: value } : { ok, error: errorText(value) };
      outcome = details as AttemptOutcome;
      outcome.start = this.#pool.startTime(startUs);
      outcome.duration = runUs / 1000;
    } else {
      outcome = this.#outcome(token, ok ? { ok, result: value } : { ok, error: errorText(value) });
      if (value instanceof WithdrawnError) outcome.withdrawn = true;
    }
    try {
      this.#onEnd(token, outcome);
    } catch (error) {
      // Not the pool's to handle: it stays uncaught, as in a promise callback.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** Withdraws the task attempts that no worker has started; they end as `withdrawn`. */
  withdraw(): void {
    this.#pool.withdraw();
  }

  /**
   * Ends one attempt as its timeout would (a task's worker is asked to stop
   * and replaced after the grace; a command's process group gets SIGTERM,
   * then SIGKILL); its outcome is a failure with `reason`. False when the
   * token runs nothing.
   */
  abort(token: number, reason: Error): boolean {
    const command = this.#aborts[token];
    if (command !== undefined) {
      command.abort(reason);
      return true;
    }
    return this.#pool.cancelTo(this, token, reason);
  }

  /** Ends what runs: the pool is terminated, and every command with its process tree. */
  cancel(): void {
    this.#pool.terminate();
    for (const child of this.#children) terminateTree(child);
  }

  /** A command ended: its duration runs to its exit (not to the end of what it left behind). */
  #end(token: number, details: CommandOutcome): void {
    this.#commands--;
    this.#aborts[token] = undefined;
    const { endedAt, ...rest } = details;
    const outcome = this.#outcome(token, rest);
    if (endedAt !== undefined) outcome.duration = endedAt - this.#began[token];
    this.#onEnd(token, outcome);
  }

  #outcome(token: number, details: Omit<AttemptOutcome, "start" | "duration">): AttemptOutcome {
    const outcome = details as AttemptOutcome;
    outcome.start = this.#starts[token];
    outcome.duration = performance.now() - this.#began[token];
    return outcome;
  }
}
