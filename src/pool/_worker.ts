/**
 * The code that runs inside each pool worker: pull a task from the shared
 * task ring, run it, push the result to the result ring, repeat.
 *
 * Staying responsive: the worker never blocks its event loop. It waits for
 * work with `Atomics.waitAsync` (after a short poll when the pool has no more
 * workers than cores), awaits async tasks, waits asynchronously when the
 * result ring is full, and yields to its event loop at least every
 * `YIELD_MS` of back-to-back synchronous tasks, so that timers and promises a
 * task left behind still run.
 *
 * @module
 */

import { describe } from "../_util.ts";
import { decodeLarge, Encoder, TooLargeError } from "../channel/_codec.ts";
import { RECV_EPOCH, RECV_WAITERS, SEND_EPOCH, SEND_WAITERS, SENDERS } from "../channel/_layout.ts";
import { CLOSED, DISCONNECTED, EMPTY, FULL, PAUSED, ringFor } from "../channel/_ring.ts";
import { pollMs, waitAsync } from "../channel/_wait.ts";
import { readEntry } from "./_table.ts";
import {
  type CrashMessage,
  FORM_LARGE,
  FORM_MASK,
  FORM_NONE,
  FORM_ONE,
  ID_MASK,
  INDEX_SHIFT,
  OUTCOME_ERROR,
  OUTCOME_LARGE,
  OUTCOME_OK,
  OUTCOME_SKIPPED,
  type ParcelMessage,
  PROGRESS_SLOT,
  type ProgressMessage,
  type RemoteError,
  SIGNAL_SLOT,
  SIGNALLED,
  type StartMessage,
  statsFloatOffset,
  type ToWorker,
  W_COMPLETED,
  W_FAILED,
  W_FLOATS,
  W_INTS,
  W_KILL,
  W_POLLING,
  W_READY,
  W_RUN_MS,
  W_STATE,
  W_TASK,
  W_WAIT_MS,
} from "./_protocol.ts";

/** The largest Int32: a run time in µs is capped there (about 35 minutes). */
const MAX_INT32 = 2 ** 31 - 1;
/** Longest run of synchronous tasks before the worker lets its event loop turn, ms. */
const YIELD_MS = 10;
/**
 * Longest run of synchronous tasks before the worker lets its timers run, ms.
 * A turn of the event loop by a message (`yieldToEventLoop`) delivers
 * messages, but fires only timers that were already due when the event loop
 * last looked (measured: never one that fell due during the synchronous run);
 * a `setTimeout(0)` fires them all, but costs ~2 ms, so it comes less often.
 */
const TIMER_YIELD_MS = 100;
/**
 * How long a worker with no task sleeps, past the first 50 ms of a sleep,
 * before it looks at the task ring by itself, ms. Every task pushed wakes as
 * many sleeping workers as it needs (see "Pollers" in `channel/_layout.ts`),
 * so this retry would only matter after a lost wake-up: long, so that an
 * idle pool costs no CPU (a retry a second cost a worker 0.3–0.8 ms of CPU a
 * second; bench/pool_steady_bench.ts, "Idle process"). A wake that went to
 * a worker whose event loop is blocked by what a task left behind is the
 * result pump's to mend: asleep 40 ms with tasks queued, it wakes the sleepers
 * (`STUCK_MS` in `_results.ts`).
 */
const SLEEP_RETRY_MS = 60_000;
/**
 * A result encoded in at most this many bytes was quick to encode (well
 * under a µs), so the next task taken at once may start when this one ended
 * without a clock read. After a larger one (or an error, or a result sent
 * aside) the next start reads the clock: else a costly encoding would count
 * in the next task's run time, and could put its start before its queue time.
 */
const CHEAP_RESULT_BYTES = 256;

// deno-lint-ignore no-explicit-any
type TaskFunction = (...args: any[]) => unknown;

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

/** The Web Locks API (Deno implements it; its types do not declare it). */
const locks = (navigator as unknown as {
  locks: { request(name: string, callback: () => Promise<void>): Promise<unknown> };
}).locks;

// Deno loads its timers (and the Node internals behind them) on their first
// use in each isolate: ~8 ms here. Pay it while the worker starts, not in its
// first task (every wait clears a timer). The first two results of a pool
// idle since it started came after ~14 and ~11 ms; now ~5 and ~2 ms.
clearTimeout(undefined);

