/**
 * One attempt of a job, written once for both runners of jobs (the local
 * `Scheduler` and the Redis consumer): a task job on the pool, a command job
 * as a subprocess, each with its timeout; its outcome with when it started
 * and how long it ran; and the wait before the next attempt.
 *
 * A task's outcome comes to this object as a pool `Sink` (no promise per
 * task) when the pool has room, else through a promise once it has: either
 * way `onEnd(token, outcome)` is called exactly once per `start`.
 *
 * @module
 */

import { backoff } from "../_util.ts";
import type { Job } from "../jobs/mod.ts";
import type { PoolCore, Sink } from "../pool/_core.ts";
import type { TaskSpec } from "../pool/types.ts";
import { runCommand, terminateTree } from "./_command.ts";

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
  /** When it started, ms since the epoch. */
  start: number;
  /** How long it took, ms. */
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
  #commands = 0;

  /**
   * @param pool The pool task jobs run on.
   * @param onEnd Called once per attempt with its token and outcome. It must
   * not throw: an exception it throws is rethrown in a microtask (uncaught,
   * as from a promise callback), not into the pool.
   */
  constructor(pool: PoolCore, onEnd: (token: number, outcome: AttemptOutcome) => void) {
    this.#pool = pool;
    this.#onEnd = onEnd;
  }

  /** Command jobs running now. */
  get commands(): number {
    return this.#commands;
  }

  /** Starts an attempt of `job`; its outcome goes to `onEnd(token, …)`. */
  start(job: Job, token: number): void {
    this.#starts[token] = Date.now();
    this.#began[token] = performance.now();
    if (job.kind === "task") {
      // The job is its own task spec: module, name, args and timeout.
      const spec = job as TaskSpec;
      let queued = false;
      try {
        queued = this.#pool.tryPush(spec, [], this, token) !== null;
      } catch {
        // run() rejects with the same error, later: a job that cannot start
        // ends in a microtask, not inside the caller's loop.
      }
      if (!queued) {
        // Callbacks, not async functions: this runs once per job, 10,000s of times.
        this.#pool.run(spec, []).then(
          (result) => this.deliver(token, true, result),
          (error) => this.deliver(token, false, error),
        );
      }
      return;
    }
    this.#commands++;
    runCommand(job, this.#children).then(
      (outcome) => this.#end(token, outcome),
      (error) => this.#end(token, { ok: false, error: String(error) }),
    );
  }

  /**
   * Where the pool delivers a task's outcome: from its result pump, and from
   * `terminate()`, a task's timeout or a dead worker's handling, all
   * synchronously. (The pool's `Sink`; also the promise path's end.)
   */
  deliver(token: number, ok: boolean, value: unknown): void {
    const outcome = this.#outcome(
      token,
      ok ? { ok, result: value } : { ok, error: errorText(value) },
    );
    try {
      this.#onEnd(token, outcome);
    } catch (error) {
      // Not the pool's to handle: it stays uncaught, as in a promise callback.
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** Ends what runs: the pool is terminated, and every command with its process tree. */
  cancel(): void {
    this.#pool.terminate();
    for (const child of this.#children) terminateTree(child);
  }

  #end(token: number, details: Omit<AttemptOutcome, "start" | "duration">): void {
    this.#commands--;
    this.#onEnd(token, this.#outcome(token, details));
  }

  #outcome(token: number, details: Omit<AttemptOutcome, "start" | "duration">): AttemptOutcome {
    const outcome = details as AttemptOutcome;
    outcome.start = this.#starts[token];
    outcome.duration = performance.now() - this.#began[token];
    return outcome;
  }
}
