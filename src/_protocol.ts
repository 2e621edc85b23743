/**
 * What the pool's main thread and its workers agree on: how a task and a
 * result sit in a ring slot, the shared stats counters, and the few
 * `postMessage` messages (start-up only; tasks and results never use it).
 *
 * ## Task messages (the task ring; main thread → any worker)
 * - aux0: the task id, a small integer the main thread recycles;
 * - aux1: `index << 2 | form`, the function table index and the argument form;
 * - aux2: when it was queued, µs since the pool's epoch, wrapping at 2^32
 *   (wait time = start − queued, computed with `| 0`: fine below 35 minutes);
 * - payload: the arguments, by `form`.
 *
 * ## Result messages (the result ring; any worker → main thread)
 * - aux0: the task id; aux1: `OUTCOME_OK` or `OUTCOME_ERROR`;
 * - payload: the return value, or a {@linkcode RemoteError}.
 *
 * ## Stats (one SharedArrayBuffer)
 * Each worker owns one Int32 record (`W_STATE`, `W_COMPLETED`, `W_FAILED`) and
 * one Float64 pair (`W_WAIT_MS`, `W_RUN_MS`) and is their only writer; the
 * main thread only reads and sums them. Counters use `Atomics.add`/`store`,
 * so a reader never sees a torn count; the Float64 totals are plain stores
 * (a stats reader may see a total one task behind).
 *
 * @module
 */

/** The arguments are the payload, an array. */
export const FORM_ARRAY = 0;
/** The payload is the one argument (numbers, strings and bytes travel raw). */
export const FORM_ONE = 1;
/** No arguments; no payload. */
export const FORM_NONE = 2;

/** aux1 of a result: the task returned (or resolved). */
export const OUTCOME_OK = 0;
/** aux1 of a result: the task threw (or rejected); the payload is a {@linkcode RemoteError}. */
export const OUTCOME_ERROR = 1;

/** An error as it crosses from a worker. */
export interface RemoteError {
  /** The thrown value was an Error (else `value` holds what was thrown). */
  error: boolean;
  name?: string;
  message?: string;
  stack?: string;
  cause?: RemoteError;
  /** A thrown non-Error, as far as JSON carries it. */
  value?: unknown;
}

// -- Stats layout --

/** Int32s per worker record. */
export const W_INTS = 4;
/** Worker record: 0 idle (waiting for a task), 1 running one. */
export const W_STATE = 0;
/** Worker record: tasks that returned. */
export const W_COMPLETED = 1;
/** Worker record: tasks that threw. */
export const W_FAILED = 2;
/** Float64s per worker. */
export const W_FLOATS = 2;
/** Worker floats: total ms its tasks waited in the queue. */
export const W_WAIT_MS = 0;
/** Worker floats: total ms its tasks ran. */
export const W_RUN_MS = 1;

/** Bytes of the stats buffer for `workers` workers. */
export function statsBytes(workers: number): number {
  return workers * W_INTS * 4 + workers * W_FLOATS * 8;
}

/** Byte offset of the Float64 part of the stats buffer. */
export function statsFloatOffset(workers: number): number {
  return workers * W_INTS * 4;
}

/** The one message the main thread posts to a worker: what it needs to start. */
export interface StartMessage {
  kind: "start";
  /** Which worker this is (its stats record). */
  index: number;
  workers: number;
  tasks: SharedArrayBuffer;
  results: SharedArrayBuffer;
  table: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  /** `performance.timeOrigin + performance.now()` at the pool's start, ms. */
  epoch: number;
  /** µs to poll for a task before sleeping. */
  spin: number;
}

/** Microseconds since `epoch` (an absolute ms time), as an Int32 that wraps. */
export function micros(epoch: number): number {
  return ((performance.timeOrigin + performance.now() - epoch) * 1000) | 0;
}