// An uncaught error or unhandled rejection ends the worker, as it would
// anyway, but the pool reports it (to the task this worker held, see
// `_workers.ts`) instead of the runtime printing it to stderr: a caller that
// handles the task's failure gets a clean stderr. The message goes before
// close(), so it reaches the main thread before the worker's lock comes free.
function crash(event: Event, message: string): void {
  event.preventDefault();
  scope.postMessage({ kind: "crash", message } satisfies CrashMessage);
  scope.close();
}
addEventListener("error", (event) => crash(event, (event as ErrorEvent).message));
addEventListener("unhandledrejection", (event) => {
  const reason = (event as PromiseRejectionEvent).reason;
  crash(
    event,
    `Uncaught (in promise) ${
      reason instanceof Error ? `${reason.name}: ${reason.message}` : describe(reason)
    }`,
  );
});

// -- Progress (taskProgress): the latest value of the running task goes to
// the pool at most every PROGRESS_MS; a synchronous task that reports in a
// loop reads the clock only every 256th call. Nothing is sent after the task
// settled, and the pool drops what arrives late (its ticket is gone).

/** The least time between two progress messages of a task, ms. */
const PROGRESS_MS = 50;
/** The longest progress value as JSON, characters. */
const MAX_PROGRESS_JSON = 4096;
let progressOn = false;
let progressTicket = 0;
let progressValue = 0;
let progressJson: string | undefined;
let progressPending = false;
let progressCalls = 0;
let progressSent = -Infinity;
let progressTimer: ReturnType<typeof setTimeout> | undefined;

function sendProgress(): void {
  if (!progressPending || !progressOn) return;
  progressPending = false;
  progressSent = performance.now();
  scope.postMessage(
    progressJson === undefined
      ? { kind: "progress", ticket: progressTicket, value: progressValue }
      : { kind: "progress", ticket: progressTicket, json: progressJson } satisfies ProgressMessage,
  );
}

function reportProgress(value: unknown): void {
  if (!progressOn) return;
  if (typeof value === "number") {
    if (!(value >= 0 && value <= 1)) {
      throw new RangeError(
        `taskProgress() takes a number from 0 to 1 or a small JSON value: got ${value}`,
      );
    }
    progressValue = value;
    progressJson = undefined;
  } else {
    const json = JSON.stringify(value); // a BigInt or a cycle throws here, in the task
    if (json === undefined || json.length > MAX_PROGRESS_JSON) {
      throw new RangeError(
        `taskProgress() takes a number from 0 to 1 or a JSON value of at most ${MAX_PROGRESS_JSON} characters: got ${
          json === undefined ? typeof value : `${json.length} characters`
        }`,
      );
    }
    progressJson = json;
  }
  progressPending = true;
  if (progressTimer !== undefined && (++progressCalls & 255) !== 0) return;
  const wait = PROGRESS_MS - (performance.now() - progressSent);
  if (wait <= 0) sendProgress();
  else if (progressTimer === undefined) {
    progressTimer = setTimeout(() => {
      progressTimer = undefined;
      sendProgress();
    }, wait);
  }
}
(globalThis as unknown as Record<symbol, unknown>)[PROGRESS_SLOT] = reportProgress;

/** The running task may report progress from now on. */
function progressStart(ticket: number): void {
  progressOn = true;
  progressTicket = ticket;
}

/** The running task settled: what it reports from now on goes nowhere. */
function progressEnd(): void {
  progressOn = false;
  progressPending = false;
  progressSent = -Infinity;
  if (progressTimer !== undefined) {
    clearTimeout(progressTimer);
    progressTimer = undefined;
  }
}

/** Parcels asked for and not yet here, by key. */
const parcels = new Map<number, (parcel: ParcelMessage) => void>();

/** Fetches the arguments of a `FORM_LARGE` task from the main thread. */
function fetchParcel(key: number): Promise<ParcelMessage> {
  return new Promise((resolve) => {
    parcels.set(key, resolve);
    scope.postMessage({ kind: "fetch", key });
  });
}

/** The running task that can be aborted, if any. */
let current: { id: number; controller: AbortController } | null = null;

scope.onmessage = (event) => {
  const message = event.data;
  if (message?.kind === "start") {
    void serve(message);
  } else if (message?.kind === "parcel") {
    parcels.get(message.key)?.(message);
    parcels.delete(message.key);
  } else if (message?.kind === "abort" && current?.id === message.id) {
    const reason = new Error(message.message);
    reason.name = message.name;
    current.controller.abort(reason);
  }
};

