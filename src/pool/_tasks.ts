/**
 * The pool's tasks on the main thread, by id: who waits for each outcome (a
 * promise or a sink), its function, its control, and the id's ticket.
 *
 * Ids are small integers, recycled, so that everything about a task lives
 * in arrays indexed by its id: no Map, and no per-task object but the
 * promise (unless the task has a timeout or a signal). A task's ticket is its
 * id and that id's generation (`_protocol.ts`): an id is reused under a new
 * ticket, so a late result, skip or `W_TASK` of a task that was cancelled or
 * lost can never be taken for the next task on that id.
 *
 * An id whose task was marked to be skipped (`flags[id] = ticket`: cancelled
 * while queued) is quarantined until that task comes back from a worker, or
 * the next task on the id could overwrite the mark before a worker read it.
 *
 * @module
 */

import { PoolClosedError } from "../errors.ts";
import { releaseControl } from "./_control.ts";
import { capture, captured, type Control, type Sink } from "./_parts.ts";
import type { Parcels } from "./_parcels.ts";
import { ID_MASK, TICKET_SHIFT, ticketOf } from "./_protocol.ts";

/**
 * The outcome of a task withdrawn before any worker started it
 * (`PoolCore.withdraw()`, on a run's stop): it never ran.
 */
export class WithdrawnError extends PoolClosedError {
  constructor() {
    super("The task was withdrawn before it started");
    this.name = "WithdrawnError";
  }
}

/** Id state: not in use. */
const ID_FREE = 0;
/** Id state: queued or running; its outcome is not delivered yet. */
const ID_PENDING = 1;

/** The tasks of one pool, by id. Main thread only. */
export class TaskTable {
  /** Ids in use at once, at most. */
  readonly idLimit: number;
  /** Tasks queued or running whose outcome is not delivered yet. */
  outstanding = 0;
  /** Tasks that settled with their return value. */
  completed = 0;
  /** Tasks that settled with the error they threw. */
  failed = 0;
  /** Tasks cancelled (timeout or signal) before they settled. */
  cancelled = 0;
  /** Tasks lost with a worker that died. */
  crashed = 0;
  /** Cancel marks by id, read by workers (`flags[id] = ticket`: skip it). */
  readonly flags: Int32Array;

  readonly #parcels: Parcels;
  readonly #resolves: Array<((value: unknown) => void) | undefined> = [];
  readonly #rejects: Array<((error: unknown) => void) | undefined> = [];
  readonly #functionOf: number[] = [];
  readonly #controls: Array<Control | undefined> = [];
  /** The sink a task's outcome goes to instead of a promise, and its place there. */
  readonly #sinks: Array<Sink | undefined> = [];
  readonly #seqs: number[] = [];
  readonly #state: number[] = [];
  /** The current ticket of each id; results of older ones are ignored. */
  readonly #tickets: number[] = [];
  readonly #freeIds: number[] = [];
  #nextId = 0;
  /** Ids whose task is marked to be skipped: its ticket until it comes back, else 0. */
  readonly #quarantined: number[] = [];
  /** The parcel key of each pending id with large arguments, else 0. */
  readonly #parcelOf: number[] = [];

  /**
   * @param idLimit Ids in use at once, at most.
   * @param parcels Where large arguments and results wait.
   */
  constructor(idLimit: number, parcels: Parcels) {
    this.idLimit = idLimit;
    this.#parcels = parcels;
    this.flags = new Int32Array(new SharedArrayBuffer(idLimit * 4));
  }

