/**
 * The public types of the worker pool: its options, the task-object forms,
 * handles and results, and its stats.
 *
 * @module
 */

/** Options of {@linkcode WorkerPool}. */
export interface WorkerPoolOptions {
  /**
   * How many workers run tasks.
   *
   * @default {navigator.hardwareConcurrency}
   */
  workers?: number;
  /**
   * How many tasks wait in the queue at most; submitting more waits for room
   * (backpressure: a loop that awaits `submit` holds at most this many).
   *
   * The default is deep on purpose: workers take tasks in large batches and
   * never starve between the main thread's turns. With a queue of a few
   * tasks, each batch costs workers a wake-up (tens of µs), and throughput
   * could drop tenfold by chance (measured: 26–41k tasks/s against 400k+).
   * Memory: the queue is a ring of `capacity` rounded up to a power of two
   * slots of `slotSize` bytes, and the results ring holds
   * `capacity + 2 × workers + 64` slots likewise (rounded up): about 3 MiB
   * with the defaults and 2 workers.
   *
   * @default {the larger of workers * 2 and 256}
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
   * Microseconds an idle worker polls the queue before it sleeps (and the
   * main thread the results). Polling turns a ~50 µs wake-up into ~1 µs when
   * tasks come one at a time, at the cost of a busy core for that long; it
   * never pays when workers outnumber cores. A waiter whose last two polls
   * caught nothing polls at most 10 µs until one catches something again,
   * so a pool fed slower than it polls burns less per wait. While a worker
   * polls, new tasks wake no sleeping worker (it takes them): on a machine
   * whose cores are taken by other work, a poller the system has paused can
   * hold tasks back for up to a scheduler slice; set `spin: 0` there.
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

/**
 * A task named by its module and export, for {@linkcode WorkerPool.prototype.run},
 * `submit` and `trySubmit`: the task-object form, which also carries the
 * task's cancellation (see {@linkcode TaskOptions}).
 */
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
  /**
   * Called with the progress the task reports with {@linkcode taskProgress}:
   * the latest value, at most about every 50 ms, never an older one after a
   * newer, and never after the task settled.
   */
  onProgress?: (value: unknown) => void;
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

/**
 * A self-contained function with its arguments and cancellation, for
 * {@linkcode WorkerPool.prototype.execute}: the task-object form of `execute`.
 *
 * @typeParam A The function's parameters.
 * @typeParam R What it returns.
 */
export interface ExecuteSpec<A extends unknown[], R> {
  /** The function (sent by its source text: it cannot use variables of its scope). */
  fn: (...args: A) => R;
  /** Its arguments. */
  args?: A;
  /** Cancels the task (see {@linkcode TaskOptions}). */
  signal?: AbortSignal;
  /** Milliseconds until the task is cancelled (see {@linkcode TaskOptions}). */
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
  /**
   * Called with the progress a task reports with {@linkcode taskProgress},
   * and the index of its input (as `TaskSpec.onProgress`).
   */
  onProgress?: (value: unknown, index: number) => void;
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
  /** Tasks that returned (counted once, when their result settled them). */
  completed: number;
  /** Tasks that threw or rejected (counted once, when their error settled them). */
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
