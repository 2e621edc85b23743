/**
 * The engine of a worker pool: it makes the rings and the parts (tasks,
 * submit, workers, result pump), wires them together through `PoolHooks`,
 * and runs a pool's life (open, closing, closed; terminate). `WorkerPool` is
 * its public face; the scheduler and the Redis consumer use it directly for
 * tasks whose outcomes go to a sink instead of a promise each.
 *
 * @module
 */

import { PoolClosedError } from "../errors.ts";
import { checkMs } from "../_util.ts";
import { createBuffer } from "../channel/_buffer.ts";
import { RECV_EPOCH, SENDERS } from "../channel/_layout.ts";
import { ringFor } from "../channel/_ring.ts";
import { type Cancellation, controlFor, releaseControl } from "./_control.ts";
import type { Control, Sink } from "./_parts.ts";
import { Functions } from "./_functions.ts";
import type { PoolHooks, PoolStatus } from "./_hooks.ts";
import { poolSettings } from "./_options.ts";
import { Parcels } from "./_parcels.ts";
import { ResultPump } from "./_results.ts";
import { Submitter } from "./_submit.ts";
import { TaskTable, WithdrawnError } from "./_tasks.ts";
import { ID_MASK } from "./_protocol.ts";
import { Workers } from "./_workers.ts";
import type { PoolStats, TaskHandle, TaskSpec, WorkerPoolOptions } from "./types.ts";

export type { Sink } from "./_parts.ts";
export { WithdrawnError } from "./_tasks.ts";

/** Something to wake when the pool closes (a `map()` run waiting for results). */
export interface Waker {
  wakeUp(): void;
}

/** A running pool's engine. Main thread only. */
export class PoolCore implements PoolHooks {
  /** The pool's name, for messages. */
  readonly name: string;
  /** Tasks that may wait in the queue. */
  readonly capacity: number;
  readonly status: PoolStatus = { state: "open", terminated: false };
  readonly tasks: TaskTable;
  readonly functions: Functions;
  readonly submit: Submitter;
  readonly workers: Workers;
  readonly pump: ResultPump;
  /** `map()` runs going on, woken when the pool closes. */
  readonly wakers: Set<Waker> = new Set();
  readonly #timeout: number | undefined;
  /** The time origin of the queue and start times in ring messages, ms since the Unix epoch. */
  readonly #epoch: number;
  #closing: Promise<void> | null = null;
  #onIdle: (() => void) | null = null;

  /**
   * Checks the options and starts the workers.
   *
   * @param options The pool's options (see `WorkerPoolOptions`), and
   * `signalAll`: every task gets a `taskSignal()` that `cancelTo` aborts,
   * not only those with a timeout or a signal (the Redis consumer's, whose
   * jobs may be cancelled from anywhere; a worker makes an AbortController
   * per task for it); and, for tests only, `sleepMs`: every slice of a
   * worker's sleep for a task, ms (see `StartMessage.sleepMs`), and
   * `stuckMs`: when the result pump wakes the sleeping workers for tasks
   * still queued beside them, ms (`Infinity`: never; see `STUCK_MS` in
   * `_results.ts`).
   */
  constructor(
    options: WorkerPoolOptions & { signalAll?: boolean; sleepMs?: number; stuckMs?: number },
  ) {
    const settings = poolSettings(options);
    // The test-only ones too, before any worker starts.
    const sleepMs = options.sleepMs === undefined
      ? undefined
      : checkMs(options.sleepMs, "create pool", "sleepMs", { positive: true });
    const stuckMs = options.stuckMs === undefined
      ? undefined
      : checkMs(options.stuckMs, "create pool", "stuckMs", { positive: true, infinite: true });
    const { workers, capacity, slotSize } = settings;
    this.name = settings.name;
    this.capacity = capacity;
    this.#timeout = settings.timeout;
    const taskBuffer = createBuffer(capacity, slotSize);
    // Results wait for the main thread at most as many as tasks are in flight
    // (queued or running), plus stale ones of stopped workers: room for all.
    const resultCapacity = capacity + 2 * workers + 64;
    const resultBuffer = createBuffer(resultCapacity, slotSize);
    new Int32Array(resultBuffer)[SENDERS] = workers;
    const taskRing = ringFor(taskBuffer);
    const resultRing = ringFor(resultBuffer);
    // Ids in use at once: queued + held by workers + results not yet read + spare.
    const parcels = new Parcels();
    this.tasks = new TaskTable(capacity + 2 * workers + resultCapacity + 64, parcels);
    this.functions = new Functions(settings.module);
    const epoch = this.#epoch = performance.timeOrigin + performance.now();
    this.submit = new Submitter(taskRing, capacity, epoch, this.tasks, parcels, this);
    this.submit.signalAll = options.signalAll === true;
    const label = (index: number) => this.functions.label(index);
    this.workers = new Workers(workers, settings, {
      kind: "start",
      tasks: taskBuffer,
      results: resultBuffer,
      table: this.functions.buffer,
      flags: this.tasks.flags.buffer as SharedArrayBuffer,
      epoch,
      spin: settings.spin,
      sleepMs,
    }, {
      taskRing,
      tasks: this.tasks,
      parcels,
      label,
      status: this.status,
      hooks: this,
    });
    // Workers that never poll (spin 0) never say so: nothing to count.
    if (settings.spin > 0) taskRing.polling = this.workers.polling;
    this.pump = new ResultPump(
      resultRing,
      settings.spin / 1000,
      {
        tasks: this.tasks,
        parcels,
        submit: this.submit,
        workers: this.workers,
        label,
        status: this.status,
        hooks: this,
      },
      stuckMs,
    );
  }