  /** A free id, or -1 when every id is in use. */
  alloc(): number {
    if (this.#freeIds.length > 0) return this.#freeIds.pop()!;
    return this.#nextId < this.idLimit ? this.#nextId++ : -1;
  }

  /** Gives back an id `alloc()` returned whose task was not queued after all. */
  unalloc(id: number): void {
    this.#freeIds.push(id);
  }

  /** The current ticket of id `id`. */
  ticketOf(id: number): number {
    return this.#tickets[id] ?? (this.#tickets[id] = ticketOf(id, 1));
  }

  /**
   * Records a task just queued on `id`: its function, its control, and its
   * parcel key (0 for none). Its outcome goes to `sink.deliver(seq, …)`
   * when a sink is given, else to the promise {@linkcode promise} makes.
   */
  open(id: number, index: number, control: Control | undefined, parcel: number): void {
    this.outstanding++;
    this.#state[id] = ID_PENDING;
    this.#parcelOf[id] = parcel;
    this.#functionOf[id] = index;
    this.#controls[id] = control;
    if (control !== undefined) {
      control.id = id;
      control.waiting = -1;
    }
  }

  /** The promise of the outcome of the task just opened on `id`. */
  promise(id: number): Promise<unknown> {
    const promise = new Promise<unknown>(capture);
    this.#resolves[id] = captured.resolve;
    this.#rejects[id] = captured.reject;
    return promise;
  }

  /** Settles the task just opened on `id` with an existing promise's functions (a parked `run()`). */
  settleWith(
    id: number,
    resolve: (value: unknown) => void,
    reject: (error: unknown) => void,
  ): void {
    this.#resolves[id] = resolve;
    this.#rejects[id] = reject;
  }

  /** Sends the outcome of the task just opened on `id` to `sink` as `seq`. */
  sendTo(id: number, sink: Sink, seq: number): void {
    this.#sinks[id] = sink;
    this.#seqs[id] = seq;
  }

  /** Whether `ticket` names a task whose outcome is still to be delivered. */
  isCurrent(ticket: number): boolean {
    const id = ticket & ID_MASK;
    return this.#state[id] === ID_PENDING && this.#tickets[id] === ticket;
  }

  /** The id of the pending task whose outcome goes to `sink` as `seq`, or -1 (a scan). */
  pendingIdOf(sink: Sink, seq: number): number {
    for (let id = 0; id < this.#nextId; id++) {
      if (this.#state[id] === ID_PENDING && this.#sinks[id] === sink && this.#seqs[id] === seq) {
        return id;
      }
    }
    return -1;
  }

  /** Whether a task is pending on id `id` (whatever its ticket). */
  isPending(id: number): boolean {
    return this.#state[id] === ID_PENDING;
  }

  /** The control of the pending task on `id`, if it has one. */
  controlOf(id: number): Control | undefined {
    return this.#controls[id];
  }

  /** Sends progress to the sink of the pending task on `id`, if it has one that listens. */
  sinkProgress(id: number, value: unknown): void {
    this.#sinks[id]?.progress?.(this.#seqs[id], value);
  }

  /** The function table index of the pending task on `id`. */
  functionOf(id: number): number {
    return this.#functionOf[id];
  }

  /** Ids handed out so far: every pending id is below it. */
  get idsUsed(): number {
    return this.#nextId;
  }

  /**
   * Delivers the outcome of the pending task on `id` (a value, or an error
   * when not `ok`) and frees the id. Used for results (with when the task
   * started and how long it ran, see `Sink`), and for tasks settled before
   * their result came (cancelled, lost, withdrawn, terminated).
   */
  deliver(id: number, ok: boolean, value: unknown, startUs = 0, runUs = -1): void {
    const sink = this.#sinks[id];
    const control = this.#controls[id];
    if (sink !== undefined) {
      const seq = this.#seqs[id];
      this.#free(id);
      if (control !== undefined) releaseControl(control);
      sink.deliver(seq, ok, value, startUs, runUs);
      return;
    }
    const settle = ok ? this.#resolves[id]! : this.#rejects[id]!;
    this.#free(id);
    if (control !== undefined) releaseControl(control);
    settle(value);
  }

  /**
   * Marks the pending task on `id` to be skipped by the worker that claims
   * it (a worker reads the mark after claiming, see `_protocol.ts`).
   */
  markSkipped(id: number): void {
    Atomics.store(this.flags, id, this.#tickets[id]);
  }

  /**
   * A `map()` run ended early: its tasks still pending are marked to be
   * skipped and freed without an outcome (running ones finish unobserved).
   */
  dropSink(sink: Sink): void {
    for (let id = 0; id < this.#nextId; id++) {
      if (this.#sinks[id] !== sink || this.#state[id] !== ID_PENDING) continue;
      this.markSkipped(id);
      const control = this.#controls[id];
      this.#free(id);
      if (control !== undefined) releaseControl(control);
    }
  }

  /**
   * The task `ticket` marked to be skipped came back (or never will): its
   * id is free again. Nothing for any other ticket.
   */
  release(ticket: number): void {
    const id = ticket & ID_MASK;
    if (this.#quarantined[id] !== ticket) return;
    this.#quarantined[id] = 0;
    Atomics.store(this.flags, id, 0);
    this.#freeIds.push(id);
  }

  /** Frees id `id` under a new ticket, so that a late result of the old one is ignored. */
  #free(id: number): void {
    const parcel = this.#parcelOf[id];
    if (parcel !== 0) {
      this.#parcels.drop(parcel); // not fetched: the task was cancelled or lost
      this.#parcelOf[id] = 0;
    }
    this.#resolves[id] =
      this.#rejects[id] =
      this.#controls[id] =
      this.#sinks[id] =
        undefined;
    this.#state[id] = ID_FREE;
    const ticket = this.#tickets[id];
    this.#parcels.forgetResult(ticket); // a large result of a task settled early is not wanted
    this.#tickets[id] = ticketOf(id, (ticket >>> TICKET_SHIFT) + 1);
    // A task marked to be skipped keeps its id (and so its mark) until it
    // comes back, or the id's next task could overwrite the mark.
    if (Atomics.load(this.flags, id) === ticket) this.#quarantined[id] = ticket;
    else this.#freeIds.push(id);
    this.outstanding--;
  }
}
