/**
 * What the pool's main thread and its workers agree on: how a task and a
 * result sit in a ring slot, the shared stats counters, and the few
 * `postMessage` messages (start-up, aborts, and payloads too large for a
 * slot; tasks and results themselves go through the rings).
 *
 * ## Task messages (the task ring; main thread → any worker)
 * - aux0: the task's ticket: its id (a small integer the main thread
 *   recycles) and that id's generation, see {@linkcode ticketOf};
 * - aux1: `index << 3 | SIGNALLED | form`: the function table index, whether
 *   the task may be aborted (the worker then gives it an `AbortSignal`), and
 *   the argument form;
 * - aux2: when it was queued, µs since the pool's epoch, wrapping at 2^32
 *   (wait time = start − queued, computed with `| 0`: fine below 35 minutes);
 * - payload: the arguments, by `form`.
 *
 * ## Result messages (the result ring; any worker → main thread)
 * - aux0: the task's ticket; aux1: `OUTCOME_OK`, `OUTCOME_ERROR`,
 *   `OUTCOME_SKIPPED` or `OUTCOME_LARGE`;
 * - aux2: when the worker started the task, µs since the pool's epoch,
 *   wrapping as the queue time does (the main thread unwraps it against its
 *   own clock: right for tasks that ran under 35 minutes);
 * - aux3: how long it ran, µs (capped at 2^31 − 1), or -1 for a skipped task;
 * - payload: the return value, a {@linkcode RemoteError}, or nothing (a
 *   skipped task, or a large result whose value comes by `postMessage`: see
 *   `_parcels.ts`).
 *
 * ## Which worker holds which task (the crash and cancel protocol)
 * A worker stores a task's id in its `W_TASK` word *before* it claims the
 * task from the ring (`Ring.popTracked`), keeps it while the task runs and
 * its result is pushed, then stores -1. So, for any task ticket T that is not
 * settled: T is in the ring, or it is some worker's `W_TASK`. The main
 * thread, once a worker is dead (its Web Lock was granted), reads the ring
 * first and the live workers' `W_TASK`s second: the dead worker's `W_TASK`
 * was lost with it exactly when it is in neither (a live worker that takes T
 * stores it before removing it from the ring, so the reads cannot miss it).
 *
 * To stop a running task T on worker w, the main thread stores
 * `W_KILL[w] = 1`, then reads `W_TASK[w]`. A worker reads its `W_KILL` after
 * its tentative `W_TASK` store and before claiming, and does not claim while
 * it is set. Either the worker saw the flag (it takes nothing new), or the
 * main thread sees the id it is about to claim: if that is not T, T has
 * finished and nothing is killed. A worker is never terminated holding a
 * task other than the one meant.
 *
 * A task cancelled while still in the ring is marked in the flags buffer
 * (`flags[id] = ticket`, before the main thread looks for it). The worker
 * that claims it reads the flag after claiming and skips it (reporting
 * `OUTCOME_SKIPPED`). The id is reused at once under a new ticket: a late
 * result, skip or `W_TASK` of the old ticket matches nothing.
 *
 * A worker the main thread terminated may go on running (Deno cannot stop
 * synchronous code in a worker, denoland/deno#35657). Its record keeps
 * `W_KILL = 1`, so it never claims another task, and its record is not
 * reused until its Web Lock says it is gone.
 *
 * ## Stats (one SharedArrayBuffer)
 * Each worker owns one Int32 record (`W_STATE`, `W_COMPLETED`, `W_FAILED`) and
 * one Float64 pair (`W_WAIT_MS`, `W_RUN_MS`) and is their only writer; the
 * main thread only reads them. Counters use `Atomics.add`/`store`, so a
 * reader never sees a torn count; the Float64 totals are plain stores (a
 * stats reader may see a total one task behind). `W_COMPLETED`/`W_FAILED`
 * tell the pool whether a worker that died had finished any task (its
 * respawn backoff); `stats.completed` and `stats.failed` are counted by the
 * main thread as results settle tasks, so that a task cancelled while it ran
 * is counted once.
 *
 * @module
 */

/**
 * Where a worker puts the running task's signal for `taskSignal()`: a global
 * under a registered symbol, so that any copy of the module sees it.
 */
export const SIGNAL_SLOT: symbol = Symbol.for("taskpool.taskSignal");
/** Where a worker keeps the running task's progress reporter (see `taskProgress`). */
export const PROGRESS_SLOT: symbol = Symbol.for("taskpool.taskProgress");

/** Bits of a ticket that hold the task id. */
export const TICKET_SHIFT = 20;
/** The task id of a ticket: `ticket & ID_MASK`. */
export const ID_MASK = (1 << TICKET_SHIFT) - 1;
/** Generations wrap at this (ticket = id | generation << 20 stays a positive Int32). */
const GENERATIONS = 2047;

/**
 * A task's ticket: its id and the generation of that id (1 to 2047). A
 * result, a skip flag or a `W_TASK` names a ticket, so that one of a task
 * that was cancelled or lost can never be taken for the next task that
 * reuses its id.
 */
