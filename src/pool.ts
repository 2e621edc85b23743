/**
 * A pool of Deno Web Workers fed through one shared bounded queue.
 *
 * @module
 */

import { PoolClosedError, TaskError } from "./errors.ts";
import { Encoder } from "./_codec.ts";
import { RECV_EPOCH, RECV_WAITERS, SEND_EPOCH, SENDERS } from "./_layout.ts";
import { createBuffer, EMPTY, OK, type Ring, ringFor, spinPop, waitAsync } from "./_ring.ts";
import { createTable, TableWriter } from "./_table.ts";
import {
  FORM_ARRAY,
  FORM_NONE,
  FORM_ONE,
  micros,
  OUTCOME_OK,
  type RemoteError,
  type StartMessage,
  statsBytes,
  statsFloatOffset,
  W_COMPLETED,
  W_FAILED,
  W_FLOATS,
  W_INTS,
  W_RUN_MS,
  W_STATE,
  W_WAIT_MS,
} from "./_protocol.ts";

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
}

/** A task named by its module and export, for {@linkcode WorkerPool.prototype.run}. */
export interface TaskSpec {
  /** The module: a URL, or a path relative to the current directory. Defaults to the pool's `module`. */
  module?: string | URL;
  /** The exported function to call. */
  name: string;
  /** The arguments. */
  args?: unknown[];
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

/** Options of the submitting calls that can wait for room. */
export interface SubmitOptions {
  /** Stops the wait for room: the call rejects with the signal's reason and nothing is queued. */
  signal?: AbortSignal;
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
  /** Resolves the submit; `undefined` once it was aborted. */
  accept: ((handle: TaskHandle<unknown>) => void) | undefined;
  refuse: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const DEFAULT_SLOT_SIZE = 4096;
/** Room for an error message that says what went wrong. */
const MIN_SLOT_SIZE = 256;
const MAX_WORKERS = 1024;
const MAX_CAPACITY = 1 << 20;
const MAX_SPIN = 10_000;
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
 * - **Lifetime.** An open pool keeps the program alive (its workers do), even
 *   when idle: close it. Once closed, it holds nothing: no worker, timer or
 *   pending wait.
 *
 * What crosses to a worker and back: numbers (raw), strings, `Uint8Array`s
 * (raw bytes, when it is the only argument or the result), `undefined` (as the
 * only argument or the result), and anything JSON carries; JSON's losses
 * apply (`Date` becomes a string, `Map` and `Set` become `{}`, `undefined` in an
 * array becomes `null`). Arguments that cannot be sent (a function, a
 * BigInt, a cycle, more than `slotSize` bytes) fail the call at once and queue
 * nothing; a return value that cannot be sent fails that task.
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
  readonly #workers: Worker[] = [];
  readonly #capacity: number;
  readonly #module: string | undefined;
  readonly #tasks: Ring;
  readonly #results: Ring;
  readonly #enc: Encoder;
  readonly #scratch: Uint8Array;
  readonly #table: TableWriter;
  readonly #counters: Int32Array;
  readonly #totals: Float64Array;
  readonly #epoch: number;
  readonly #spinMs: number;

  /** Function table indexes of the default module's exports, by name. */
  readonly #byName = new Map<string, number>();
  /** Function table indexes by `module#name`. */
  readonly #byExport = new Map<string, number>();
  /** Function table indexes of execute() functions. */
  readonly #bySource = new WeakMap<AnyFunction, number>();

  // Pending tasks, in arrays indexed by a recycled task id (no Map, no
  // per-task object but the promise).
  readonly #resolves: Array<((value: unknown) => void) | undefined> = [];
  readonly #rejects: Array<((error: unknown) => void) | undefined> = [];
  readonly #functionOf: number[] = [];
  readonly #freeIds: number[] = [];
  #nextId = 0;
  /** Tasks queued or running, whose promise has not settled. */
  #outstanding = 0;
  #pumping = false;

  /**
   * Tasks waiting for room in the ring, in call order. The result pump moves
   * them into the ring as workers free slots; their submit resolves then.
   */
  readonly #overflow: Waiting[] = [];
  #overflowHead = 0;
  /** Entries of `#overflow` not yet queued, refused or aborted. */
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
    const name = options.name ?? "taskpool";
    if (typeof name !== "string") {
      throw new TypeError(
        `Cannot create pool as 'name' must be a string: current value is ${String(name)}`,
      );
    }
    this.#module = options.module === undefined
      ? undefined
      : resolveModule(options.module, "Cannot create pool as 'module'");