/**
 * Lets the event loop turn once (timers, messages). A `MessageChannel`
 * round trip, not `setTimeout(0)`: the latter cost ~2.3 ms here against
 * ~0.04 ms, which made back-to-back CPU tasks ~20 % slower (bench/pool_bench.ts).
 */
const yieldChannel = new MessageChannel();
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    yieldChannel.port1.onmessage = () => resolve();
    yieldChannel.port2.postMessage(0);
  });
}

/** Lets due timers fire: they run in timer order, before this one. */
function yieldToTimers(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * The task loop; returns once the pool closed the task ring and it is drained.
 *
 * One function on purpose, longer than the ~80 lines we aim for: it is the
 * worker's hot path, and each step that may await (the wait for a task, an
 * async task, a full result ring) would cost a promise per task as a
 * function of its own.
 */
async function serve(start: StartMessage): Promise<void> {
  // Hold a Web Lock for life: the runtime releases it when this worker ends,
  // however it ends, and the pool learns of it from that.
  await new Promise<void>((held) => {
    locks.request(start.lock, () => {
      held();
      return new Promise<void>(() => {});
    });
  });
  // Say so in shared memory, not by postMessage: a message posted by a
  // worker that dies right after is lost, and the pool would never watch it.
  const readyAt = start.index * W_INTS + W_READY;
  const words = new Int32Array(start.stats, 0, start.workers * W_INTS);
  Atomics.store(words, readyAt, 1);
  Atomics.notify(words, readyAt);

  const tasks = ringFor(start.tasks);
  const results = ringFor(start.results);
  const flags = new Int32Array(start.flags);
  const scratch = new Uint8Array(tasks.slotBytes);
  const enc = new Encoder(results.slotBytes);
  const counters = new Int32Array(start.stats, 0, start.workers * W_INTS);
  const totals = new Float64Array(
    start.stats,
    statsFloatOffset(start.workers),
    start.workers * W_FLOATS,
  );
  const record = start.index * W_INTS;
  const taskAt = record + W_TASK;
  const killAt = record + W_KILL;
  const pollingAt = record + W_POLLING;
  const floats = start.index * W_FLOATS;
  const spinMs = start.spin / 1000;
  const functions: Array<TaskFunction | undefined> = [];
  const pop = () => tasks.popTracked(scratch, counters, taskAt, killAt);
  const take = () => {
    const value = pop();
    if (value !== EMPTY || Atomics.load(tasks.i32, SENDERS) !== 0) return value;
    const last = pop(); // the pool publishes before it closes
    return last === EMPTY ? DISCONNECTED : last;
  };
  const signalSlot = globalThis as unknown as Record<symbol, AbortSignal | undefined>;
  /** `performance.now()` plus this is ms since the pool's epoch. */
  const sinceEpoch = performance.timeOrigin - start.epoch;
  let lastYield = performance.now();
  let lastTimerYield = lastYield;

  // When the last task ended, if the next may start then (see below); else -1.
  let lastEnded = -1;
  // Polls in a row that caught nothing (see `pollMs`); a task found at once resets it.
  let missed = 0;
  for (;;) {
    let args = pop();
    if (args !== EMPTY) missed = 0; // tasks come faster than it takes them
    // A task taken at once starts when the last one ended, as far as the
    // clock can tell: between them come the last result's encoding (small,
    // see CHEAP_RESULT_BYTES), its push and this pop, well under a µs; a
    // clock read (an op call) costs ~100 ns a task.
    let started = args === EMPTY ? -1 : lastEnded;
    if (args === EMPTY && spinMs > 0) {
      // A short poll catches the next task without the ~50 µs cost of
      // being woken; bounded, and off when workers outnumber cores.
      // While it polls, the pool wakes no sleeping worker for a task it
      // pushes (this one takes it); it says so in its record, and unsays it
      // before it either sleeps (its wait retries the ring after) or runs
      // what it caught (see "Pollers" in `channel/_layout.ts`).
      Atomics.store(counters, pollingAt, 1);
      const until = performance.now() + pollMs(spinMs, missed);
      do {
        for (let i = 0; i < 32 && args === EMPTY; i++) args = pop();
      } while (args === EMPTY && performance.now() < until);
      Atomics.store(counters, pollingAt, 0);
      missed = args === EMPTY ? missed + 1 : 0;
      // The pool counted this worker for a task it pushed while this one
      // polled; if it caught another and tasks still wait, a sleeper takes them.
      if (args !== EMPTY) tasks.passOn();
    }
    if (args === EMPTY) {
      Atomics.store(counters, taskAt, -1);
      args = await waitAsync(
        tasks,
        RECV_EPOCH,
        RECV_WAITERS,
        EMPTY,
        take,
        {},
        "receive a task",
        start.sleepMs ?? SLEEP_RETRY_MS,
        start.sleepMs,
      );
      if (args === DISCONNECTED) return;
      // Pass the wake-up on: the pool wakes one sleeping worker for the first
      // task of a burst and the others only at the end of its turn, so while
      // its thread stays busy, the woken workers wake the rest.
      tasks.passOn();
      lastYield = lastTimerYield = performance.now();
    }
    if (args === PAUSED) {
      // The pool is stopping a task of ours; take nothing until it says so.
      Atomics.store(counters, taskAt, -1);
      while (Atomics.load(counters, killAt) !== 0) {
        const paused = Atomics.waitAsync(counters, killAt, 1);
        if (paused.async) await paused.value;
      }
      lastEnded = -1;
      continue;
    }
    const ticket = tasks.aux0;
    const aux1 = tasks.aux1;
    const queued = tasks.aux2;
    let outcome = OUTCOME_OK;
    let value: unknown;
    if (started < 0) started = performance.now();
    let ended = started;
    // When it started (µs since the pool's epoch) and how long it ran (µs):
    // the result's aux2 and aux3, so the pool can report real times.
    let startUs = 0;
    let runUs = -1;
    // `ended` may be the next task's start: not after a costly encoding.
    let endedIsNow = false;

    if (Atomics.load(flags, ticket & ID_MASK) === ticket) {
      outcome = OUTCOME_SKIPPED; // cancelled while queued: it never runs
      enc.encode(undefined);
    } else {
      Atomics.store(counters, record + W_STATE, 1);
      startUs = ((sinceEpoch + started) * 1000) | 0;
      // A start taken from the last end can precede a queue time stamped
      // meanwhile (by under a µs): a task never starts before it was queued.
      if (((startUs - queued) | 0) < 0) startUs = queued;
      totals[floats + W_WAIT_MS] += ((startUs - queued) | 0) / 1000;
      let form = aux1 & FORM_MASK;
      if ((aux1 & SIGNALLED) !== 0) current = { id: ticket, controller: new AbortController() };
      progressStart(ticket);
      try {
        const index = aux1 >>> INDEX_SHIFT;
        if (form === FORM_LARGE) {
          const parcel = await fetchParcel(args as number);
          if (parcel.form === undefined) {
            throw new Error("The task was cancelled before its arguments arrived");
          }
          form = parcel.form;
          args = decodeLarge(parcel.tag!, parcel.data!);
        }
        const fn = functions[index] ?? (functions[index] = await load(start.table, index));
        signalSlot[SIGNAL_SLOT] = current?.controller.signal;
        try {
          value = form === FORM_ONE
            ? fn(args)
            : form === FORM_NONE
            ? fn()
            : fn(...(args as unknown[]));
        } finally {
          signalSlot[SIGNAL_SLOT] = undefined;
        }
        if (value instanceof Promise) value = await value;
      } catch (error) {
        outcome = OUTCOME_ERROR;
        value = toRemote(error, 0);
      }
      current = null;
      progressEnd();
      ended = performance.now();
      totals[floats + W_RUN_MS] += ended - started;
      runUs = Math.min((ended - started) * 1000, MAX_INT32) | 0;
      outcome = encodeOutcome(enc, outcome, value, ticket);
      endedIsNow = outcome === OUTCOME_OK && enc.len <= CHEAP_RESULT_BYTES;
      Atomics.add(counters, record + (outcome === OUTCOME_ERROR ? W_FAILED : W_COMPLETED), 1);
      Atomics.store(counters, record + W_STATE, 0);
    }

    let pushed = results.push(enc, ticket, outcome, startUs, runUs);
    if (pushed === FULL) {
      // The encoder keeps the payload until a push succeeds.
      pushed = await waitAsync(
        results,
        SEND_EPOCH,
        SEND_WAITERS,
        FULL,
        () => results.push(enc, ticket, outcome, startUs, runUs),
        {},
        "send a result",
      );
      ended = performance.now();
      endedIsNow = true;
    }
    // Only now is the task off this worker's hands (see `_protocol.ts`).
    Atomics.store(counters, taskAt, -1);
    if (pushed === CLOSED) return; // the pool is gone
    if (ended - lastTimerYield > TIMER_YIELD_MS) {
      await yieldToTimers();
      lastYield = lastTimerYield = ended = performance.now();
      endedIsNow = true;
    } else if (ended - lastYield > YIELD_MS) {
      await yieldToEventLoop();
      lastYield = ended = performance.now();
      endedIsNow = true;
    }
    lastEnded = endedIsNow ? ended : -1;
  }
}

