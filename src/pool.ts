/**
 * A pool of Deno Web Workers fed through one shared bounded queue.
 *
 * @module
 */

import { PoolClosedError, TaskError, TimeoutError, WorkerCrashedError } from "./errors.ts";
import { decodeLarge, Encoder, TooLargeError } from "./channel/_codec.ts";
import { RECV_EPOCH, RECV_WAITERS, SENDERS } from "./channel/_layout.ts";
import { createBuffer } from "./channel/_buffer.ts";
import { EMPTY, OK, type Ring, ringFor } from "./channel/_ring.ts";
import { spinPop, waitAsync } from "./channel/_wait.ts";
import { createTable, TableWriter } from "./_table.ts";
import { type Sink, sinkAccess } from "./_sink.ts";
import {
  type AbortMessage,
  FORM_ARRAY,
  FORM_LARGE,
  FORM_NONE,
  FORM_ONE,
  type FromWorker,
  INDEX_SHIFT,
  micros,
  OUTCOME_LARGE,
  OUTCOME_OK,
  OUTCOME_SKIPPED,
  type ParcelMessage,
  type RemoteError,
  SIGNALLED,
  type StartMessage,
  statsBytes,
  statsFloatOffset,
  W_COMPLETED,
  W_FAILED,
  W_FLOATS,
  W_INTS,
  W_KILL,
  W_READY,
  W_RUN_MS,
  W_STATE,
  W_TASK,
  W_WAIT_MS,
  workerLock,
} from "./_protocol.ts";
import { ID_MASK, TICKET_SHIFT, ticketOf } from "./_protocol.ts";

/** Longest a burst of submits defers waking workers, µs (see `WorkerPool#push`). */
const BURST_US = 2000;

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /**
   * How many workers run tasks.
   *
   * @default {navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * How many tasks wait in the queue at most; submitting more waits for room.
   *
   * @default {workers * 2}
   */
  capacity?: number;
  /**
   * The module whose exported functions `run(name, ...args)` calls: a URL, or
   * a path relative to the current directory. Prefer
   * `new URL("./tasks.ts", import.meta.url)`.
   */
  module?: string | URL;
  /**
   * A name for the pool, shown in its workers' names.
   *
   * @default {"taskpool"}
   */
  name?: string;
  /**
   * Bytes a task's arguments or a result may take, encoded (see
   * {@linkcode WorkerPool} for the encoding); at least 256.
   *
   * @default {4096}
   */
  slotSize?: number;
  /**
   * Microseconds an idle worker polls the queue before it sleeps. Polling
   * turns a ~50 µs wake-up into ~1 µs when tasks come one at a time, at the
   * cost of a busy core for that long; it never pays when workers outnumber
   * cores.
   *
   * @default {50 when workers ≤ cores, else 0}
   */
  spin?: number;
  /**
   * Permissions of the workers (Deno's `Worker` option `deno.permissions`),
   * so that untrusted task code runs with less than the program has: for
   * instance `"none"`, or `{ read: ["./data"], net: false }`. Deno 2.9.6
   * needs the program run with `--unstable-worker-options` (or
   * `"unstable": ["worker-options"]` in deno.json) for this; without it the
   * constructor throws a `TypeError` saying so.
   *
   * @default {"inherit": the program's own permissions}
   */
  permissions?: Deno.PermissionOptions;
  /**
   * Default `timeout` of every task, in milliseconds (see {@linkcode TaskOptions}).
   *
   * @default {undefined: no timeout}
   */
  timeout?: number;
  /**
   * Milliseconds a running task whose timeout ran out (or whose signal
   * aborted) has to settle after its {@linkcode taskSignal} aborts, before its
   * worker is terminated and replaced. Its promise rejects at once either way.
   *
   * @default {100}
   */
  abortGrace?: number;
}

/** A task named by its module and export, for {@linkcode WorkerPool.prototype.run}. */
export interface TaskSpec {
  /** The module: a URL, or a path relative to the current directory. Defaults to the pool's `module`. */
  module?: string | URL;
  /** The exported function to call. */
  name: string;
  /** The arguments. */
  args?: unknown[];
  /** Cancels the task (see {@linkcode TaskOptions}). */
  signal?: AbortSignal;
  /** Milliseconds until the task is cancelled (see {@linkcode TaskOptions}). */
  timeout?: number;
}

/** A queued task: {@linkcode WorkerPool.prototype.submit} resolves with it once the queue took the task. */
export interface TaskHandle<R> {
  /** Settles with the task's outcome. */
  readonly result: Promise<R>;
}

/** The result of {@linkcode WorkerPool.prototype.trySubmit}. */
export type TrySubmitResult<R> =
  | { ok: true; handle: TaskHandle<R> }
  | { ok: false; reason: "full" | "closed" };

/**
 * Cancellation of one task. A task cancelled while it waits for room or in
 * the queue never runs. A running task gets the abort through
 * {@linkcode taskSignal} and `abortGrace` ms to settle; then its worker is
 * terminated and replaced (the only way to stop synchronous code). Either
 * way its promise rejects at once, with the signal's reason or a
 * {@linkcode TimeoutError}.
 */
export interface TaskOptions {
  /** Cancels the task when it aborts. */
  signal?: AbortSignal;
  /**
   * Milliseconds from the call until the task must have settled, queue wait
   * included (like `AbortSignal.timeout`). Overrides the pool's `timeout`.
   */
  timeout?: number;
}

/** Options of {@linkcode WorkerPool.prototype.map}. */
export interface MapOptions {
  /**
   * Yield results in input order (`true`), or as they finish (`false`).
   *
   * @default {true}
   */
  ordered?: boolean;
  /**
   * What a failed task does: `"throw"` ends the iteration with its error
   * (the tasks still queued are dropped); `"yield"` yields the error (a
   * {@linkcode TaskError}, {@linkcode TimeoutError}, …) in place of the result
   * and goes on. Task results never are `Error`s, so `instanceof Error` tells.
   *
   * @default {"throw"}
   */
  errors?: "throw" | "yield";
  /** Ends the iteration with the signal's reason; the tasks still queued are dropped. */
  signal?: AbortSignal;
  /** Milliseconds each task may take, as in {@linkcode TaskOptions} (a timer per task: costs some speed). */
  timeout?: number;
}

/** A snapshot of {@linkcode WorkerPool.prototype.stats}. */
export interface PoolStats {
  /** Workers in the pool. */
  workers: number;
  /** Workers waiting for a task. */
  idle: number;
  /** Workers running a task. */
  running: number;
  /** Tasks in the queue. */
  queued: number;
  /** Tasks that returned. */
  completed: number;
  /** Tasks that threw or rejected. */
  failed: number;
  /** Tasks cancelled (timeout or signal) before they settled. */
  cancelled: number;
  /** Tasks lost with a worker that died (each such worker was replaced). */
  crashed: number;
  /**
   * Workers the pool terminated to stop a task, that still run: Deno 2.9.6
   * cannot stop a worker stuck in synchronous code (denoland/deno#35657).
   * Each holds a CPU core and keeps the program from ending on its own;
   * `Deno.exit()` ends them.
   */
  stuck: number;
  /** Total milliseconds tasks waited in the queue. */
  waitTime: number;
  /** Total milliseconds tasks ran. */
  runTime: number;
}

/** A task waiting for room in the ring, encoded. */
interface Waiting {
  index: number;
  form: number;
  tag: number;
  len: number;
  num: number;
  bytes: Uint8Array;
  /** Resolves the submit; `undefined` once it was cancelled. */
  accept: ((handle: TaskHandle<unknown>) => void) | undefined;
  refuse: (error: unknown) => void;
  control: Control | undefined;
}

/** The cancellation state of a task that has a timeout or a signal. */
interface Control {
  /** The task id once queued, else -1. */
  id: number;
  /** While it waits for room. */
  waiting: Waiting | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** What #push returns for a map() task: it has no promise of its own. */
const SINK_HANDLE: TaskHandle<unknown> = { result: Promise.resolve() };

/**
 * The results of one map() run, by input position, in arrays indexed by
 * `seq % window` (a run has fewer tasks in flight than the pool has ids).
 */
class MapSink implements Sink {
  readonly #window: number;
  readonly #limit: number;
  readonly #ordered: boolean;
  readonly #values: unknown[] = [];
  /** 0: not here; 1: a value; 2: an error. */
  readonly #state: Uint8Array;
  /** Positions in the order they finished (for `ordered: false`). */
  readonly #arrived: number[] = [];
  #arrivedHead = 0;
  /** The next position to yield (for `ordered: true`). */
  #nextInOrder = 0;
  /** Results yielded so far. */
  taken = 0;
  #wake: (() => void) | null = null;

  constructor(window: number, limit: number, ordered: boolean) {
    this.#window = window;
    this.#limit = limit;
    this.#ordered = ordered;
    this.#state = new Uint8Array(window);
  }