    const tasks = createBuffer(this.#capacity, slotSize);
    // Results never wait on the main thread for long, but a worker must
    // never find the ring full while the main thread drains: make it roomy.
    const results = createBuffer(Math.max(64, 2 * (this.#capacity + workers)), slotSize);
    new Int32Array(results)[SENDERS] = workers;
    const table = createTable();
    const stats = new SharedArrayBuffer(statsBytes(workers));
    this.#tasks = ringFor(tasks);
    this.#results = ringFor(results);
    this.#enc = new Encoder(this.#tasks.slotBytes);
    this.#scratch = new Uint8Array(this.#results.slotBytes);
    this.#table = new TableWriter(table);
    this.#counters = new Int32Array(stats, 0, workers * W_INTS);
    this.#totals = new Float64Array(stats, statsFloatOffset(workers), workers * W_FLOATS);
    this.#epoch = performance.timeOrigin + performance.now();
    this.#spinMs = spin / 1000;

    for (let index = 0; index < workers; index++) {
      const worker = new Worker(WORKER_URL, {
        type: "module",
        name: `${name} worker ${index + 1}`,
      });
      const start: StartMessage = {
        kind: "start",
        index,
        workers,
        tasks,
        results,
        table,
        stats,
        epoch: this.#epoch,
        spin,
      };
      worker.postMessage(start);
      this.#workers.push(worker);
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
    const workers = this.#workers.length;
    let running = 0, completed = 0, failed = 0, waitTime = 0, runTime = 0;
    for (let w = 0; w < workers; w++) {
      const record = w * W_INTS;
      running += Atomics.load(this.#counters, record + W_STATE);
      completed += Atomics.load(this.#counters, record + W_COMPLETED);
      failed += Atomics.load(this.#counters, record + W_FAILED);
      waitTime += this.#totals[w * W_FLOATS + W_WAIT_MS];
      runTime += this.#totals[w * W_FLOATS + W_RUN_MS];
    }
    const alive = this.#terminated ? 0 : workers;
    return {
      workers: alive,
      idle: alive - (this.#terminated ? 0 : running),
      running: this.#terminated ? 0 : running,
      queued: this.#tasks.len(),
      completed,
      failed,
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
      const index = this.#indexOf(task);
      const form = this.#encodeArgs(task, args);
      const handle = this.#waitingCount() === 0 ? this.#push(index, form) : null;
      if (handle !== null) return handle.result as Promise<R>;
      return this.#waitForRoom<R>(index, form, undefined).then((h) => h.result);
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
    return this.submitWith<R>({}, task, ...args);
  }

  /**
   * {@linkcode WorkerPool.prototype.submit} with options: a `signal` that
   * gives up waiting for room (nothing is queued then).
   *
   * @param options The signal.
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
   * await using pool = new WorkerPool({ workers: 1, capacity: 1, spin: 0 });
   * const slow = pool.execute(() => new Promise((r) => setTimeout(r, 100)));
   * while (pool.stats.running === 0) await new Promise((r) => setTimeout(r, 1));
   * await pool.submit({ name: "unused", module: "data:text/javascript,export const unused = () => 0;" });
   * const signal = AbortSignal.timeout(10);
   * await assert.rejects(pool.submitWith({ signal }, { name: "unused", module: "data:text/javascript,export const unused = () => 0;" }));
   * await slow;
   * ```
   */
  async submitWith<R = unknown>(
    options: SubmitOptions,
    task: string | TaskSpec,
    ...args: unknown[]
  ): Promise<TaskHandle<R>> {
    const index = this.#indexOf(task);
    const form = this.#encodeArgs(task, args);
    const handle = this.#waitingCount() === 0 ? this.#push(index, form) : null;
    if (handle !== null) return handle as TaskHandle<R>;
    return await this.#waitForRoom<R>(index, form, options.signal);
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
    if (this.#waitingCount() !== 0) return { ok: false, reason: "full" }; // behind waiting submits
    const handle = this.#push(index, form);
    return handle === null
      ? { ok: false, reason: "full" }
      : { ok: true, handle: handle as TaskHandle<R> };
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
      const form = this.#encodeArgs("execute", args);
      const handle = this.#waitingCount() === 0 ? this.#push(index, form) : null;
      if (handle !== null) return handle.result as Promise<Awaited<R>>;
      return this.#waitForRoom<Awaited<R>>(index, form, undefined).then((h) => h.result);
    } catch (error) {
      return Promise.reject(error);
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
    this.#closing = (async () => {
      if (!this.#terminated && (this.#outstanding > 0 || this.#waitingCount() > 0)) {
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
    this.#state = "closed";
    const error = () => new PoolClosedError("The task did not finish: the pool was terminated");
    for (let id = 0; id < this.#nextId; id++) {
      const reject = this.#rejects[id];
      if (reject === undefined) continue;
      this.#resolves[id] = this.#rejects[id] = undefined;
      reject(error());
    }
    this.#outstanding = 0;
    this.#refuseWaiting(() => new PoolClosedError("Cannot submit a task: the pool was terminated"));
    this.#shutdown();
    // Wake waiting submits (they see the pool terminated) and the result pump.
    this.#tasks.wakeAll(SEND_EPOCH);
    this.#results.wakeAll(RECV_EPOCH);
    this.#idleCheck();
  }

  /** Closes the pool, draining it: `await using pool = new WorkerPool(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #shutdown(): void {
    this.#state = "closed";
    // Workers see the end of the task ring once it is drained; they are
    // idle by now, so terminating them loses nothing.
    Atomics.store(this.#tasks.i32, SENDERS, 0);
    this.#tasks.wakeAll(RECV_EPOCH);
    for (const worker of this.#workers) worker.terminate();
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
    const module = task.module === undefined
      ? this.#module
      : resolveModule(task.module, "The task's 'module'");
    if (module === undefined) {
      throw new TypeError(
        `Cannot run "${task.name}": name its module ({ module, name }) or give the pool a default module`,
      );
    }
    return this.#exportIndex(module, task.name);
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
  #push(index: number, form: number): TaskHandle<unknown> | null {
    const id = this.#freeIds.length > 0 ? this.#freeIds.pop()! : this.#nextId++;
    if (this.#tasks.push(this.#enc, id, (index << 2) | form, micros(this.#epoch)) !== OK) {
      this.#freeIds.push(id);
      return null;
    }
    this.#outstanding++;
    this.#functionOf[id] = index;
    const result = new Promise<unknown>((resolve, reject) => {
      this.#resolves[id] = resolve;
      this.#rejects[id] = reject;
    });
    this.#startPump();
    return { result };
  }

  #waitingCount(): number {
    return this.#waitingLive;
  }

  /**
   * Parks the encoded task behind earlier waiting ones; the result pump
   * queues it when a worker frees a slot. Resolves with its handle then.
   */
  #waitForRoom<R>(
    index: number,
    form: number,
    signal: AbortSignal | undefined,
  ): Promise<TaskHandle<R>> {
    signal?.throwIfAborted();
    const enc = this.#enc;
    enc.own(); // later submits reuse the encoder while this one waits
    return new Promise<TaskHandle<R>>((resolve, reject) => {
      const waiting: Waiting = {
        index,
        form,
        tag: enc.tag,
        len: enc.len,
        num: enc.num,
        bytes: enc.bytes,
        accept: resolve as (handle: TaskHandle<unknown>) => void,
        refuse: reject,
        signal,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        waiting.onAbort = () => {
          waiting.refuse(signal.reason);
          waiting.accept = undefined; // skipped by #flush
          this.#waitingLive--;
          this.#idleCheck();
        };
        signal.addEventListener("abort", waiting.onAbort, { once: true });
      }
      this.#overflow.push(waiting);
      this.#waitingLive++;
      this.#startPump();
    });
  }

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
        const handle = this.#push(waiting.index, waiting.form);
        if (handle === null) break;
        waiting.signal?.removeEventListener("abort", waiting.onAbort!);
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
      waiting.signal?.removeEventListener("abort", waiting.onAbort!);
      waiting.refuse(error());
    }
    this.#overflow.length = 0;
    this.#overflowHead = 0;
    this.#waitingLive = 0;
  }

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
    const take = () => this.#terminated ? null : ring.pop(scratch);
    try {
      for (;;) {
        let value;
        while ((value = ring.pop(scratch)) !== EMPTY) this.#settle(ring.aux0, ring.aux1, value);
        if (this.#waitingCount() > 0) this.#flush();
        if (this.#outstanding === 0 || this.#terminated) return;
        // Poll briefly before sleeping: being woken costs the main thread
        // tens of µs, the round trip of a short task is a few.
        if (this.#spinMs > 0) value = spinPop(ring, scratch, this.#spinMs);
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
          if (value === null) return; // terminated
        }
        this.#settle(ring.aux0, ring.aux1, value);
      }
    } finally {
      this.#pumping = false;
    }
  }

  #settle(id: number, outcome: number, value: unknown): void {
    const resolve = this.#resolves[id];
    const reject = this.#rejects[id];
    if (resolve === undefined || reject === undefined) return; // terminated meanwhile
    this.#resolves[id] = this.#rejects[id] = undefined;
    this.#freeIds.push(id);
    this.#outstanding--;
    if (outcome === OUTCOME_OK) resolve(value);
    else reject(this.#taskError(value as RemoteError, this.#functionOf[id]));
    if (this.#outstanding === 0) this.#idleCheck();
  }

  #idleCheck(): void {
    if (this.#onIdle !== null && this.#outstanding === 0 && this.#waitingCount() === 0) {
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
