/**
 * The records the parts of a pool hand each other: a task's cancellation
 * state, a submit waiting for room, and a sink that takes outcomes instead
 * of a promise per task.
 *
 * @module
 */

import type { TaskHandle } from "./types.ts";

/**
 * Receives the outcomes of tasks queued without a promise each (`map()`, and
 * the scheduler's tasks).
 */
export interface Sink {
  /**
   * One task ended: `ok` with its value, or not with its error (a
   * `TaskError`, `TimeoutError`, `PoolClosedError`, a `WithdrawnError`…).
   * Called synchronously by the pool: from its result pump, and from
   * `terminate()`, `withdraw()`, a task's timeout and the handling of a dead
   * worker. It must not throw.
   *
   * When a worker ran the task, `startUs` is when it started (µs since the
   * pool's epoch, wrapping: `PoolCore.startTime()` makes it a date) and
   * `runUs` how long it ran; else `runUs` is -1.
   */
  deliver(seq: number, ok: boolean, value: unknown, startUs: number, runUs: number): void;
}

/** The cancellation state of a task that has a timeout or a signal. */
export interface Control {
  /** The task id once queued, else -1. */
  id: number;
  /** While it waits for room: its place in the overflow (see `_submit.ts`). */
  waiting: Waiting | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** A task waiting for room in the ring, encoded (the overflow of `_submit.ts`). */
export interface Waiting {
  index: number;
  form: number;
  tag: number;
  len: number;
  num: number;
  bytes: Uint8Array;
  /** Resolves the submit; `undefined` once it was queued, refused or cancelled. */
  accept: ((handle: TaskHandle<unknown>) => void) | undefined;
  refuse: (error: unknown) => void;
  control: Control | undefined;
  /** Where the outcome goes instead of a promise (then `accept` and `refuse` only mark it live). */
  sink: Sink | undefined;
  seq: number;
}
