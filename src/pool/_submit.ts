/**
 * Submitting tasks: encode the arguments, push them into the task ring, and
 * park what finds no room in the overflow, which the result pump moves into
 * the ring as workers free slots.
 *
 * ## Bursts: one wake-up for many tasks
 * The first task of a burst (the tasks submitted in one turn of the main
 * thread) wakes a sleeping worker at once; the rest of the burst is pushed in
 * a ring batch (`Ring.beginBatch`, see `channel/_layout.ts`) that wakes the
 * sleepers once, when the burst ends: in a microtask at the end of the turn,
 * or at a push `BURST_US` after it began (a loop that prepares each task in
 * the turn), or when the result pump closes it before it polls. A notify per
 * task would cost a system call each, while the woken workers are still on
 * their way.
 *
 * @module
 */

import { TooLargeError } from "../channel/_codec.ts";
import { Encoder } from "../channel/_codec.ts";
import { OK, type Ring } from "../channel/_ring.ts";
import { releaseControl } from "./_control.ts";
import {
  capture,
  captured,
  type Control,
  PARKED_HANDLE,
  PARKED_RESULT,
  PARKED_SINK,
  type Sink,
} from "./_parts.ts";
import type { PoolHooks } from "./_hooks.ts";
import type { Parcels } from "./_parcels.ts";
import {
  FORM_ARRAY,
  FORM_LARGE,
  FORM_NONE,
  FORM_ONE,
  INDEX_SHIFT,
  micros,
  SIGNALLED,
} from "./_protocol.ts";
import type { TaskTable } from "./_tasks.ts";
import { WaitingTasks } from "./_waiting.ts";
import type { TaskHandle, TaskSpec } from "./types.ts";

/** Longest a burst of submits defers waking workers, µs. */
const BURST_US = 2000;

/** What `push` returns for a task whose outcome goes to a sink: it has no promise of its own. */
const SINK_HANDLE: TaskHandle<unknown> = { result: Promise.resolve() };

/** `accept`/`refuse` of a parked task whose outcome goes to a sink: nothing to settle. */
const parkedToSink = (): void => {};

/** A burst reads the clock at its first push and then every this many pushes (a power of 2). */
const CLOCK_EVERY = 64;

/** The submit side of one pool. Main thread only. */
export class Submitter {
  /** The task ring (main thread → workers). */
  readonly ring: Ring;
  /** Tasks that may wait in the ring. */
  readonly capacity: number;
  /** `map()` runs that send inputs when there is room (see `refill`). */
  readonly feeders: Set<() => void> = new Set();
  /** Every task is flagged SIGNALLED (gets an abortable `taskSignal()`), control or not. */
  signalAll = false;

  readonly #tasks: TaskTable;
  readonly #parcels: Parcels;
  readonly #hooks: PoolHooks;
  readonly #epoch: number;
  readonly #enc: Encoder;
  /** Tasks waiting for room, in call order (no object per task: see `_waiting.ts`). */
  readonly #waiting = new WaitingTasks();
  /** When the open burst began, µs since the pool's epoch. */
  #burstStart = 0;
  /** Queued tasks at or below which the result pump refills the queue (half of it). */
  readonly #lowWater: number;
  /** The clock as the burst last read it, µs since the pool's epoch: the queue time of its tasks. */
  #burstNow = 0;
  /** Pushes since the burst last read the clock. */
  #burstPushes = 0;
  /** A microtask to end the burst is queued. */
  #burstQueued = false;

  /**
   * @param ring The task ring.
   * @param capacity Tasks that may wait in it.
   * @param epoch The pool's time origin (ms), for queue times.
   * @param tasks The pool's tasks by id.
   * @param parcels Where arguments too large for a slot wait.
   * @param hooks The rest of the pool.
   */
  constructor(
    ring: Ring,
    capacity: number,
    epoch: number,
    tasks: TaskTable,
    parcels: Parcels,
    hooks: PoolHooks,
  ) {
    this.ring = ring;
    this.capacity = capacity;
    this.#epoch = epoch;
    this.#tasks = tasks;
    this.#parcels = parcels;
    this.#hooks = hooks;
    this.#enc = new Encoder(ring.slotBytes);
    this.#lowWater = capacity >> 1;
  }