/**
 * Encodes a result; a result that cannot travel becomes an error that says
 * why, and an error too large for a slot loses its stack, then its length.
 * Never throws: the pool's minimum slot holds the last resort.
 */
function encodeOutcome(enc: Encoder, outcome: number, value: unknown, ticket: number): number {
  try {
    enc.encode(value);
    return outcome;
  } catch (error) {
    if (error instanceof TooLargeError && outcome === OUTCOME_OK) {
      // Too large for a slot: the value goes by postMessage (copied, in the
      // same encoding), the ring message only says so.
      scope.postMessage({ kind: "result", ticket, tag: error.tag, data: error.data });
      enc.encode(undefined);
      return OUTCOME_LARGE;
    }
    let remote = value as RemoteError;
    if (outcome === OUTCOME_OK) {
      const reason = error instanceof Error ? error.message : String(error);
      remote = toRemote(new TypeError(`The task's return value cannot be sent back: ${reason}`), 0);
    }
    const message = String(remote.message ?? describe(remote.value));
    for (const limit of [4096, 1024, 160]) {
      try {
        enc.encode(
          {
            error: remote.error,
            name: remote.name,
            message: clip(message, limit),
          } satisfies RemoteError,
        );
        return OUTCOME_ERROR;
      } catch {
        // smaller still
      }
    }
    enc.encode({
      error: true,
      name: "Error",
      message: "The task failed; its error is too large to send back",
    });
    return OUTCOME_ERROR;
  }
}