export function ticketOf(id: number, generation: number): number {
  return id | (((generation - 1) % GENERATIONS + 1) << TICKET_SHIFT);
}

/** The arguments are the payload, an array. */
export const FORM_ARRAY = 0;
/** The payload is the one argument (numbers, strings and bytes travel raw). */
export const FORM_ONE = 1;
/** No arguments; no payload. */
export const FORM_NONE = 2;
/**
 * The arguments were too large for a slot: the payload is a parcel key, and
 * the worker fetches the parcel from the main thread with `postMessage`.
 */
export const FORM_LARGE = 3;

/** aux1 of a result: the task returned (or resolved). */
export const OUTCOME_OK = 0;
/** aux1 of a result: the task threw (or rejected); the payload is a {@linkcode RemoteError}. */
export const OUTCOME_ERROR = 1;
/** aux1 of a result: the task was cancelled before it ran; no payload. */
export const OUTCOME_SKIPPED = 2;
/** aux1 of a result: it returned a value too large for a slot, sent as a {@linkcode LargeResultMessage}. */
export const OUTCOME_LARGE = 3;

/** aux1 bit: the task may be aborted; the worker gives it an `AbortSignal`. */
export const SIGNALLED = 4;
/** aux1: the argument form. */
export const FORM_MASK = 3;
/** aux1: shift of the function table index. */
export const INDEX_SHIFT = 3;

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
export const W_INTS = 8;
/** Worker record: 0 idle (waiting for a task), 1 running one. */
export const W_STATE = 0;
/** Worker record: tasks that returned. */
export const W_COMPLETED = 1;
/** Worker record: tasks that threw. */
export const W_FAILED = 2;
/** Worker record: the ticket of the task it holds or is about to claim, else -1. */
export const W_TASK = 3;
/** Worker record: 1 while the main thread asks it to take no new task. */
export const W_KILL = 4;
/** Worker record: 1 once the worker holds its Web Lock (the main thread waits on it). */
export const W_READY = 5;
/**
 * Worker record: 1 while the worker polls the task ring for its next task
 * (its bounded spin), so the pool wakes no sleeping worker for a task it
 * will take (see `channel/_layout.ts`, "Pollers"). Written by the worker;
 * zeroed by the main thread when it gives the record to a new worker.
 */
export const W_POLLING = 6;
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

/** What the main thread posts to a worker. */
export type ToWorker = StartMessage | AbortMessage | ParcelMessage;

/** What a worker posts to the main thread. */
export type FromWorker = FetchMessage | LargeResultMessage | CrashMessage | ProgressMessage;

/**
 * The latest progress a running task reported (`taskProgress`), at most
 * about every `PROGRESS_MS` per task: a number, or a JSON value as text.
 */
export interface ProgressMessage {
  kind: "progress";
  ticket: number;
  value?: number;
  json?: string;
}

/**
 * An uncaught error (or unhandled rejection) is ending the worker: it says
 * why, then closes itself. The pool gives the reason to the task it held, so
 * the runtime does not print it as well (the worker prevents that).
 */
export interface CrashMessage {
  kind: "crash";
  /** As the runtime would print it, say "Uncaught Error: boom". */
  message: string;
}

/** Arguments too large for a slot, as they were encoded (see `TooLargeError`). */
export interface ParcelMessage {
  kind: "parcel";
  key: number;
  /** `FORM_ONE` or `FORM_ARRAY`; absent when the task was cancelled meanwhile. */
  form?: number;
  tag?: number;
  data?: string | Uint8Array;
}

/** A worker asks for the parcel of a `FORM_LARGE` task. */
export interface FetchMessage {
  kind: "fetch";
  key: number;
}

/** A result too large for a slot; its ring message has `OUTCOME_LARGE`. */
export interface LargeResultMessage {
  kind: "result";
  ticket: number;
  tag: number;
  data: string | Uint8Array;
}

/** Aborts the signal of the running task `id` (cooperative cancellation). */
export interface AbortMessage {
  kind: "abort";
  id: number;
  /** The reason, as `name` and `message`. */
  name: string;
  message: string;
}

/** Starts a worker. */
export interface StartMessage {
  kind: "start";
  /** Names this worker's Web Lock, held while it lives. */
  lock: string;
  /** Cancel flags by task id (Int32). */
  flags: SharedArrayBuffer;
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
  /**
   * Tests only: how long every slice of a sleep for a task lasts, ms, the
   * first one too (default: 50 ms, then `SLEEP_RETRY_MS` in `_worker.ts`).
   * Long, a lost wake-up shows as a task that never runs.
   */
  sleepMs?: number;
}

/** The Web Lock a pool worker holds while it lives. */
export function workerLock(pool: string, index: number, generation: number): string {
  return `taskpool.pool.${pool}.${index}.${generation}`;
}

/** Microseconds since `epoch` (an absolute ms time), as an Int32 that wraps. */
export function micros(epoch: number): number {
  return ((performance.timeOrigin + performance.now() - epoch) * 1000) | 0;
}
