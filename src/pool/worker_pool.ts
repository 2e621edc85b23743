/**
 * `WorkerPool`: the public face of a pool of Deno Web Workers fed through one
 * shared bounded queue. The engine is `_core.ts` and the parts it wires.
 *
 * @module
 */

import { PoolCore } from "./_core.ts";
import { mapTasks } from "./_map.ts";
import type {
  ExecuteSpec,
  MapOptions,
  PoolStats,
  TaskHandle,
  TaskSpec,
  TrySubmitResult,
  WorkerPoolOptions,
} from "./types.ts";

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
 * BigInt, a cycle) fail the call at once and queue nothing; a return value
 * that cannot be sent fails that task. Arguments and results larger than
 * `slotSize` travel by `postMessage` (copied once, same encoding) instead of
 * a slot.
 *
 * Options come last, as in the rest of taskpool (`map(task, inputs,
 * options)`); where a call takes its arguments as a rest list (`run`,
 * `submit`, `trySubmit`, `execute`), a task's own `signal` and `timeout` go
 * in its task-object form instead: `run({ name, args, signal, timeout })`,
 * `execute({ fn, args, signal, timeout })`.
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
  readonly #core: PoolCore;

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
    // Only the public options: the core's internal ones (PoolCore's doc)
    // cannot come in through an object a caller passes.
    this.#core = new PoolCore({
      ...options,
      signalAll: false,
      sleepMs: undefined,
      stuckMs: undefined,
    });
  }

  /** How many tasks wait in the queue at most. */
  get capacity(): number {
    return this.#core.capacity;
  }

  /** True once `close()` or `terminate()` was called: no new tasks are taken. */
  get closed(): boolean {
    return this.#core.status.state !== "open";
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
    return this.#core.stats();
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
    return this.#core.run(task, args) as Promise<R>;
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
   * await assert.rejects(pool.submit({ name: "nap", args: [1], signal }), { name: "TimeoutError" });
   * await Promise.all([running, queued.result]);
   * ```
   */
  async submit<R = unknown>(task: string | TaskSpec, ...args: unknown[]): Promise<TaskHandle<R>> {
    return await this.#core.enqueue(
      task,
      args,
      typeof task === "string" ? undefined : task,
    ) as TaskHandle<R>;
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
    if (this.#core.status.state !== "open") return { ok: false, reason: "closed" };
    const handle = this.#core.tryPush(task, args);
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
   * @param fn The function, or `{ fn, args, signal, timeout }` (see
   * {@linkcode ExecuteSpec}) to give it a signal or a timeout.
   * @param args Its arguments, when `fn` is the function.
   * @returns Its return value (awaited, when it is a promise).
   * @throws {TaskError} When it throws or rejects, or cannot be compiled (the promise rejects).
   * @throws {PoolClosedError} When the pool is closed.
   * @throws {TimeoutError} When its `timeout` ran out (the promise rejects).
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
   *
   * @example Stop a runaway loop
   * ```ts
   * import { TimeoutError, WorkerPool } from "@taskpool/taskpool";
   * import assert from "node:assert";
   *
   * await using pool = new WorkerPool({ workers: 1, abortGrace: 0 });
   * await assert.rejects(pool.execute({ fn: () => { while (true); }, timeout: 50 }), TimeoutError);
   * assert.strictEqual(await pool.execute(() => "a fresh worker"), "a fresh worker");
   * ```
   */
  execute<A extends unknown[], R>(
    fn: ((...args: A) => R) | ExecuteSpec<A, R>,
    ...args: A
  ): Promise<Awaited<R>> {
    try {
      const spec = fn !== null && typeof fn === "object" ? fn : undefined;
      const core = this.#core;
      // A TypeError for what is not a function comes before a closed pool's error.
      const index = core.functions.indexOfFunction(spec === undefined ? fn : spec.fn);
      return core.run(index, spec === undefined ? args : spec.args ?? [], spec) as Promise<
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
  map<R = unknown>(
    task: string | TaskSpec,
    inputs: Iterable<unknown> | AsyncIterable<unknown>,
    options: MapOptions = {},
  ): AsyncGenerator<R | Error, void, undefined> {
    return mapTasks<R>(this.#core, task, inputs, options);
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
    return this.#core.close();
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
    this.#core.terminate();
  }

  /** Closes the pool, draining it: `await using pool = new WorkerPool(…)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#core.close();
  }
}