function clip(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit)}…`;
}

const modules = new Map<string, Promise<Record<string, unknown>>>();

/** Resolves function table entry `index` to a function, importing its module once. */
async function load(table: SharedArrayBuffer, index: number): Promise<TaskFunction> {
  const entry = readEntry(table, index);
  if (entry.kind === "source") {
    let fn: unknown;
    try {
      fn = (0, eval)(`(${entry.source})`);
    } catch (error) {
      throw new SyntaxError(
        `Cannot compile the function given to execute(): ${
          (error as Error).message
        }; pass a plain function or arrow function whose source text stands alone`,
        { cause: error },
      );
    }
    if (typeof fn !== "function") {
      throw new TypeError("The source given to execute() is not a function");
    }
    return fn as TaskFunction;
  }
  let loading = modules.get(entry.module);
  if (loading === undefined) {
    loading = import(entry.module);
    modules.set(entry.module, loading);
  }
  let module: Record<string, unknown>;
  try {
    module = await loading;
  } catch (error) {
    throw new Error(
      `Cannot load task module ${entry.module}: ${(error as Error)?.message ?? error}`,
      {
        cause: error,
      },
    );
  }
  const fn = module[entry.name];
  if (typeof fn !== "function") {
    const exported = Object.keys(module).filter((key) => typeof module[key] === "function");
    throw new TypeError(
      `Module ${entry.module} has no exported function named "${entry.name}"; it exports ${
        exported.length === 0 ? "no functions" : exported.map((name) => `"${name}"`).join(", ")
      }`,
    );
  }
  return fn as TaskFunction;
}

/** An error (or any thrown value) as plain data for the trip to the main thread. */
function toRemote(thrown: unknown, depth: number): RemoteError {
  if (thrown instanceof Error) {
    return {
      error: true,
      name: thrown.name,
      message: thrown.message,
      stack: thrown.stack,
      cause: thrown.cause === undefined || depth >= 4
        ? undefined
        : toRemote(thrown.cause, depth + 1),
    };
  }
  try {
    JSON.stringify(thrown);
    return { error: false, value: thrown };
  } catch {
    return { error: false, value: String(thrown) };
  }
}