  /** Throws a `PoolClosedError` unless the pool takes tasks. */
  checkOpen(): void {
    if (this.status.state !== "open") {
      throw new PoolClosedError(
        this.status.terminated
          ? "Cannot submit a task: the pool was terminated"
          : "Cannot submit a task: the pool is closed (close() was called); create a new pool",
      );
    }
  }

  /** The control of a task with a timeout or a signal (or the pool's default timeout). */
  controlFor(options: Cancellation | undefined): Control | undefined {
    return controlFor(options, this.#timeout, this.cancel);
  }

  /**
   * Queues a task (an export name or spec, or an execute() function's
   * index): its handle now, or a promise of it once there is room.
   */
  enqueue(
    task: string | TaskSpec | number,
    args: unknown[],
    options: Cancellation | undefined,
  ): TaskHandle<unknown> | Promise<TaskHandle<unknown>> {
    this.checkOpen();
    const index = typeof task === "number" ? task : this.functions.indexOf(task);
    const submit = this.submit;
    const form = submit.encodeArgs(task, args);
    let control;
    try {
      control = this.controlFor(options);
    } catch (error) {
      submit.discard(form);
      throw error;
    }
    return submit.queue(index, form, control);
  }

  /**
   * The outcome of a task, queued now or once there is room
   * (`WorkerPool.prototype.run`). The hot path of the pool: `enqueue` and
   * `Submitter.queue` written out, so that the chain of calls from `run()`
   * to the ring is no longer than it was when the pool was one class.
   */
  run(
    task: string | TaskSpec | number,
    args: unknown[],
    options?: Cancellation,
  ): Promise<unknown> {
    try {
      this.checkOpen();
      // A number is an execute() function's index (its options come apart).
      const index = typeof task === "number" ? task : this.functions.indexOf(task);
      const submit = this.submit;
      const form = submit.encodeArgs(task, args);
      let control;
      try {
        control = this.controlFor(typeof task === "object" ? task : options);
      } catch (error) {
        submit.discard(form);
        throw error;
      }
      if (submit.waitingLive === 0) {
        const handle = submit.push(index, form, control);
        if (handle !== null) return handle.result;
      }
      return submit.resultOnceQueued(index, form, control);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Queues a task if there is room now (and no submit waits for room):
   * its handle, or `null`. With a `sink`, its outcome goes to
   * `sink.deliver(seq, …)` instead of a promise. Nothing is kept for a task
   * that was not queued.
   */
  tryPush(
    task: string | TaskSpec,
    args: unknown[],
    sink?: Sink,
    seq = 0,
  ): TaskHandle<unknown> | null {
    this.checkOpen();
    const index = this.functions.indexOf(task);
    const submit = this.submit;
    const form = submit.encodeArgs(task, args);
    let handle: TaskHandle<unknown> | null = null;
    let control: Control | undefined;
    try {
      // Behind the submits waiting for room: full.
      if (submit.waitingLive === 0) {
        control = this.controlFor(typeof task === "string" ? undefined : task);
        handle = submit.push(index, form, control, sink, seq);
      }
    } finally {
      if (handle === null) {
        // Nothing may linger for a task that was not queued: its timer, and
        // arguments too large for a slot, kept for the worker to fetch.
        if (control !== undefined) releaseControl(control);
        submit.discard(form);
      }
    }
    return handle;
  }

  /**
   * Queues a task whose outcome goes to `sink.deliver(seq, …)` instead of a
   * promise: now if there is room, else once there is (behind the submits
   * already waiting). Throws what `run()` would reject with.
   */
  queueTo(task: TaskSpec, sink: Sink, seq: number): void {
    this.checkOpen();
    const index = this.functions.indexOf(task);
    const submit = this.submit;
    const form = submit.encodeArgs(task, []);
    let control;
    try {
      control = this.controlFor(task);
    } catch (error) {
      submit.discard(form);
      throw error;
    }
    submit.queueTo(index, form, control, sink, seq);
  }

  /**
   * Withdraws every task that no worker has started: those waiting for
   * room, and those in the task ring that no worker has taken. Each ends
   * at once with a `WithdrawnError` and never runs. A task a worker is
   * taking in this very instant is left to it: it runs (and ends as it
   * ends), or the worker sees the mark and it ends with a `WithdrawnError`.
   * Returns how many were withdrawn at once.
   *
   * The order makes "never runs" safe (the protocol of `_protocol.ts`): the
   * task is marked to be skipped first, then the workers' `W_TASK` words
   * are read. A worker stores `W_TASK` before it claims a task and reads
   * the mark after; so either this read sees the worker's `W_TASK` (the
   * task is left to it), or the worker's read of the mark comes later and
   * sees it.
   */
  withdraw(): number {
    const tasks = this.tasks;
    let withdrawn = this.submit.refuseWaiting(() => new WithdrawnError());
    for (const ticket of this.submit.ring.queuedAux0()) {
      if (!tasks.isCurrent(ticket)) continue; // cancelled already
      const id = ticket & ID_MASK;
      tasks.markSkipped(id);
      if (this.workers.holds(ticket)) continue;
      tasks.deliver(id, false, new WithdrawnError());
      withdrawn++;
    }
    this.kick();
    this.idleCheck();
    return withdrawn;
  }

  /**
   * When a task started, as ms since the Unix epoch, from the `startUs` a
   * worker reported (µs since the pool's epoch, wrapping at 2^32: right for
   * a task that started less than 35 minutes ago).
   */
  startTime(startUs: number): number {
    const now = performance.timeOrigin + performance.now();
    const nowUs = ((now - this.#epoch) * 1000) | 0;
    return now - ((nowUs - startUs) | 0) / 1000;
  }

  /** A snapshot of the pool's counters. */
  stats(): PoolStats {
    const totals = this.workers.totals();
    return {
      workers: totals.workers,
      idle: totals.workers - totals.running,
      running: totals.running,
      queued: this.submit.ring.len(),
      completed: this.tasks.completed,
      failed: this.tasks.failed,
      cancelled: this.tasks.cancelled,
      crashed: this.tasks.crashed,
      stuck: totals.stuck,
      waitTime: totals.waitTime,
      runTime: totals.runTime,
    };
  }

  /** Stops taking tasks, lets every queued and running one finish, then ends the workers. */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing;
    if (this.status.state === "open") this.status.state = "closing";
    // A map() waiting for room that will not come now ends with PoolClosedError.
    for (const waker of this.wakers) waker.wakeUp();
    this.#closing = (async () => {
      if (
        !this.status.terminated && (this.tasks.outstanding > 0 || this.submit.waitingLive > 0)
      ) {
        await new Promise<void>((resolve) => this.#onIdle = resolve);
      }
      this.#shutdown();
    })();
    return this.#closing;
  }

  /** Ends at once: every task not finished and every waiting submit rejects. */
  terminate(): void {
    if (this.status.terminated) return;
    this.status.terminated = true;
    // Closed before any outcome goes out: a sink that submits again from
    // `deliver` (synchronously) is refused, not queued behind the shutdown.
    this.status.state = "closed";
    const tasks = this.tasks;
    for (let id = 0; id < tasks.idsUsed; id++) {
      if (tasks.isPending(id)) {
        tasks.deliver(
          id,
          false,
          new PoolClosedError("The task did not finish: the pool was terminated"),
        );
      }
    }
    this.submit.refuseWaiting(() =>
      new PoolClosedError("Cannot submit a task: the pool was terminated")
    );
    this.#shutdown();
    // Wake the result pump: it sees the pool terminated.
    this.pump.ring.wakeAll(RECV_EPOCH);
    this.idleCheck();
  }

  #shutdown(): void {
    this.status.state = "closed";
    for (const waker of this.wakers) waker.wakeUp(); // they see the pool closed
    // Workers see the end of the task ring once it is drained; they are
    // idle by now, so terminating them loses nothing.
    const ring = this.submit.ring;
    Atomics.store(ring.i32, SENDERS, 0);
    ring.wakeAll(RECV_EPOCH);
    this.workers.shutdown();
    this.submit.retire();
  }

  // -- PoolHooks: how the parts reach each other --

  /** Starts the result pump. */
  startPump(): void {
    this.pump.start();
  }

  /** Wakes the result pump. */
  kick(): void {
    this.pump.kick();
  }

  /** Settles every result that is ready now. */
  drain(): number {
    return this.pump.drain();
  }

  /** Resolves a pending close() once nothing is outstanding or waiting. */
  idleCheck(): void {
    if (
      this.#onIdle !== null && this.tasks.outstanding === 0 && this.submit.waitingLive === 0
    ) {
      const onIdle = this.#onIdle;
      this.#onIdle = null;
      onIdle();
    }
  }

  /** A large result's value arrived. */
  largeResult(ticket: number, value: unknown): void {
    this.pump.largeResult(ticket, value);
  }

  /**
   * A task's progress arrived: to its listener, if the task is still the
   * one on its ticket and not settled (a late message is dropped). An error
   * the listener throws is reported as an uncaught one, and the pool goes on.
   */
  progress(ticket: number, value: unknown): void {
    if (!this.tasks.isCurrent(ticket)) return;
    const id = ticket & ID_MASK;
    const listener = this.tasks.controlOf(id)?.progress;
    try {
      if (listener !== undefined) listener(value);
      else this.tasks.sinkProgress(id, value);
    } catch (error) {
      reportError(error);
    }
  }

  /**
   * Cancels a task wherever it is: waiting for room (it is withdrawn), in
   * the queue (marked to be skipped: a worker that claims it from now on
   * skips it, see `_protocol.ts`), or running (its worker is asked to stop,
   * and replaced after the grace). Its outcome is the `reason`, at once.
   */
  readonly cancel = (control: Control, reason: unknown): void => {
    const tasks = this.tasks;
    const waiting = control.waiting;
    if (waiting >= 0) {
      if (this.submit.withdraw(waiting, reason)) {
        tasks.cancelled++;
        this.idleCheck();
      }
      return;
    }
    const id = control.id;
    if (id < 0 || !tasks.isPending(id) || tasks.controlOf(id) !== control) return;
    this.#cancelPending(id, reason);
  };

  /**
   * Cancels the task whose outcome goes to `sink` as `seq`, as `cancel`
   * does a task whose timeout ran out: waiting for room, queued, or running
   * (its worker asked to stop, and replaced after the grace). Its outcome
   * is `reason`, at once. False when no such task is pending. It looks the
   * task up by a scan: for a rare cancel (the Redis consumer's), not a hot
   * path.
   */
  cancelTo(sink: Sink, seq: number, reason: unknown): boolean {
    const waiting = this.submit.waitingOf(sink, seq);
    if (waiting >= 0) {
      if (!this.submit.withdraw(waiting, reason)) return false;
      this.tasks.cancelled++;
      this.idleCheck();
      return true;
    }
    const id = this.tasks.pendingIdOf(sink, seq);
    if (id < 0) return false;
    this.#cancelPending(id, reason);
    return true;
  }

  #cancelPending(id: number, reason: unknown): void {
    const tasks = this.tasks;
    const ticket = tasks.ticketOf(id);
    tasks.cancelled++;
    tasks.markSkipped(id);
    tasks.deliver(id, false, reason);
    this.workers.stopTask(ticket, reason);
    this.kick();
    this.idleCheck();
  }
}
