/**
 * The records the parts of a pool hand each other: a task's cancellation
 * state, a submit waiting for room, and a sink that takes outcomes instead
 * of a promise per task.
 *
 * @module
 */

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
  /** A running task reported progress (`taskProgress`); absent: nobody listens. */
  progress?(seq: number, value: unknown): void;
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
  /** Gets the progress the task reports (`onProgress`), if the caller asked for it. */
  progress: ((value: unknown) => void) | undefined;
}

/** A task waiting for room in the ring, encoded (the overflow of `_submit.ts`). */
export interface Waiting {
  index: number;
  form: number;
  tag: number;
  len: number;
  num: number;
  bytes: Uint8Array;
  /** What settles it: `PARKED_HANDLE`, `PARKED_RESULT` or `PARKED_SINK`. */
  mode: number;
  /** Still waiting: not yet queued, refused or cancelled. */
  live: boolean;
  /**
   * `PARKED_HANDLE`: resolves the submit with the task's handle, once queued.
   * `PARKED_RESULT`: resolves the task's own result (its one promise).
   */
  accept: (value: unknown) => void;
  /** Rejects the submit (`PARKED_HANDLE`) or the task's result (`PARKED_RESULT`). */
  refuse: (error: unknown) => void;
  control: Control | undefined;
  /** `PARKED_SINK`: where the outcome goes, as `seq`. */
  sink: Sink | undefined;
  seq: number;
}

/** A parked `submit()`: its promise resolves with the task's handle once the task is queued. */
export const PARKED_HANDLE = 0;
/** A parked `run()` or `execute()`: the task's one promise settles with its outcome. */
export const PARKED_RESULT = 1;
/** A parked task of the scheduler or the Redis consumer: its outcome goes to a sink. */
export const PARKED_SINK = 2;