  /** Tasks waiting for room: not yet queued, refused or cancelled. */
  get waitingLive(): number {
    return this.#waiting.live;
  }

  /**
   * Encodes a task's arguments into the encoder and returns their form.
   * Arguments too large for a slot are stashed as a parcel (the encoder then
   * holds its key). Throws a `TypeError` or `RangeError` for arguments that
   * cannot be sent.
   */
  encodeArgs(task: string | TaskSpec | number, args: unknown[]): number {
    const list = typeof task === "object" ? task.args ?? [] : args;
    if (!Array.isArray(list)) throw new TypeError("Cannot run the task: 'args' must be an array");
    if (list.length === 0) return this.#encode(undefined, FORM_NONE);
    if (list.length === 1) return this.#encode(list[0], FORM_ONE);
    return this.#encode(list, FORM_ARRAY);
  }

  /** `encodeArgs` of a task with the one argument `value` (`map()`'s inputs: no array each). */
  encodeOne(value: unknown): number {
    return this.#encode(value, FORM_ONE);
  }

  /** Encodes `value` as the arguments of `form` (see `encodeArgs`); the form it took. */
  #encode(value: unknown, form: number): number {
    try {
      this.#enc.encode(value);
      return form;
    } catch (error) {
      if (error instanceof TooLargeError && form !== FORM_NONE) {
        // Too large for a slot: the worker fetches it by postMessage (a copy,
        // in the same encoding); the slot carries the key.
        this.#enc.encode(this.#parcels.stash(form, error.tag, error.data));
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

  /**
   * Drops what `encodeArgs` kept for a task that was not queued after all
   * (the parcel of arguments too large for a slot).
   */
  discard(form: number): void {
    if (form === FORM_LARGE) this.#parcels.drop(this.#enc.num);
  }

  /**
   * Queues the encoded task now, or parks it until there is room. Returns
   * its handle, or a promise of it.
   */
  queue(
    index: number,
    form: number,
    control: Control | undefined,
  ): TaskHandle<unknown> | Promise<TaskHandle<unknown>> {
    if (this.waitingLive === 0) {
      const handle = this.push(index, form, control);
      if (handle !== null) return handle;
    }
    return this.waitForRoom(index, form, control);
  }

  /**
   * Queues the encoded task if there is room; its handle, or `null` when
   * the ring is full or every id is in use. With a `sink`, the outcome goes
   * to `sink.deliver(seq, …)` and the handle has no promise of its own.
   */
  push(
    index: number,
    form: number,
    control: Control | undefined,
    sink?: Sink,
    seq = 0,
  ): TaskHandle<unknown> | null {
    const id = this.#pushId(index, form, control);
    if (id < 0) return null;
    if (sink !== undefined) {
      this.#tasks.sendTo(id, sink, seq); // map() and the scheduler: no promise per task
      return SINK_HANDLE;
    }
    return { result: this.#tasks.promise(id) };
  }

  /**
   * Pushes the encoded task and opens it on a fresh id: the id, or -1 when
   * the ring is full or every id is in use (then nothing was kept).
   */
  #pushId(index: number, form: number, control: Control | undefined): number {
    const tasks = this.#tasks;
    const id = tasks.alloc();
    if (id < 0) return -1;
    const signalled = control !== undefined || this.signalAll ? SIGNALLED : 0;
    const aux1 = (index << INDEX_SHIFT) | signalled | form;
    const ring = this.ring;
    // The clock (an op call, ~100 ns) is read at a burst's first push and
    // then every CLOCK_EVERY pushes: its tasks share a queue time that far.
    let now = this.#burstNow;
    if (!ring.batching || (++this.#burstPushes & (CLOCK_EVERY - 1)) === 0) {
      now = this.#burstNow = micros(this.#epoch);
      // A burst that has lasted a while (a loop that prepares each task in
      // this turn) wakes its workers now: they would sleep until the turn ends.
      if (ring.batching && now - this.#burstStart > BURST_US) ring.endBatch();
    }
    if (ring.push(this.#enc, tasks.ticketOf(id), aux1, now) !== OK) {
      tasks.unalloc(id);
      return -1;
    }
    if (!ring.batching) {
      // The first task of a burst woke a sleeping worker at once; the rest
      // wake them once, when the burst ends (see the module doc).
      ring.beginBatch();
      this.#burstStart = now;
      this.#burstPushes = 0;
      if (!this.#burstQueued) {
        this.#burstQueued = true;
        queueMicrotask(this.endBurst);
      }
    }
    tasks.open(id, index, control, form === FORM_LARGE ? this.#enc.num : 0);
    this.#hooks.startPump();
    return id;
  }

  /** Wakes workers for the tasks of a burst of submits, if it is still open. */
  readonly endBurst = (): void => {
    this.#burstQueued = false;
    if (this.ring.batching) this.ring.endBatch();
  };

  /**
   * Opens a burst for the tasks that settled results' callbacks will submit
   * (the result pump calls it before it lets them run); false if one was open.
   */
  openBurst(): boolean {
    if (this.ring.batching) return false;
    this.ring.beginBatch();
    this.#burstStart = this.#burstNow = micros(this.#epoch);
    this.#burstPushes = 0;
    return true;
  }

  /** Closes a burst that `openBurst()` opened, if it is still open. */
  closeBurst(): void {
    if (this.ring.batching) this.ring.endBatch();
  }

  /**
   * Queues waiting tasks and map() inputs while there is room, waking
   * workers once for all; only once the queue is down to half. Topping it
   * up after every few results made a wake-up call per refill while a
   * woken worker was still on its way (measured: ~13,000 notify calls per
   * 100,000 tasks for ~400 worker sleeps); from half, the workers have
   * half a queue of work while the refill reaches them.
   */
  refill(): void {
    if (this.waitingLive === 0 && this.feeders.size === 0) return;
    if (this.ring.len() > this.#lowWater) return;
    this.ring.beginBatch();
    this.#burstStart = Infinity; // this batch ends below, however long it takes
    this.#burstNow = micros(this.#epoch);
    this.#burstPushes = 0;
    try {
      if (this.waitingLive > 0) this.#flush();
      for (const feed of this.feeders) feed();
    } finally {
      this.ring.endBatch();
    }
  }

  /** Whether waiting submits are due to be queued: the queue is down to half (see `refill`). */
  roomForWaiting(): boolean {
    return this.waitingLive > 0 && this.ring.len() <= this.#lowWater;
  }

  /**
   * Takes the waiting task at `pos` out of the overflow (its control was
   * cancelled); false if it had already been queued or refused.
   */
  withdraw(pos: number, reason: unknown): boolean {
    if (!this.#waiting.isLive(pos)) return false;
    this.#refuse(pos, reason);
    return true;
  }

  /** The pool closed: the overflow's arrays go to the next pool of this thread (`_waiting.ts`). */
  retire(): void {
    this.#waiting.retire();
  }

  /** The position of the live waiting task whose outcome goes to `sink` as `seq`, or -1 (a scan). */
  waitingOf(sink: Sink, seq: number): number {
    return this.#waiting.find(sink, seq);
  }

  /** Refuses every waiting task with an error `error()` makes (terminate, withdraw); how many. */
  refuseWaiting(error: () => Error): number {
    const waiting = this.#waiting;
    let refused = 0;
    for (let pos = waiting.head; pos < waiting.tail; pos++) {
      if (!waiting.isLive(pos)) continue;
      this.#refuse(pos, error());
      refused++;
    }
    waiting.clear();
    return refused;
  }

  /** Ends the waiting task at `pos` with `reason` (its promise rejects, or its sink gets it). */
  #refuse(pos: number, reason: unknown): void {
    const waiting = this.#waiting;
    const control = waiting.control(pos);
    const sink = waiting.sink(pos);
    const seq = waiting.seq(pos);
    const refuse = waiting.refuse(pos);
    if (waiting.form(pos) === FORM_LARGE) this.#parcels.drop(waiting.num(pos));
    waiting.end(pos);
    if (control !== undefined) {
      control.waiting = -1;
      releaseControl(control);
    }
    if (sink !== undefined) sink.deliver(seq, false, reason, 0, -1);
    else refuse(reason);
  }

  /**
   * Parks the encoded task behind earlier waiting ones (call it only when
   * `push` found no room, or submits already wait); the result pump queues
   * it when a worker frees a slot. Resolves with its handle then.
   */
  waitForRoom(
    index: number,
    form: number,
    control: Control | undefined,
  ): Promise<TaskHandle<unknown>> {
    const promise = new Promise<TaskHandle<unknown>>(capture);
    this.#park(index, form, control, PARKED_HANDLE, captured.resolve, captured.reject);
    return promise;
  }

  /**
   * Parks the encoded task as `waitForRoom` does, but with the task's own
   * result promise: one promise per task, not a submit promise, a `.then`
   * and a result promise (the `run()` and `execute()` path when full).
   */
  resultOnceQueued(index: number, form: number, control: Control | undefined): Promise<unknown> {
    const promise = new Promise<unknown>(capture);
    this.#park(index, form, control, PARKED_RESULT, captured.resolve, captured.reject);
    return promise;
  }

  /**
   * Queues the encoded task now if it fits, else parks it behind earlier
   * waiting ones; either way its outcome goes to `sink.deliver(seq, …)`
   * (no promise, no handle).
   */
  queueTo(
    index: number,
    form: number,
    control: Control | undefined,
    sink: Sink,
    seq: number,
  ): void {
    if (this.waitingLive === 0 && this.push(index, form, control, sink, seq) !== null) return;
    this.#park(index, form, control, PARKED_SINK, parkedToSink, parkedToSink, sink, seq);
  }

  #park(
    index: number,
    form: number,
    control: Control | undefined,
    mode: number,
    accept: (value: unknown) => void,
    refuse: (error: unknown) => void,
    sink?: Sink,
    seq = 0,
  ): void {
    const enc = this.#enc;
    enc.own(); // later submits reuse the encoder while this one waits
    const pos = this.#waiting.add(
      index,
      form,
      enc.tag,
      enc.len,
      enc.num,
      enc.bytes,
      mode,
      accept,
      refuse,
      control,
      sink,
      seq,
    );
    if (control !== undefined) control.waiting = pos;
    this.#hooks.startPump();
  }

  /** Moves waiting tasks into the ring while it has room. */
  #flush(): void {
    const waiting = this.#waiting;
    const enc = this.#enc;
    while (waiting.skipEnded()) {
      const pos = waiting.head;
      enc.tag = waiting.tag(pos), enc.len = waiting.len(pos), enc.num = waiting.num(pos);
      enc.bytes = waiting.bytes(pos);
      const control = waiting.control(pos);
      const id = this.#pushId(waiting.index(pos), waiting.form(pos), control);
      if (id < 0) return;
      const mode = waiting.mode(pos);
      const tasks = this.#tasks;
      if (mode === PARKED_RESULT) tasks.settleWith(id, waiting.accept(pos), waiting.refuse(pos));
      else if (mode === PARKED_SINK) tasks.sendTo(id, waiting.sink(pos)!, waiting.seq(pos));
      else waiting.accept(pos)({ result: tasks.promise(id) });
      waiting.end(pos);
      waiting.head++;
    }
  }
}