  deliver(seq: number, ok: boolean, value: unknown): void {
    const at = seq % this.#window;
    this.#values[at] = value;
    this.#state[at] = ok ? 1 : 2;
    if (!this.#ordered) this.#arrived.push(seq);
    this.wakeUp();
  }

  /**
   * Whether position `seq` may be sent: no more than `limit` tasks may be
   * in flight or finished and not yet taken, so that a slow consumer slows
   * the inputs down (and results waiting for an earlier one stay few).
   */
  room(seq: number): boolean {
    return seq - this.taken < this.#limit;
  }

  /** The position of the next result to yield, or -1 if it is not here yet. */
  next(): number {
    if (this.#ordered) {
      return this.#state[this.#nextInOrder % this.#window] !== 0 ? this.#nextInOrder : -1;
    }
    return this.#arrivedHead < this.#arrived.length ? this.#arrived[this.#arrivedHead] : -1;
  }

  take(seq: number): { ok: boolean; value: unknown } {
    const at = seq % this.#window;
    const result = { ok: this.#state[at] === 1, value: this.#values[at] };
    this.#state[at] = 0;
    this.#values[at] = undefined;
    this.taken++;
    if (seq === this.#nextInOrder) this.#nextInOrder++;
    if (this.#arrivedHead < this.#arrived.length && this.#arrived[this.#arrivedHead] === seq) {
      this.#arrivedHead++;
      if (this.#arrivedHead === this.#arrived.length) this.#arrived.length = this.#arrivedHead = 0;
    }
    return result;
  }

  /** Resolves when a result arrives (or `wakeUp()` is called). */
  nextResult(): Promise<void> {
    return new Promise((resolve) => this.#wake = resolve);
  }

  wakeUp(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

/** One worker place of the pool; its worker is replaced when it dies. */
interface WorkerSlot {
  worker: Worker | null;
  /** Its stats record (a fresh one per worker, see `#abandon`). */
  record: number;
  /** Bumped per spawn; names the lock and tells stale events apart. */
  generation: number;
  /** It holds its lock and the pool watches it. */
  ready: boolean;
  /** Withdraws the pool's request for the worker's lock. */
  watch: AbortController | null;
  /** The last uncaught error it reported. */
  lastError: string | undefined;
  /** A task of its being stopped: the grace timer before termination. */
  stopping: { id: number; timer: ReturnType<typeof setTimeout> } | null;
  respawn: ReturnType<typeof setTimeout> | undefined;
  /** Tasks its record had finished when the worker started. */
  baseline: number;
  /** Workers of this slot in a row that died before finishing a task. */
  streak: number;
}

/**
 * A worker the pool terminated to stop a task, that may not be gone: Deno
 * 2.9.6 cannot stop a worker stuck in synchronous code (denoland/deno#35657).
 * Its record stays asking it to take no task until its lock says it is gone.
 */
interface Abandoned {
  worker: Worker;
  record: number;
  watch: AbortController;
}

/** Task id states. */
const FREE = 0;
/** Queued or running; its promise is unsettled. */
const PENDING = 1;

/** The Web Locks API (Deno implements it; its types do not declare it). */
const locks = (navigator as unknown as {
  locks: {
    request(
      name: string,
      options: { signal?: AbortSignal },
      callback: () => unknown,
    ): Promise<unknown>;
  };
}).locks;

const DEFAULT_SLOT_SIZE = 4096;
/** Room for an error message that says what went wrong. */
const MIN_SLOT_SIZE = 256;
const MAX_WORKERS = 1024;
const MAX_CAPACITY = 1 << 20;
const MAX_SPIN = 10_000;
const DEFAULT_ABORT_GRACE = 100;
/** Results a map() run may hold for its consumer beyond two queues' worth. */
const MAP_SLACK = 32;
/** First wait before replacing a worker that died before finishing a task; doubles each time. */
const RESPAWN_DELAY_MS = 50;
const MAX_RESPAWN_DELAY_MS = 5000;
const WORKER_URL = new URL("./_worker.ts", import.meta.url);

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

function checkInteger(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    const what = min === 1 ? "a positive integer" : `an integer from ${min}`;
    throw new RangeError(
      `Cannot create pool as '${name}' must be ${what} (at most ${max}): current value is ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value;
}

/** A module specifier as a URL string: URLs as they are, paths against the current directory. */
function resolveModule(module: string | URL, what: string): string {
  if (module instanceof URL) return module.href;
  if (typeof module !== "string" || module === "") {
    throw new TypeError(`${what} must be a URL or a path: current value is ${String(module)}`);
  }
  if (/^[a-z][a-z0-9+.-]+:/i.test(module)) return new URL(module).href;
  return new URL(module, `file://${Deno.cwd()}/`).href;
}

/**
 * A fixed set of Deno Web Workers that pull tasks from one shared bounded
 * queue, the thread pool of Rust's classic tutorials done for Deno.
 *
 * Tasks are functions exported by ES modules (`run`, `submit`), or
 * self-contained functions sent by their source (`execute`). Each returns a
 * promise of the task's outcome.
 *
 * Guarantees:
 * - **One shared queue.** Tasks wait in a SharedArrayBuffer ring of
 *   `capacity` slots; each idle worker takes the next one itself. Tasks start
 *   in the order they were queued (they may finish in any order).
 * - **Backpressure.** At most `capacity` tasks wait. `run`, `submit` and
 *   `execute` wait for room; `trySubmit` reports `"full"` instead. A loop that
 *   awaits `submit` keeps memory flat however many tasks it sends.
 * - **Errors stay with their task.** A task that throws or rejects rejects its
 *   own promise with a {@linkcode TaskError} (the worker's message and stack;
 *   the thrown value, rebuilt, as `cause`); its worker goes on serving.
 * - **Draining close.** `close()` (or `await using`) stops taking tasks, runs
 *   every queued task, waits for the running ones, then terminates the
 *   workers. `terminate()` stops at once and rejects what had not finished
 *   with a {@linkcode PoolClosedError}.
 * - **Faults cost one task.** A worker that dies is replaced; only the task it
 *   held rejects, with a {@linkcode WorkerCrashedError}. Nothing queued is lost
 *   or run twice. A worker dying before its first task again and again is
 *   replaced after a growing pause, not in a hot loop.
 * - **Cancellation.** `timeout` and `signal` (see {@linkcode TaskOptions})
 *   reject a task at once; a queued one never runs, a running one is asked
 *   through {@linkcode taskSignal} and its worker replaced after `abortGrace`.
 *   Deno 2.9.6 cannot stop a worker stuck in synchronous code
 *   (denoland/deno#35657): the pool replaces it and counts it in
 *   `stats.stuck` until it is gone.
 * - **Lifetime.** An open pool keeps the program alive (its workers do), even
 *   when idle: close it. Once closed, it holds nothing: no worker, timer or
 *   pending wait (but a stuck worker, see above, runs on until it is gone).
 *
 * What crosses to a worker and back: numbers (raw), strings, `Uint8Array`s
 * (raw bytes, when it is the only argument or the result), `undefined` (as the
 * only argument or the result), and anything JSON carries; JSON's losses
 * apply (`Date` becomes a string, `Map` and `Set` become `{}`, `undefined` in an
 * array becomes `null`). Arguments that cannot be sent (a function, a
 * BigInt, a cycle, more than `slotSize` bytes) fail the call at once and queue
 * nothing; a return value that cannot be sent fails that task. Arguments and
 * results larger than `slotSize` travel by `postMessage` (copied once, same
 * encoding) instead of a slot.
 *
 * @example Run exported functions
 * ```ts
 * import { WorkerPool } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const tasks = `export function add(a, b) { return a + b; }
 *                export async function later(x) { await new Promise((r) => setTimeout(r, 5)); return x; }`;
 * const module = `data:text/javascript,${encodeURIComponent(tasks)}`;
 * await using pool = new WorkerPool({ workers: 2, module });
 * assert.strictEqual(await pool.run("add", 2, 3), 5);
 * assert.deepStrictEqual(await Promise.all([1, 2, 3].map((x) => pool.run("later", x))), [1, 2, 3]);
 * ```
 */
export class WorkerPool implements AsyncDisposable {
  static {
    // The scheduler's way in (`_sink.ts`): tasks without a promise each.
    sinkAccess.push = (pool, task, sink, seq) => pool.#pushTo(task, sink, seq);
  }

  readonly #slots: WorkerSlot[] = [];
  readonly #name: string;
  readonly #capacity: number;
  readonly #module: string | undefined;
  readonly #tasks: Ring;
  readonly #results: Ring;
  readonly #enc: Encoder;
  readonly #scratch: Uint8Array;
  readonly #table: TableWriter;
  readonly #counters: Int32Array;
  readonly #totals: Float64Array;
  readonly #flags: Int32Array;
  readonly #idLimit: number;
  readonly #epoch: number;
  readonly #spinMs: number;
  readonly #timeout: number | undefined;
  readonly #abortGrace: number;
  readonly #poolId: string = crypto.randomUUID();
  readonly #start: Omit<StartMessage, "index" | "lock">;
  readonly #workerOptions: WorkerOptions;

  /** Function table indexes of the default module's exports, by name. */
  readonly #byName = new Map<string, number>();
  /** Function table indexes by `module#name`. */
  readonly #byExport = new Map<string, number>();
  /** Function table indexes by the module string of a spec, then the name. */
  readonly #bySpec = new Map<string, Map<string, number>>();
  /** Function table indexes of execute() functions. */
  readonly #bySource = new WeakMap<AnyFunction, number>();

  // Tasks, in arrays indexed by a recycled task id (no Map, and no per-task
  // object but the promise unless the task has a timeout or a signal).
  readonly #resolves: Array<((value: unknown) => void) | undefined> = [];
  readonly #rejects: Array<((error: unknown) => void) | undefined> = [];
  readonly #functionOf: number[] = [];
  readonly #controls: Array<Control | undefined> = [];
  /** The map() run a task belongs to, and its place in the input, instead of a promise. */
  readonly #sinks: Array<Sink | undefined> = [];
  /** map() runs that send inputs when the pump has drained results. */
  readonly #feeders = new Set<() => void>();
  /** The buffers of the map() runs going on (woken when the pool closes). */
  readonly #activeSinks = new Set<MapSink>();
  readonly #seqs: number[] = [];
  readonly #idState: number[] = [];
  /** The current ticket (id and generation) of each id; results of older ones are ignored. */
  readonly #tickets: number[] = [];
  readonly #freeIds: number[] = [];
  #nextId = 0;
  /** Tasks queued or running, whose promise has not settled. */
  #outstanding = 0;
  /** Stats records not in use. */
  readonly #freeRecords: number[] = [];
  /** Ids whose task is marked to be skipped, by id: its ticket until it comes back, else 0. */
  readonly #quarantined: number[] = [];
  /** Arguments too large for a slot, until a worker fetches them, by key. */
  readonly #parcels = new Map<number, ParcelMessage>();
  /** The parcel key of each pending id with large arguments, else 0. */
  readonly #parcelOf: number[] = [];
  #parcelKey = 0;
  /** Results too large for a slot: the value if it came first, `undefined` if its ring message did. */
  readonly #large = new Map<number, { value: unknown } | undefined>();
  /** Workers terminated to stop a task that may still be running. */
  readonly #abandoned = new Set<Abandoned>();
  #pumping = false;
  #cancelled = 0;
  #crashed = 0;

  /**
   * Tasks waiting for room in the ring, in call order. The result pump moves
   * them into the ring as workers free slots; their submit resolves then.
   */
  readonly #overflow: Waiting[] = [];
  #overflowHead = 0;
  /** Entries of `#overflow` not yet queued, refused or cancelled. */
  #waitingLive = 0;

  #state: "open" | "closing" | "closed" = "open";
  #terminated = false;
  #closing: Promise<void> | null = null;
  #onIdle: (() => void) | null = null;

  /**
   * Starts the workers.
   *
   * @param options Workers, queue capacity, default module, name, slot size, polling.
   * @throws {RangeError} When `workers`, `capacity`, `slotSize` or `spin` is out of range.
   * @throws {TypeError} When `module` or `name` is not a string or URL.
   *
   * @example A pool of two workers
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const pool = new WorkerPool({ workers: 2, capacity: 8 });
   * assert.strictEqual(pool.stats.workers, 2);
   * assert.strictEqual(await pool.execute((a: number) => a * 2, 21), 42);
   * await pool.close();
   * ```
   */
  constructor(options: WorkerPoolOptions = {}) {
    const cores = navigator.hardwareConcurrency || 1;
    const workers = checkInteger("workers", options.workers ?? cores, 1, MAX_WORKERS);
    this.#capacity = checkInteger("capacity", options.capacity ?? workers * 2, 1, MAX_CAPACITY);
    const slotSize = checkInteger(
      "slotSize",
      options.slotSize ?? DEFAULT_SLOT_SIZE,
      MIN_SLOT_SIZE,
      1 << 26,
    );
    const spin = options.spin ?? (workers <= cores ? 50 : 0);
    if (typeof spin !== "number" || !(spin >= 0 && spin <= MAX_SPIN)) {
      throw new RangeError(
        `Cannot create pool as 'spin' must be a number of microseconds from 0 to ${MAX_SPIN}: current value is ${
          String(spin)
        }`,
      );
    }
    this.#timeout = options.timeout === undefined
      ? undefined
      : checkMs("Cannot create pool as 'timeout'", options.timeout);
    this.#abortGrace = checkMs(
      "Cannot create pool as 'abortGrace'",
      options.abortGrace ?? DEFAULT_ABORT_GRACE,
    );
    const name = options.name ?? "taskpool";
    if (typeof name !== "string") {
      throw new TypeError(
        `Cannot create pool as 'name' must be a string: current value is ${String(name)}`,
      );
    }
    this.#name = name;
    this.#workerOptions = { type: "module" };
    if (options.permissions !== undefined && options.permissions !== "inherit") {
      if (!workerOptionsEnabled()) {
        throw new TypeError(
          'Cannot create pool with \'permissions\': Deno needs the --unstable-worker-options flag for worker permissions; run the program with `deno run --unstable-worker-options …` (or add "unstable": ["worker-options"] to deno.json)',
        );
      }
      Object.assign(this.#workerOptions, { deno: { permissions: options.permissions } });
    }
    this.#module = options.module === undefined
      ? undefined
      : resolveModule(options.module, "Cannot create pool as 'module'");

    const tasks = createBuffer(this.#capacity, slotSize);
    // A worker must never find the result ring full for long: make it roomy.
    const resultCapacity = Math.max(64, 2 * (this.#capacity + workers));
    const results = createBuffer(resultCapacity, slotSize);
    new Int32Array(results)[SENDERS] = workers;
    // Ids in use at once: queued + held by workers + results not yet read + spare.
    this.#idLimit = this.#capacity + 2 * workers + resultCapacity + 64;
    const flags = new SharedArrayBuffer(this.#idLimit * 4);
    const table = createTable();
    // Spare records: a terminated worker keeps its record until it is gone.
    const records = 2 * workers + 4;
    const stats = new SharedArrayBuffer(statsBytes(records));
    this.#tasks = ringFor(tasks);
    this.#results = ringFor(results);
    this.#enc = new Encoder(this.#tasks.slotBytes);
    this.#scratch = new Uint8Array(this.#results.slotBytes);
    this.#table = new TableWriter(table);
    this.#flags = new Int32Array(flags);
    this.#counters = new Int32Array(stats, 0, records * W_INTS);
    this.#totals = new Float64Array(stats, statsFloatOffset(records), records * W_FLOATS);
    for (let record = records - 1; record >= 0; record--) this.#freeRecords.push(record);
    this.#epoch = performance.timeOrigin + performance.now();
    this.#spinMs = spin / 1000;
    this.#start = {
      kind: "start",
      workers: records,
      tasks,
      results,
      table,
      stats,
      flags,
      epoch: this.#epoch,
      spin,
    };
    for (let index = 0; index < workers; index++) {
      this.#slots.push({
        worker: null,
        record: -1,
        generation: 0,
        ready: false,
        watch: null,
        lastError: undefined,
        stopping: null,
        respawn: undefined,
        baseline: 0,
        streak: 0,
      });
      this.#spawn(index);
    }
  }

  /** How many tasks wait in the queue at most. */
  get capacity(): number {
    return this.#capacity;
  }

  /** True once `close()` or `terminate()` was called: no new tasks are taken. */
  get closed(): boolean {
    return this.#state !== "open";
  }

  /**
   * Counters kept in shared memory by the workers, summed now.
   *
   * @example Watch the pool work
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await using pool = new WorkerPool({ workers: 1 });
   * await pool.execute(() => 1);
   * await pool.execute(() => Promise.reject(new Error("no"))).catch(() => {});
   * const stats = pool.stats;
   * assert.strictEqual(stats.completed, 1);
   * assert.strictEqual(stats.failed, 1);
   * assert.strictEqual(stats.queued, 0);
   * ```
   */
  get stats(): PoolStats {
    let workers = 0, running = 0, completed = 0, failed = 0, waitTime = 0, runTime = 0;
    for (const slot of this.#slots) {
      if (slot.worker === null) continue;
      workers++;
      running += Atomics.load(this.#counters, slot.record * W_INTS + W_STATE);
    }
    const records = this.#counters.length / W_INTS;
    for (let record = 0; record < records; record++) {
      completed += Atomics.load(this.#counters, record * W_INTS + W_COMPLETED);
      failed += Atomics.load(this.#counters, record * W_INTS + W_FAILED);
      waitTime += this.#totals[record * W_FLOATS + W_WAIT_MS];
      runTime += this.#totals[record * W_FLOATS + W_RUN_MS];
    }
    return {
      workers,
      idle: workers - running,
      running,
      queued: this.#tasks.len(),
      completed,
      failed,
      cancelled: this.#cancelled,
      crashed: this.#crashed,
      stuck: this.#abandoned.size,
      waitTime,
      runTime,
    };
  }

  /**
   * Runs an exported function of the pool's default module, or the task
   * `{ module, name, args }`, waiting for room in the queue if needed.
   *
   * @param task The export name (with `args` after it), or a {@linkcode TaskSpec}.
   * @param args The arguments, when `task` is a name.
   * @returns The task's return value (awaited, when it is a promise).
   * @throws {TaskError} When the task throws or rejects (the promise rejects).
   * @throws {PoolClosedError} When the pool is closed.
   * @throws {TypeError} When an argument cannot be sent, or no module is known.
   * @throws {RangeError} When the arguments are larger than a slot.
   *
   * @example Tasks from two modules in one pool
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const mod = (code: string) => `data:text/javascript,${encodeURIComponent(code)}`;
   * await using pool = new WorkerPool({ workers: 1, module: mod("export const twice = (x) => 2 * x;") });
   * assert.strictEqual(await pool.run("twice", 4), 8);
   * const upper = mod("export const upper = (s) => s.toUpperCase();");
   * assert.strictEqual(await pool.run({ module: upper, name: "upper", args: ["hi"] }), "HI");
   * ```
   */
  run<R = unknown>(task: string | TaskSpec, ...args: unknown[]): Promise<R> {
    try {
      const queued = this.#enqueue(task, args, typeof task === "string" ? undefined : task);
      return ("result" in queued ? queued.result : queued.then((h) => h.result)) as Promise<R>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Queues a task and resolves once the queue took it (waiting for room if
   * needed); the handle's `result` settles with the outcome. Use it to
   * produce tasks at the pool's pace.
   *
   * @param task The export name (with `args` after it), or a {@linkcode TaskSpec}.
   * @param args The arguments, when `task` is a name.
   * @returns A handle with the promise of the outcome.
   * @throws {PoolClosedError} When the pool is closed.
   * @throws {TypeError} When an argument cannot be sent, or no module is known.
   * @throws {RangeError} When the arguments are larger than a slot.
   *
   * @example Produce a million tasks with flat memory
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const module = `data:text/javascript,${encodeURIComponent("export const id = (x) => x;")}`;
   * await using pool = new WorkerPool({ workers: 2, module });
   * let sum = 0;
   * const results = [];
   * for (let i = 0; i < 1000; i++) {
   *   const handle = await pool.submit("id", i); // waits while the queue is full
   *   results.push(handle.result.then((x) => sum += x as number));
   * }
   * await Promise.all(results);
   * assert.strictEqual(sum, 499500);
   * ```
   */
  submit<R = unknown>(task: string | TaskSpec, ...args: unknown[]): Promise<TaskHandle<R>> {
    return this.submitWith<R>(typeof task === "string" ? {} : task, task, ...args);
  }

  /**
   * {@linkcode WorkerPool.prototype.submit} with {@linkcode TaskOptions}: a
   * `signal` and a `timeout` that cancel the task wherever it is (waiting for
   * room, queued, or running).
   *
   * @param options The signal and timeout.
   * @param task The export name (with `args` after it), or a {@linkcode TaskSpec}.
   * @param args The arguments, when `task` is a name.
   * @returns A handle with the promise of the outcome.
   * @throws {PoolClosedError} When the pool is closed.
   *
   * @example Give up waiting for room
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const module = `data:text/javascript,${encodeURIComponent("export const nap = (ms) => new Promise((r) => setTimeout(r, ms));")}`;
   * await using pool = new WorkerPool({ workers: 1, capacity: 1, module });
   * const running = pool.run("nap", 100);
   * while (pool.stats.running === 0) await new Promise((r) => setTimeout(r, 1));
   * const queued = await pool.submit("nap", 1); // the queue is full now
   * const signal = AbortSignal.timeout(10);
   * await assert.rejects(pool.submitWith({ signal }, "nap", 1), { name: "TimeoutError" });
   * await Promise.all([running, queued.result]);
   * ```
   */
  async submitWith<R = unknown>(
    options: TaskOptions,
    task: string | TaskSpec,
    ...args: unknown[]
  ): Promise<TaskHandle<R>> {
    return await this.#enqueue(task, args, options) as TaskHandle<R>;
  }

  /**
   * Queues a task if there is room now; never waits.
   *
   * @param task The export name (with `args` after it), or a {@linkcode TaskSpec}.
   * @param args The arguments, when `task` is a name.
   * @returns `{ ok: true, handle }`, or `{ ok: false, reason }` with `"full"`
   * or `"closed"`.
   * @throws {TypeError} When an argument cannot be sent, or no module is known.
   * @throws {RangeError} When the arguments are larger than a slot.
   *
   * @example Fill the queue
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const module = `data:text/javascript,${encodeURIComponent("export const nap = (ms) => new Promise((r) => setTimeout(r, ms));")}`;
   * await using pool = new WorkerPool({ workers: 1, capacity: 2, module });
   * const outcomes = [];
   * for (let i = 0; i < 10; i++) outcomes.push(pool.trySubmit("nap", 20));
   * assert(outcomes.some((o) => !o.ok && o.reason === "full"));
   * await Promise.all(outcomes.flatMap((o) => o.ok ? [o.handle.result] : []));
   * ```
   */
  trySubmit<R = unknown>(task: string | TaskSpec, ...args: unknown[]): TrySubmitResult<R> {
    if (this.#state !== "open") return { ok: false, reason: "closed" };
    const index = this.#indexOf(task);
    const form = this.#encodeArgs(task, args);
    if (this.#waitingLive !== 0) return { ok: false, reason: "full" }; // behind waiting submits
    const control = this.#controlFor(typeof task === "string" ? undefined : task);
    const handle = this.#push(index, form, control);
    if (handle === null) {
      if (control !== undefined) this.#releaseControl(control);
      return { ok: false, reason: "full" };
    }
    return { ok: true, handle: handle as TaskHandle<R> };
  }

  /**
   * Runs a self-contained function in a worker: the seeds' `execute(job)`.
   * The function travels as its source text, compiled once per worker and
   * cached (by function identity on this side), so it **cannot** use
   * variables from the scope it was written in, imports of its module, or
   * `this`; everything it needs comes through its arguments or dynamic
   * `import()` inside it. Native and bound functions have no usable source.
   *
   * @param fn The function.
   * @param args Its arguments.
   * @returns Its return value (awaited, when it is a promise).
   * @throws {TaskError} When it throws or rejects, or cannot be compiled (the promise rejects).
   * @throws {PoolClosedError} When the pool is closed.
   *
   * @example Run a closure-free function
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await using pool = new WorkerPool({ workers: 2 });
   * const square = (n: number) => n * n;
   * assert.deepStrictEqual(await Promise.all([1, 2, 3].map((n) => pool.execute(square, n))), [1, 4, 9]);
   * ```
   */
  execute<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): Promise<Awaited<R>> {
    return this.executeWith({}, fn, ...args);
  }

  /**
   * {@linkcode WorkerPool.prototype.execute} with {@linkcode TaskOptions}: a
   * `signal` and a `timeout` for the task.
   *
   * @param options The signal and timeout.
   * @param fn The function.
   * @param args Its arguments.
   * @returns Its return value (awaited, when it is a promise).
   * @throws {TimeoutError} When the timeout ran out (the promise rejects).
   *
   * @example Stop a runaway loop
   * ```ts
   * import { TimeoutError, WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await using pool = new WorkerPool({ workers: 1, abortGrace: 0 });
   * await assert.rejects(pool.executeWith({ timeout: 50 }, () => { while (true); }), TimeoutError);
   * assert.strictEqual(await pool.execute(() => "a fresh worker"), "a fresh worker");
   * ```
   */
  executeWith<A extends unknown[], R>(
    options: TaskOptions,
    fn: (...args: A) => R,
    ...args: A
  ): Promise<Awaited<R>> {
    try {
      if (typeof fn !== "function") {
        throw new TypeError(
          `Cannot execute: expected a function, got ${fn === null ? "null" : typeof fn}`,
        );
      }
      this.#checkOpen();
      let index = this.#bySource.get(fn);
      if (index === undefined) {
        index = this.#table.add({ kind: "source", source: Function.prototype.toString.call(fn) });
        this.#bySource.set(fn, index);
      }
      const queued = this.#enqueue(index, args, options);
      return ("result" in queued ? queued.result : queued.then((h) => h.result)) as Promise<
        Awaited<R>
      >;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs a task for each input of a stream and yields the results: the
   * streaming form of `Promise.all(inputs.map(run))`, with backpressure (it
   * pulls the next input only when the queue has room, so an endless or
   * slow source is fine) and no promise per task (faster than
   * `Promise.all` over `run`). Each input is the task's one argument.
   * Breaking out of the loop, an error (with `errors: "throw"`) or the
   * signal drops the tasks still queued; running ones finish unobserved.
   *
   * @typeParam R The task's result type.
   * @param task The export name of the pool's module, or `{ module, name }`.
   * @param inputs Any iterable or async iterable of arguments.
   * @param options Order, failure policy, signal, per-task timeout.
   * @returns An async iterable of results (or errors, with `errors: "yield"`).
   * @throws {TaskError} With `errors: "throw"`, the first failed task's error.
   * @throws {PoolClosedError} When the pool is closed.
   *
   * @example Square a stream of numbers
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const module = `data:text/javascript,${encodeURIComponent("export const square = (x) => x * x;")}`;
   * await using pool = new WorkerPool({ workers: 2, module });
   * const squares = [];
   * for await (const y of pool.map<number>("square", [1, 2, 3, 4])) squares.push(y);
   * assert.deepStrictEqual(squares, [1, 4, 9, 16]);
   * ```
   */
  async *map<R = unknown>(
    task: string | TaskSpec,
    inputs: Iterable<unknown> | AsyncIterable<unknown>,
    options: MapOptions = {},
  ): AsyncGenerator<R | Error, void, undefined> {
    const index = this.#indexOf(task);
    const ordered = options.ordered ?? true;
    const yieldErrors = (options.errors ?? "throw") === "yield";
    if (options.errors !== undefined && options.errors !== "throw" && options.errors !== "yield") {
      throw new TypeError(
        `Cannot map as 'errors' must be "throw" or "yield": current value is ${
          String(options.errors)
        }`,
      );
    }
    const { signal } = options;
    signal?.throwIfAborted();
    const perTask = options.timeout === undefined ? undefined : { timeout: options.timeout };
    // In flight plus finished-but-not-taken: enough to keep the queue full
    // while the consumer takes a batch, few enough to follow its pace.
    const limit = MAP_SLACK + 2 * (this.#capacity + this.#slots.length);
    const sink = new MapSink(this.#idLimit, limit, ordered);
    const onAbort = () => sink.wakeUp();
    signal?.addEventListener("abort", onAbort, { once: true });
    const asyncInputs = Symbol.asyncIterator in inputs;
    const source = asyncInputs
      ? (inputs as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (inputs as Iterable<unknown>)[Symbol.iterator]() as Iterator<unknown>;
    // Inputs pulled but not sent yet: prefetched from an async source, or one
    // that found no room.
    const ahead: unknown[] = [];
    let aheadHead = 0;
    let sent = 0;
    let exhausted = false;
    let failure: { error: unknown } | null = null;
    // Sends inputs while the queue has room. The result pump calls it after
    // every batch of results, so the workers never wait for this generator.
    const feed = () => {
      while (failure === null && this.#state === "open") {
        if (this.#tasks.len() >= this.#capacity || this.#waitingLive > 0 || !sink.room(sent)) {
          return;
        }
        let value: unknown;
        if (aheadHead < ahead.length) value = ahead[aheadHead];
        else if (asyncInputs || exhausted) return;
        else {
          const next = (source as Iterator<unknown>).next();
          if (next.done) {
            exhausted = true;
            return;
          }
          value = ahead[ahead.length] = next.value;
        }
        try {
          const form = this.#encodeArgs("map", [value]);
          const control = this.#controlFor(perTask);
          if (this.#push(index, form, control, sink, sent) === null) {
            if (control !== undefined) this.#releaseControl(control); // its timer must not linger
            return;
          }
        } catch (error) {
          failure = { error }; // thrown by the generator, not by the pump
          sink.wakeUp();
          return;
        }
        sent++;
        if (++aheadHead === ahead.length) ahead.length = aheadHead = 0;
      }
    };
    this.#feeders.add(feed);
    this.#activeSinks.add(sink);
    try {
      for (;;) {
        signal?.throwIfAborted();
        // Closed: yield what was sent, then end with PoolClosedError if
        // inputs remain (nothing new is sent).
        if (
          this.#state !== "open" && sink.taken === sent &&
          !(exhausted && aheadHead === ahead.length)
        ) {
          this.#checkOpen();
        }
        if (asyncInputs && !exhausted) {
          // Keep up to a queue's worth of inputs at hand for the pump.
          while (!exhausted && ahead.length - aheadHead < this.#capacity) {
            const next = await (source as AsyncIterator<unknown>).next();
            if (next.done) exhausted = true;
            else ahead.push(next.value);
          }
        }
        this.#refill();
        if (failure !== null) throw failure.error;
        // Yield every result that is ready, in order or as they came.
        let yielded = false;
        for (let seq = sink.next(); seq >= 0; seq = sink.next()) {
          const { ok, value } = sink.take(seq);
          yielded = true;
          if (!ok && !yieldErrors) throw value;
          yield value as R | Error;
        }
        if (exhausted && aheadHead === ahead.length && sink.taken === sent) return;
        if (!yielded) await sink.nextResult();
      }
    } finally {
      this.#feeders.delete(feed);
      this.#activeSinks.delete(sink);
      signal?.removeEventListener("abort", onAbort);
      this.#dropSink(sink);
      if (!exhausted) await (source as AsyncIterator<unknown>).return?.();
    }
  }

  /**
   * Stops taking tasks, runs every queued task, waits for the running ones,
   * then terminates the workers. Calling it again returns the same promise.
   *
   * @returns Resolves once the workers are gone.
   *
   * @example Drain on close
   * ```ts
   * import { WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const pool = new WorkerPool({ workers: 2 });
   * const results = [1, 2, 3].map((n) => pool.execute((x: number) => x + 1, n));
   * await pool.close(); // the three tasks still run
   * assert.deepStrictEqual(await Promise.all(results), [2, 3, 4]);
   * await pool.close();
   * ```
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.#state === "open") this.#state = "closing";
    // A map() waiting for room that will not come now ends with PoolClosedError.
    for (const sink of this.#activeSinks) sink.wakeUp();
    this.#closing = (async () => {
      if (!this.#terminated && (this.#outstanding > 0 || this.#waitingLive > 0)) {
        await new Promise<void>((resolve) => this.#onIdle = resolve);
      }
      this.#shutdown();
    })();
    return this.#closing;
  }

  /**
   * Stops at once: terminates the workers and rejects every task that had
   * not finished, and every submit still waiting, with a {@linkcode PoolClosedError}.
   *
   * @example Terminate with a task running
   * ```ts
   * import { PoolClosedError, WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * const pool = new WorkerPool({ workers: 1 });
   * const never = pool.execute(() => new Promise(() => {}));
   * pool.terminate();
   * await assert.rejects(never, PoolClosedError);
   * ```
   */
  terminate(): void {
    if (this.#terminated) return;
    this.#terminated = true;
    const error = () => new PoolClosedError("The task did not finish: the pool was terminated");
    for (let id = 0; id < this.#nextId; id++) {
      if (this.#idState[id] === PENDING) this.#settleEarly(id, error());
    }
    this.#refuseWaiting(() => new PoolClosedError("Cannot submit a task: the pool was terminated"));
    this.#shutdown();
    // Wake the result pump: it sees the pool terminated.
    this.#results.wakeAll(RECV_EPOCH);
    this.#idleCheck();
  }

  /** Closes the pool, draining it: `await using pool = new WorkerPool(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(): void {
    this.#state = "closed";
    for (const sink of this.#activeSinks) sink.wakeUp(); // they see the pool closed
    // Workers see the end of the task ring once it is drained; they are
    // idle by now, so terminating them loses nothing.
    Atomics.store(this.#tasks.i32, SENDERS, 0);
    this.#tasks.wakeAll(RECV_EPOCH);
    for (const slot of this.#slots) {
      slot.watch?.abort();
      slot.watch = null;
      if (slot.stopping !== null) clearTimeout(slot.stopping.timer);
      slot.stopping = null;
      clearTimeout(slot.respawn);
      slot.worker?.terminate();
      slot.worker = null;
    }
    for (const abandoned of this.#abandoned) abandoned.watch.abort();
  }

  #checkOpen(): void {
    if (this.#state !== "open") {
      throw new PoolClosedError(
        this.#terminated
          ? "Cannot submit a task: the pool was terminated"
          : "Cannot submit a task: the pool is closed (close() was called); create a new pool",
      );
    }
  }

  // -- Workers: spawn, watch, death, replacement --

  #spawn(index: number): void {
    const slot = this.#slots[index];
    const record = this.#freeRecords.pop();
    if (record === undefined) {
      // Every spare record belongs to a worker stuck in synchronous code.
      slot.respawn = setTimeout(() => this.#spawn(index), 1000);
      return;
    }
    const generation = ++slot.generation;
    const at = record * W_INTS;
    Atomics.store(this.#counters, at + W_TASK, -1);
    Atomics.store(this.#counters, at + W_KILL, 0);
    Atomics.store(this.#counters, at + W_STATE, 0);
    Atomics.store(this.#counters, at + W_READY, 0);
    const lock = workerLock(this.#poolId, record, generation);
    const worker = new Worker(WORKER_URL, {
      ...this.#workerOptions,
      name: `${this.#name} worker ${index + 1}`,
    });
    slot.worker = worker;
    slot.record = record;
    slot.ready = false;
    slot.lastError = undefined;
    slot.baseline = this.#finished(record);
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message?.kind === "fetch") {
        worker.postMessage(this.#parcels.get(message.key) ?? { kind: "parcel", key: message.key });
        this.#parcels.delete(message.key);
        return;
      }
      if (message?.kind === "result") {
        this.#largeResult(message.ticket, decodeLarge(message.tag, message.data));
        return;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault(); // the pool handles it; the program goes on
      if (slot.generation !== generation) return;
      slot.lastError = event.message || "an uncaught error";
      // Before it holds its lock (W_READY) no lock can tell us: treat it as dead now.
      if (!slot.ready) this.#onDeath(index, generation);
    };
    worker.postMessage({ ...this.#start, index: record, lock } satisfies StartMessage);
    // Once the worker holds its lock (it says so in shared memory), watch it:
    // being granted its lock means the worker is gone.
    const ready = Atomics.waitAsync(this.#counters, at + W_READY, 0);
    (ready.async ? ready.value : Promise.resolve()).then(() => {
      if (slot.generation !== generation || this.#state === "closed" || slot.worker !== worker) {
        return;
      }
      slot.ready = true;
      const watch = new AbortController();
      slot.watch = watch;
      locks.request(lock, { signal: watch.signal }, () => this.#onDeath(index, generation))
        .catch(() => {/* withdrawn: the pool closed, or the worker was abandoned */});
    });
  }

  /** The worker of slot `index` died on its own (its lock came free). */
  #onDeath(index: number, generation: number): void {
    const slot = this.#slots[index];
    if (slot.generation !== generation || this.#state === "closed" || slot.worker === null) return;
    const worker = slot.worker;
    slot.watch = null;
    // Let an error event that is on its way arrive first: it says why.
    setTimeout(() => {
      worker.terminate();
      if (slot.generation === generation && this.#state !== "closed") this.#replace(index);
    }, 0);
  }

  /** Settles what the dead worker held, then starts its replacement. */
  #replace(index: number): void {
    const slot = this.#slots[index];
    const at = slot.record * W_INTS;
    const held = Atomics.load(this.#counters, at + W_TASK);
    if (held >= 0) this.#release(held); // a cancelled task it held will not come back
    if (held >= 0 && this.#lost(slot.record, held)) {
      const id = held & ID_MASK;
      this.#crashed++;
      const task = this.#table.label(this.#functionOf[id]);
      const why = slot.lastError ??
        "it exited (self.close(), Deno.exit(), or the runtime ended it)";
      this.#settleEarly(
        id,
        new WorkerCrashedError(
          `Worker ${index + 1} of pool "${this.#name}" died while running ${task}: ${why}`,
          task,
        ),
      );
    }
    if (slot.stopping !== null) clearTimeout(slot.stopping.timer);
    slot.stopping = null;
    slot.worker = null;
    Atomics.store(this.#counters, at + W_STATE, 0);
    // A worker that died before finishing a single task, again and again
    // (say, a module whose loading kills every worker): back off instead of
    // respawning in a hot loop. One that served tasks is replaced at once.
    slot.streak = this.#finished(slot.record) > slot.baseline ? 0 : slot.streak + 1;
    const delay = slot.streak === 0
      ? 0
      : Math.min(MAX_RESPAWN_DELAY_MS, RESPAWN_DELAY_MS * 2 ** (slot.streak - 1));
    this.#freeRecords.push(slot.record); // it is gone: its record is free
    slot.respawn = setTimeout(() => {
      slot.respawn = undefined;
      if (this.#state !== "closed") this.#spawn(index);
    }, delay);
    this.#kick();
    this.#idleCheck();
  }

  /** Tasks the workers of stats record `record` have finished, all together. */
  #finished(record: number): number {
    return Atomics.load(this.#counters, record * W_INTS + W_COMPLETED) +
      Atomics.load(this.#counters, record * W_INTS + W_FAILED);
  }

  /**
   * Whether the task with `ticket`, the `W_TASK` of dead worker record
   * `record`, was lost with it: it is still pending, neither queued nor held
   * by a live worker, and no result of it is waiting (the order of the reads
   * is the protocol in `_protocol.ts`).
   */
  #lost(record: number, ticket: number): boolean {
    const id = ticket & ID_MASK;
    if (this.#idState[id] !== PENDING || this.#tickets[id] !== ticket) return false;
    if (this.#tasks.queuedAux0().includes(ticket)) return false;
    for (const slot of this.#slots) {
      if (slot.worker !== null && slot.record !== record) {
        if (Atomics.load(this.#counters, slot.record * W_INTS + W_TASK) === ticket) return false;
      }
    }
    this.#drain();
    return this.#idState[id] === PENDING && this.#tickets[id] === ticket;
  }

  /**
   * Gives up on slot `index`'s worker (to stop the task it runs) and starts
   * a replacement at once. The old one is terminated; if it is stuck in
   * synchronous code it goes on running (a Deno limitation), but its record
   * keeps it from taking tasks, and any result it sends has a stale ticket.
   */
  #abandon(index: number): void {
    const slot = this.#slots[index];
    const worker = slot.worker!;
    const record = slot.record;
    slot.watch?.abort(); // its lock now tells the abandoned entry, not the slot
    slot.watch = null;
    slot.worker = null;
    slot.stopping = null;
    worker.terminate();
    const abandoned: Abandoned = { worker, record, watch: new AbortController() };
    this.#abandoned.add(abandoned);
    const lock = workerLock(this.#poolId, record, slot.generation);
    locks.request(lock, { signal: abandoned.watch.signal }, () => {
      this.#abandoned.delete(abandoned);
      Atomics.store(this.#counters, record * W_INTS + W_STATE, 0);
      this.#freeRecords.push(record);
    }).catch(() => {/* the pool closed */});
    if (this.#state !== "closed") this.#spawn(index);
  }

  // -- Cancellation --

  /** The control of a task with a timeout or a signal; `undefined` (no cost) otherwise. */
  #controlFor(options: TaskOptions | undefined): Control | undefined {
    const timeout = options?.timeout === undefined
      ? this.#timeout
      : checkMs("Cannot run the task as 'timeout'", options.timeout);
    const signal = options?.signal;
    if (timeout === undefined && signal === undefined) return undefined;
    signal?.throwIfAborted();
    const control: Control = {
      id: -1,
      waiting: undefined,
      timer: undefined,
      signal,
      onAbort: undefined,
    };
    if (timeout !== undefined) {
      control.timer = setTimeout(
        () => this.#cancel(control, new TimeoutError(`The task timed out after ${timeout} ms`)),
        timeout,
      );
    }
    if (signal !== undefined) {
      control.onAbort = () => this.#cancel(control, signal.reason);
      signal.addEventListener("abort", control.onAbort, { once: true });
    }
    return control;
  }

  #releaseControl(control: Control): void {
    clearTimeout(control.timer);
    if (control.onAbort !== undefined) {
      control.signal!.removeEventListener("abort", control.onAbort);
    }
  }

  #cancel(control: Control, reason: unknown): void {
    const waiting = control.waiting;
    if (waiting !== undefined) {
      if (waiting.accept === undefined) return;
      waiting.accept = undefined; // #flush skips it
      this.#waitingLive--;
      this.#cancelled++;
      if (waiting.form === FORM_LARGE) this.#parcels.delete(waiting.num);
      this.#releaseControl(control);
      waiting.refuse(reason);
      this.#idleCheck();
      return;
    }
    const id = control.id;
    if (id < 0 || this.#idState[id] !== PENDING || this.#controls[id] !== control) return;
    const ticket = this.#tickets[id];
    this.#cancelled++;
    // A worker that claims it from now on skips it (see `_protocol.ts`).
    Atomics.store(this.#flags, id, ticket);
    this.#settleEarly(id, reason);
    for (let w = 0; w < this.#slots.length; w++) {
      const slot = this.#slots[w];
      if (
        slot.worker !== null &&
        Atomics.load(this.#counters, slot.record * W_INTS + W_TASK) === ticket
      ) {
        this.#stop(w, ticket, reason);
        break;
      }
    }
    this.#kick();
    this.#idleCheck();
  }

  /** Stops the task `ticket` running on slot `w`: its signal first, a new worker after the grace. */
  #stop(w: number, ticket: number, reason: unknown): void {
    const slot = this.#slots[w];
    const at = slot.record * W_INTS;
    if (slot.worker === null || slot.stopping !== null) return;
    Atomics.store(this.#counters, at + W_KILL, 1);
    if (Atomics.load(this.#counters, at + W_TASK) !== ticket) {
      this.#resume(slot.record); // it finished, or took another task: nothing to stop
      return;
    }
    const error = reason instanceof Error ? reason : new Error(String(reason));
    slot.worker.postMessage(
      {
        kind: "abort",
        id: ticket,
        name: error.name,
        message: error.message,
      } satisfies AbortMessage,
    );
    const generation = slot.generation;
    slot.stopping = {
      id: ticket,
      timer: setTimeout(() => {
        if (slot.generation !== generation || slot.worker === null) return;
        slot.stopping = null;
        if (Atomics.load(this.#counters, at + W_TASK) === ticket) {
          this.#release(ticket); // any result it sends is stale now
          this.#abandon(w);
        } else this.#resume(slot.record); // it stopped in time
      }, this.#abortGrace),
    };
  }

  /** Lets the worker of stats record `record` take tasks again. */
  #resume(record: number): void {
    const at = record * W_INTS + W_KILL;
    Atomics.store(this.#counters, at, 0);
    Atomics.notify(this.#counters, at);
  }

  // -- Queueing --

  /** Queues a task: its handle now, or a promise of it once there is room. */
  #enqueue(
    task: string | TaskSpec | number,
    args: unknown[],
    options: TaskOptions | undefined,
  ): TaskHandle<unknown> | Promise<TaskHandle<unknown>> {
    const index = typeof task === "number" ? task : this.#indexOf(task);
    const form = this.#encodeArgs(typeof task === "number" ? "execute" : task, args);
    const control = this.#controlFor(options);
    if (this.#waitingLive === 0) {
      const handle = this.#push(index, form, control);
      if (handle !== null) return handle;
    }
    return this.#waitForRoom(index, form, control);
  }

  /** Queues a task whose outcome goes to `sink` if it fits now (see `_sink.ts`). */
  #pushTo(task: TaskSpec, sink: Sink, seq: number): boolean {
    const index = this.#indexOf(task);
    if (this.#waitingLive > 0) return false; // after the submits waiting for room
    const control = this.#controlFor(task);
    let form;
    try {
      form = this.#encodeArgs(task, task.args ?? []);
    } catch (error) {
      if (control !== undefined) this.#releaseControl(control);
      throw error;
    }
    if (this.#push(index, form, control, sink, seq) !== null) return true;
    // Nothing may linger for a task that was not queued: its timer, and
    // arguments too large for a slot, kept for the worker to fetch.
    if (control !== undefined) this.#releaseControl(control);
    if (form === FORM_LARGE) this.#parcels.delete(this.#enc.num);
    return false;
  }

  /** The function table index of a task, adding it on first use. */
  #indexOf(task: string | TaskSpec): number {
    this.#checkOpen();
    if (typeof task === "string") {
      const known = this.#byName.get(task);
      if (known !== undefined) return known;
      if (this.#module === undefined) {
        throw new TypeError(
          `Cannot run "${task}": the pool has no default module; pass { module } to new WorkerPool(), or run({ module, name, args })`,
        );
      }
      const index = this.#exportIndex(this.#module, task);
      this.#byName.set(task, index);
      return index;
    }
    if (
      task === null || typeof task !== "object" || typeof task.name !== "string" || task.name === ""
    ) {
      throw new TypeError(
        `Cannot run the task: expected an export name or { module, name, args }, got ${
          task === null ? "null" : typeof task
        }`,
      );
    }
    // Specs name the same module the same way again and again: look the
    // string up before resolving it (a URL parse per task shows in profiles).
    if (typeof task.module === "string") {
      const known = this.#bySpec.get(task.module)?.get(task.name);
      if (known !== undefined) return known;
    }
    const module = task.module === undefined
      ? this.#module
      : resolveModule(task.module, "The task's 'module'");
    if (module === undefined) {
      throw new TypeError(
        `Cannot run "${task.name}": name its module ({ module, name }) or give the pool a default module`,
      );
    }
    const index = this.#exportIndex(module, task.name);
    if (typeof task.module === "string") {
      let names = this.#bySpec.get(task.module);
      if (names === undefined) this.#bySpec.set(task.module, names = new Map());
      names.set(task.name, index);
    }
    return index;
  }

  #exportIndex(module: string, name: string): number {
    const key = `${module}#${name}`;
    let index = this.#byExport.get(key);
    if (index === undefined) {
      index = this.#table.add({ kind: "export", module, name });
      this.#byExport.set(key, index);
    }
    return index;
  }

  /** Encodes the arguments into the encoder; returns their form. */
  #encodeArgs(task: string | TaskSpec, args: unknown[]): number {
    const list = typeof task === "string" ? args : task.args ?? [];
    if (!Array.isArray(list)) throw new TypeError("Cannot run the task: 'args' must be an array");
    try {
      if (list.length === 0) {
        this.#enc.encode(undefined);
        return FORM_NONE;
      }
      if (list.length === 1) {
        this.#enc.encode(list[0]);
        return FORM_ONE;
      }
      this.#enc.encode(list);
      return FORM_ARRAY;
    } catch (error) {
      if (error instanceof TooLargeError) {
        // Too large for a slot: the worker fetches it by postMessage (a copy,
        // in the same encoding); the slot carries the key.
        const key = ++this.#parcelKey;
        const form = list.length === 1 ? FORM_ONE : FORM_ARRAY;
        this.#parcels.set(key, { kind: "parcel", key, form, tag: error.tag, data: error.data });
        this.#enc.encode(key);
        return FORM_LARGE;
      }
      const reason = (error as Error).message.replace(/^Cannot send (the value|a)/, "it is");
      const Kind = error instanceof RangeError ? RangeError : TypeError;
      throw new Kind(
        `Cannot send the task's arguments: ${
          reason.replace("syncChannel(capacity, { slotSize", "new WorkerPool({ slotSize")
        }`,
        { cause: error },
      );
    }
  }

  /** Queues the encoded task if there is room; its handle, or `null` when full. */
  #push(
    index: number,
    form: number,
    control: Control | undefined,
    sink?: Sink,
    seq = 0,
  ): TaskHandle<unknown> | null {
    let id: number;
    if (this.#freeIds.length > 0) id = this.#freeIds.pop()!;
    else if (this.#nextId < this.#idLimit) id = this.#nextId++;
    else return null;
    const aux1 = (index << INDEX_SHIFT) | (control === undefined ? 0 : SIGNALLED) | form;
    const ticket = this.#tickets[id] ?? (this.#tickets[id] = ticketOf(id, 1));
    const tasks = this.#tasks;
    const now = micros(this.#epoch);
    // A burst that has lasted a while (a loop that prepares each task in
    // this turn) wakes its workers now: they would sleep until the turn ends.
    if (tasks.batching && now - this.#burstStart > BURST_US) tasks.endBatch();
    if (tasks.push(this.#enc, ticket, aux1, now) !== OK) {
      this.#freeIds.push(id);
      return null;
    }
    if (!tasks.batching) {
      // The first task of a burst woke a sleeping worker at once; the rest
      // of the burst wakes them once, at the end of this turn (a notify per
      // task costs a system call each, while woken workers are still on
      // their way and the waiters count still says they sleep).
      tasks.beginBatch();
      this.#burstStart = now;
      if (!this.#burstQueued) {
        this.#burstQueued = true;
        queueMicrotask(this.#endBurst);
      }
    }
    this.#outstanding++;
    this.#idState[id] = PENDING;
    this.#parcelOf[id] = form === FORM_LARGE ? this.#enc.num : 0;
    this.#functionOf[id] = index;
    this.#controls[id] = control;
    if (control !== undefined) {
      control.id = id;
      control.waiting = undefined;
    }
    this.#startPump();
    if (sink !== undefined) {
      // map(): no promise per task; the result goes to the run's buffer.
      this.#sinks[id] = sink;
      this.#seqs[id] = seq;
      return SINK_HANDLE;
    }
    const result = new Promise<unknown>((resolve, reject) => {
      this.#resolves[id] = resolve;
      this.#rejects[id] = reject;
    });
    return { result };
  }

  /**
   * Parks the encoded task behind earlier waiting ones; the result pump
   * queues it when a worker frees a slot. Resolves with its handle then.
   */
  #waitForRoom(
    index: number,
    form: number,
    control: Control | undefined,
  ): Promise<TaskHandle<unknown>> {
    const enc = this.#enc;
    enc.own(); // later submits reuse the encoder while this one waits
    return new Promise<TaskHandle<unknown>>((resolve, reject) => {
      const waiting: Waiting = {
        index,
        form,
        tag: enc.tag,
        len: enc.len,
        num: enc.num,
        bytes: enc.bytes,
        accept: resolve,
        refuse: reject,
        control,
      };
      if (control !== undefined) control.waiting = waiting;
      this.#overflow.push(waiting);
      this.#waitingLive++;
      this.#startPump();
    });
  }

  /** Wakes workers for the tasks of a burst of submits (see `#push`), if it is still open. */
  readonly #endBurst = (): void => {
    this.#burstQueued = false;
    if (this.#tasks.batching) this.#tasks.endBatch();
  };
  /** When the open burst began, µs since the pool's epoch. */
  #burstStart = 0;
  /** A microtask to end the burst is queued. */
  #burstQueued = false;

  /** Moves waiting tasks into the ring while it has room. */
  #flush(): void {
    const overflow = this.#overflow;
    const enc = this.#enc;
    while (this.#overflowHead < overflow.length) {
      const waiting = overflow[this.#overflowHead];
      if (waiting.accept !== undefined) {
        enc.tag = waiting.tag,
          enc.len = waiting.len,
          enc.num = waiting.num,
          enc.bytes = waiting.bytes;
        const handle = this.#push(waiting.index, waiting.form, waiting.control);
        if (handle === null) break;
        this.#waitingLive--;
        waiting.accept(handle);
      }
      overflow[this.#overflowHead++] = undefined!;
    }
    if (this.#overflowHead === overflow.length) {
      overflow.length = 0;
      this.#overflowHead = 0;
    } else if (this.#overflowHead > 1024 && this.#overflowHead * 2 > overflow.length) {
      overflow.splice(0, this.#overflowHead);
      this.#overflowHead = 0;
    }
  }

  /** Rejects every waiting task (terminate). */
  #refuseWaiting(error: () => Error): void {
    for (let i = this.#overflowHead; i < this.#overflow.length; i++) {
      const waiting = this.#overflow[i];
      if (waiting.accept === undefined) continue;
      if (waiting.control !== undefined) this.#releaseControl(waiting.control);
      if (waiting.form === FORM_LARGE) this.#parcels.delete(waiting.num);
      waiting.refuse(error());
    }
    this.#overflow.length = 0;
    this.#overflowHead = 0;
    this.#waitingLive = 0;
  }

  // -- Results --

  #startPump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    // Not now: the caller may be queueing many tasks in a loop.
    queueMicrotask(() => void this.#pump());
  }

  /**
   * Settles results as workers push them: every ready result per wake-up,
   * and it sleeps only while tasks are outstanding and none is ready.
   */
  async #pump(): Promise<void> {
    const ring = this.#results;
    const scratch = this.#scratch;
    // Waiting submits count too: only the pump moves them into the ring.
    const busy = () => !this.#terminated && (this.#outstanding > 0 || this.#waitingLive > 0);
    // null: back to the loop's top (nothing to wait for, or waiting submits
    // that now fit in the ring); else a result, or EMPTY to go on waiting.
    const take = () => {
      if (!busy()) return null;
      if (this.#waitingLive > 0 && this.#tasks.len() < this.#capacity) return null;
      return ring.pop(scratch);
    };
    let settled = false;
    try {
      for (;;) {
        settled = this.#drain() > 0 || settled;
        this.#refill();
        if (this.#feeders.size > 0) {
          // map() consumers run in microtasks: let them take what arrived
          // (and their generators send more) before this loop polls again.
          await null;
          this.#refill();
        } else if (settled) {
          // Settled promises continue in microtasks: let them run (and queue
          // their next tasks) before this loop polls, or the workers would
          // wait on a main thread that spins. The tasks they queue wake the
          // workers once, together, when they are done (or 2 ms on, see
          // `#push`).
          settled = false;
          const tasks = this.#tasks;
          const opened = !tasks.batching;
          if (opened) {
            tasks.beginBatch();
            this.#burstStart = micros(this.#epoch);
          }
          await null;
          if (opened && tasks.batching) tasks.endBatch();
          continue;
        }
        settled = false;
        if (!busy()) return;
        this.#endBurst(); // workers must not sleep on tasks queued while this thread polls
        // Poll briefly before sleeping: being woken costs the main thread
        // tens of µs, the round trip of a short task is a few.
        let value = this.#spinMs > 0 ? spinPop(ring, scratch, this.#spinMs) : EMPTY;
        if (value === EMPTY) {
          value = await waitAsync(
            ring,
            RECV_EPOCH,
            RECV_WAITERS,
            EMPTY,
            take,
            {},
            "receive a result",
          );
          if (value === null) continue; // the loop's top decides
        }
        this.#settle(ring.aux0, ring.aux1, value);
        settled = true;
      }
    } finally {
      this.#pumping = false;
    }
  }

  /** Queues waiting tasks and map() inputs while there is room, waking workers once for all. */
  #refill(): void {
    if (this.#waitingLive === 0 && this.#feeders.size === 0) return;
    this.#tasks.beginBatch();
    this.#burstStart = Infinity; // this batch ends below, however long it takes
    try {
      if (this.#waitingLive > 0) this.#flush();
      for (const feed of this.#feeders) feed();
    } finally {
      this.#tasks.endBatch();
    }
  }

  /** Settles every result that is ready now; returns how many. */
  #drain(): number {
    const ring = this.#results;
    let value;
    let count = 0;
    while ((value = ring.pop(this.#scratch)) !== EMPTY) {
      this.#settle(ring.aux0, ring.aux1, value);
      count++;
    }
    return count;
  }

  #settle(ticket: number, outcome: number, value: unknown): void {
    const id = ticket & ID_MASK;
    // A stale ticket: the task was cancelled or lost, and its id moved on.
    if (this.#idState[id] !== PENDING || this.#tickets[id] !== ticket) {
      this.#stopped(ticket);
      this.#release(ticket);
      return;
    }
    if (outcome === OUTCOME_LARGE) {
      const arrived = this.#large.get(ticket);
      if (arrived === undefined) {
        this.#large.set(ticket, undefined); // its value is on its way by postMessage
        return;
      }
      this.#large.delete(ticket);
      value = arrived.value;
    }
    const sink = this.#sinks[id];
    if (sink !== undefined) {
      const seq = this.#seqs[id];
      const control = this.#controls[id];
      this.#free(id);
      if (control !== undefined) this.#releaseControl(control);
      if (outcome === OUTCOME_OK || outcome === OUTCOME_LARGE) sink.deliver(seq, true, value);
      else if (outcome === OUTCOME_SKIPPED) {
        sink.deliver(seq, false, new PoolClosedError("The task was skipped"));
      } else sink.deliver(seq, false, this.#taskError(value as RemoteError, this.#functionOf[id]));
      if (this.#outstanding === 0) this.#idleCheck();
      return;
    }
    const resolve = this.#resolves[id]!;
    const reject = this.#rejects[id]!;
    const control = this.#controls[id];
    this.#free(id);
    if (control !== undefined) this.#releaseControl(control);
    if (outcome === OUTCOME_OK || outcome === OUTCOME_LARGE) resolve(value);
    else if (outcome === OUTCOME_SKIPPED) reject(new PoolClosedError("The task was skipped"));
    else reject(this.#taskError(value as RemoteError, this.#functionOf[id]));
    if (this.#outstanding === 0) this.#idleCheck();
  }

  /** The value of a result too large for a slot arrived by postMessage. */
  #largeResult(ticket: number, value: unknown): void {
    const id = ticket & ID_MASK;
    if (this.#idState[id] !== PENDING || this.#tickets[id] !== ticket) return; // cancelled meanwhile
    if (this.#large.has(ticket)) {
      this.#large.delete(ticket);
      this.#settle(ticket, OUTCOME_OK, value);
    } else {
      this.#large.set(ticket, { value });
    }
  }

  /** A cancelled task came back (skipped, or stopped within its grace): its worker may go on. */
  #stopped(ticket: number): void {
    for (const slot of this.#slots) {
      if (slot.stopping?.id === ticket) {
        clearTimeout(slot.stopping.timer);
        slot.stopping = null;
        this.#resume(slot.record);
      }
    }
  }

  /** Rejects a pending task before its result came (cancelled, lost, terminated). */
  #settleEarly(id: number, reason: unknown): void {
    const reject = this.#rejects[id];
    const sink = this.#sinks[id];
    const seq = this.#seqs[id];
    const control = this.#controls[id];
    this.#free(id);
    if (control !== undefined) this.#releaseControl(control);
    if (sink !== undefined) sink.deliver(seq, false, reason);
    else reject!(reason);
  }

  /** A map() run ended early: its queued tasks are skipped, its running ones finish unobserved. */
  #dropSink(sink: MapSink): void {
    for (let id = 0; id < this.#nextId; id++) {
      if (this.#sinks[id] !== sink || this.#idState[id] !== PENDING) continue;
      Atomics.store(this.#flags, id, this.#tickets[id]); // a worker that claims it skips it
      const control = this.#controls[id];
      this.#free(id);
      if (control !== undefined) this.#releaseControl(control);
    }
    this.#idleCheck();
  }

  /** Frees id `id` under a new ticket, so that a late result of the old one is ignored. */
  #free(id: number): void {
    const parcel = this.#parcelOf[id];
    if (parcel !== 0) {
      this.#parcels.delete(parcel); // not fetched: the task was cancelled or lost
      this.#parcelOf[id] = 0;
    }
    this.#resolves[id] =
      this.#rejects[id] =
      this.#controls[id] =
      this.#sinks[id] =
        undefined;
    this.#idState[id] = FREE;
    const ticket = this.#tickets[id];
    this.#large.delete(ticket); // a large result of a task settled early is not wanted
    this.#tickets[id] = ticketOf(id, (ticket >>> TICKET_SHIFT) + 1);
    // A task marked to be skipped keeps its id (and so its skip mark) until
    // it comes back, or the id's next task could overwrite the mark.
    if (Atomics.load(this.#flags, id) === ticket) this.#quarantined[id] = ticket;
    else this.#freeIds.push(id);
    this.#outstanding--;
  }

  /** The task `ticket` marked to be skipped came back (or never will): its id is free again. */
  #release(ticket: number): void {
    const id = ticket & ID_MASK;
    if (this.#quarantined[id] !== ticket) return;
    this.#quarantined[id] = 0;
    Atomics.store(this.#flags, id, 0);
    this.#freeIds.push(id);
  }

  /** Wakes the result pump (or starts it) so that it looks again: ids came back, room appeared. */
  #kick(): void {
    if (this.#pumping) this.#results.wakeAll(RECV_EPOCH);
    else if (this.#waitingLive > 0 && !this.#terminated) this.#startPump();
  }

  #idleCheck(): void {
    if (this.#onIdle !== null && this.#outstanding === 0 && this.#waitingLive === 0) {
      const onIdle = this.#onIdle;
      this.#onIdle = null;
      onIdle();
    }
  }

  #taskError(remote: RemoteError, index: number): TaskError {
    const task = this.#table.label(index);
    const cause = rebuild(remote);
    const message = remote.error
      ? remote.message ?? ""
      : `The task threw a non-Error value: ${describe(remote.value)}`;
    return new TaskError(message, { cause, stack: remote.stack, task });
  }
}

/**
 * Whether this program may give workers their own permissions. Deno ends the
 * process (it does not throw) when a worker asks for them without the flag,
 * so look first: the command line, then a deno.json from here upwards.
 */
function workerOptionsEnabled(): boolean {
  try {
    const args = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    if (args.some((arg) => arg === "--unstable-worker-options" || arg === "--unstable")) {
      return true;
    }
  } catch {
    // not Linux, or no read permission: look at the config
  }
  try {
    let dir = Deno.cwd();
    for (;;) {
      for (const name of ["deno.json", "deno.jsonc"]) {
        try {
          if (/"worker-options"/.test(Deno.readTextFileSync(`${dir}/${name}`))) return true;
        } catch {
          // no such file here
        }
      }
      const parent = dir.replace(/\/[^/]*$/, "");
      if (parent === dir || parent === "") return false;
      dir = parent;
    }
  } catch {
    return false;
  }
}

/** A duration in milliseconds: a non-negative finite number. */
function checkMs(what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(
      `${what} must be a non-negative number of milliseconds: current value is ${
        typeof value === "string" ? JSON.stringify(value) : String(value)
      }`,
    );
  }
  return value;
}

/** The thrown value, rebuilt from its remote form. */
function rebuild(remote: RemoteError): unknown {
  if (!remote.error) return remote.value;
  const error = new Error(
    remote.message ?? "",
    remote.cause === undefined ? undefined : { cause: rebuild(remote.cause) },
  );
  error.name = remote.name ?? "Error";
  if (remote.stack !== undefined) error.stack = remote.stack;
  return error;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
