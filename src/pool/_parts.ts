/**
 * The records the parts of a pool hand each other: a task's cancellation
 * state, how a parked task is settled, and a sink that takes outcomes instead
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
  /** While it waits for room: its position in the overflow (`_waiting.ts`), else -1. */
  waiting: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** Gets the progress the task reports (`onProgress`), if the caller asked for it. */
  progress: ((value: unknown) => void) | undefined;
}

/** A parked `submit()`: its promise resolves with the task's handle once the task is queued. */
export const PARKED_HANDLE = 0;
/** A parked `run()` or `execute()`: the task's one promise settles with its outcome. */
export const PARKED_RESULT = 1;
/** A parked task of the scheduler or the Redis consumer: its outcome goes to a sink. */
export const PARKED_SINK = 2;

/**
 * What `capture` was last given: the settle functions of the promise just
 * made. A promise's executor runs synchronously inside its constructor, so
 * the caller reads them right after; one module-level executor instead of a
 * closure (and its context) per task.
 */
export const captured = {
  resolve: undefined as unknown as (value: unknown) => void,
  reject: undefined as unknown as (error: unknown) => void,
};

/** The executor of the pool's promises: hands their settle functions to `captured`. */
export function capture(resolve: (value: never) => void, reject: (error: unknown) => void): void {
  captured.resolve = resolve as (value: unknown) => void;
  captured.reject = reject;
}
