/**
 * The errors that taskpool's callers catch.
 *
 * @module
 */

/**
 * Thrown when a channel cannot carry on: a send after every receiver is gone
 * (the unsent value is handed back in {@linkcode ChannelClosedError.value}),
 * or a receive after every sender is gone and the queue is drained.
 *
 * @example Recover the value of a failed send
 * ```ts
 * import { ChannelClosedError, syncChannel } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [tx, rx] = syncChannel<string>(1);
 * rx.close();
 * try {
 *   await tx.send("lost?");
 * } catch (error) {
 *   assert(error instanceof ChannelClosedError);
 *   assert.strictEqual(error.value, "lost?");
 * }
 * ```
 */
export class ChannelClosedError extends Error {
  /** The value that was not sent, or `undefined` for a failed receive. */
  readonly value: unknown;

  /**
   * Creates the error.
   *
   * @param message What closed and what the caller tried.
   * @param value The unsent value, if any.
   */
  constructor(message: string, value?: unknown) {
    super(message);
    this.name = "ChannelClosedError";
    this.value = value;
  }
}

/**
 * Thrown when a `timeout` option of taskpool runs out: a channel wait, or a
 * pool task's `timeout` (the task then rejects with it).
 *
 * Not the same as the `DOMException` named "TimeoutError" that
 * `AbortSignal.timeout()` aborts with: both have `name === "TimeoutError"`,
 * but only taskpool's is `instanceof TimeoutError`. A task cancelled by a
 * `signal: AbortSignal.timeout(ms)` rejects with the signal's reason, the
 * `DOMException`. Test with `instanceof` to tell which limit ran out, or
 * with `error.name === "TimeoutError"` to catch both.
 *
 * @example Catch a receive that timed out
 * ```ts
 * import { syncChannel, TimeoutError } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const [_tx, rx] = syncChannel<number>(1);
 * await assert.rejects(rx.recv({ timeout: 10 }), TimeoutError);
 * ```
 *
 * @example Tell taskpool's timeout from AbortSignal.timeout()'s
 * ```ts
 * import { TimeoutError, WorkerPool } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * await using pool = new WorkerPool({ workers: 1, abortGrace: 0 });
 * const hang = () => new Promise(() => {});
 * const ours = await pool.execute({ fn: hang, timeout: 20 }).catch((e) => e);
 * assert(ours instanceof TimeoutError && ours.name === "TimeoutError");
 * const signal = AbortSignal.timeout(20);
 * const theirs = await pool.execute({ fn: hang, signal }).catch((e) => e);
 * assert(!(theirs instanceof TimeoutError) && theirs instanceof DOMException);
 * assert.strictEqual(theirs.name, "TimeoutError");
 * ```
 */
export class TimeoutError extends Error {
  /**
   * Creates the error.
   *
   * @param message What timed out, and after how long.
   */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * A task threw or rejected inside its worker. `message` and `stack` are the
 * worker's; `cause` is the thrown value rebuilt on this side: an `Error` with
 * the original `name`, `message`, `stack` (and its own `cause`), or the
 * non-Error value that was thrown, as far as JSON carries it. `task` names
 * the task.
 *
 * @example Catch a failing task
 * ```ts
 * import { TaskError, WorkerPool } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * await using pool = new WorkerPool({ workers: 1 });
 * const failing = pool.execute(() => {
 *   throw new RangeError("out of range");
 * });
 * await assert.rejects(failing, (error) => {
 *   assert(error instanceof TaskError);
 *   assert.strictEqual(error.message, "out of range");
 *   assert.strictEqual((error.cause as Error).name, "RangeError");
 *   return true;
 * });
 * ```
 */
export class TaskError extends Error {
  /** Which task failed: its export name and module, or "an execute() function". */
  readonly task: string;

  /**
   * Creates the error.
   *
   * @param message The worker's error message.
   * @param options The rebuilt thrown value, the worker's stack, and the task.
   */
  constructor(message: string, options: { cause?: unknown; stack?: string; task: string }) {
    super(message, { cause: options.cause });
    this.name = "TaskError";
    this.task = options.task;
    if (options.stack !== undefined) this.stack = options.stack;
  }
}

/**
 * The pool no longer takes tasks (`close()` was called), or it was
 * terminated before the task finished.
 *
 * @example Submit after close
 * ```ts
 * import { PoolClosedError, WorkerPool } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const pool = new WorkerPool({ workers: 1 });
 * await pool.close();
 * await assert.rejects(pool.execute(() => 1), PoolClosedError);
 * ```
 */
export class PoolClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was refused or lost, and why.
   */
  constructor(message: string) {
    super(message);
    this.name = "PoolClosedError";
  }
}

/**
 * The worker running a task died: an uncaught error in a callback,
 * `self.close()` or `Deno.exit()` in the task, or the runtime ended it. The
 * pool replaces the worker; only the task it held fails. `task` names it.
 *
 * @example Catch a crashed task
 * ```ts
 * import { WorkerPool, WorkerCrashedError } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * await using pool = new WorkerPool({ workers: 1 });
 * await assert.rejects(pool.execute(() => self.close()), WorkerCrashedError);
 * assert.strictEqual(await pool.execute(() => "the pool goes on"), "the pool goes on");
 * ```
 */
export class WorkerCrashedError extends Error {
  /** Which task was lost: its export name and module, or "an execute() function". */
  readonly task: string;

  /**
   * Creates the error.
   *
   * @param message Which worker died, while running what, and why if known.
   * @param task The task it held.
   */
  constructor(message: string, task: string) {
    super(message);
    this.name = "WorkerCrashedError";
    this.task = task;
  }
}

/**
 * Thrown by `readJobFile` when the file cannot be read or is not JSON: one
 * line that says what is wrong with the file and how to fix it.
 *
 * @example Read a file that is not there
 * ```ts
 * import { JobFileError, readJobFile } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * await assert.rejects(readJobFile("/no/such/jobs.json"), JobFileError);
 * ```
 */
export class JobFileError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong with the file, and how to fix it.
   */
  constructor(message: string) {
    super(message);
    this.name = "JobFileError";
  }
}

/**
 * An error reply from the server (`-ERR ...`), with the command that caused it.
 *
 * @example Catch a command the server refused
 * ```ts
 * import { RedisClient, RedisError } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using redis = await RedisClient.connect(url);
 *   const error = await redis.send(["NOSUCHCOMMAND"]).catch((e) => e);
 *   assert(error instanceof RedisError);
 *   assert.strictEqual(error.command, "NOSUCHCOMMAND");
 * }
 * ```
 */
export class RedisError extends Error {
  /** The command's name, upper case, e.g. "LPUSH". */
  readonly command: string;

  /**
   * Creates the error.
   *
   * @param command The command's name.
   * @param reply The server's message, e.g. "WRONGTYPE Operation against a key ...".
   */
  constructor(command: string, reply: string) {
    super(`Redis error for ${command}: ${reply}`);
    this.name = "RedisError";
    this.command = command;
  }
}

/**
 * The server cannot be reached, the connection broke, the client was closed,
 * or a command got no reply in time. The message is one line and says what to fix.
 *
 * @example Catch an unreachable server
 * ```ts
 * import { RedisClient, RedisConnectionError } from "@taskpool/taskpool";
 * import assert from "node:assert";
 *
 * await assert.rejects(RedisClient.connect("redis://127.0.0.1:1"), RedisConnectionError);
 * ```
 */
export class RedisConnectionError extends Error {
  /**
   * Creates the error.
   *
   * @param message What failed and what to check.
   * @param options The underlying error as `cause`, if any.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RedisConnectionError";
  }
}
