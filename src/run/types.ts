/**
 * The public types of a run of jobs: how each job ended, and the options of
 * the `Scheduler`.
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";
import type { Clock } from "./clock.ts";

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
  /**
   * When its last attempt began to run, ms since the epoch: when a worker
   * took the task, or the command's process was spawned.
   */
  start?: number;
  /** How long its last attempt ran, ms (not counting its wait). */
  duration?: number;
  /** How long its last attempt waited, ms: from when it was ready (or its retry due) to its start. */
  wait?: number;
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
  /**
   * Where time comes from: now, and timers (for `delay`, `at`, the ticks of
   * recurring jobs and retries). A test passes a clock it moves itself.
   *
   * @default {systemClock}
   */
  clock?: Clock;
  /** Called when an attempt starts. */
  onStart?: (job: Job, attempt: number) => void;
  /** Called once per job when it ends. */
  onFinish?: (result: JobResult) => void;
  /**
   * Called with the progress a running task job reports (`taskProgress`):
   * the latest value, at most about every 50 ms per job.
   */
  onProgress?: (job: Job, value: unknown) => void;
}
