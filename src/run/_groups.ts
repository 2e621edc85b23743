/**
 * The groups of a local run: the `Scheduler` asks {@linkcode GroupGate}
 * before it starts a job of a group, and holds the job back when the
 * group's limits say no, apart from the ready jobs (so it never blocks
 * another group's job or an ungrouped one). The same limits as on a Redis
 * queue: `concurrency` counts a job from its start to the end of its
 * attempt; `rate` is a sliding window of starts.
 *
 * A held job its group lets in goes back among the ready jobs with its
 * place reserved (`pending`: counted against both limits), and its start is
 * counted when the scheduler hands it out, which for a group with a rate is
 * only when a worker is free ({@linkcode GroupGate.prototype.rated}): so
 * the rate's window holds real starts, not jobs queued behind busy workers.
 *
 * @module
 */

import type { GroupLimits } from "../jobs/mod.ts";
import type { Clock } from "./clock.ts";
import { Heap, type Ready } from "./_ready_queue.ts";

/** One group's state. */
interface Group {
  readonly limits: GroupLimits;
  /** Its attempts started and not ended. */
  running: number;
  /** Its jobs let in, back among the ready ones, not started yet. */
  pending: number;
  /** Its starts within the rate's window, oldest first (ms). */
  readonly starts: number[];
  /** Its jobs held back, in the order they go. */
  readonly held: Heap;
  /** The timer that lets the next one in when the rate allows, if set. */
  timer: unknown;
}

/** Groups' limits, and their jobs held back. */
export class GroupGate<T extends Ready> {
  readonly #limits: Record<string, GroupLimits>;
  readonly #groups = new Map<string, Group>();
  readonly #clock: Clock;
  readonly #letIn: (entry: T) => void;
  readonly #timerFired: () => void;
  #held = 0;

  /**
   * @param limits The file's `groups`.
   * @param clock The run's clock.
   * @param letIn Called with each held job its group lets in: its place is
   *   kept, the caller starts it as soon as it has room (`admit(…, true)`).
   * @param timerFired Called after a rate's timer let jobs in (the caller
   *   starts them; after `admit` and `ended` it does anyway).
   */
  constructor(
    limits: Record<string, GroupLimits>,
    clock: Clock,
    letIn: (entry: T) => void,
    timerFired: () => void,
  ) {
    this.#limits = limits;
    this.#clock = clock;
    this.#letIn = letIn;
    this.#timerFired = timerFired;
  }

  /** Jobs held back, in all groups. */
  get held(): number {
    return this.#held;
  }

  /** Whether `group` has a rate: its jobs start only on a free worker. */
  rated(group: string): boolean {
    return this.#limits[group]?.rate !== undefined;
  }

  /**
   * Whether a job of `group` may start now. If it may, its start is counted;
   * if not, the job is held until its group lets it in (through `letIn`).
   *
   * @param letIn Whether `letIn` gave it (its place was kept).
   */
  admit(group: string, entry: T, letIn: boolean): boolean {
    const state = this.#group(group);
    if (letIn) {
      state.pending--;
      this.#started(state);
      return true;
    }
    if (state.held.size === 0 && this.#room(state) > 0) {
      this.#started(state);
      return true;
    }
    // Held, in order with the group's other held jobs (by priority, then file order).
    state.held.push(entry);
    this.#held++;
    this.#release(group, state);
    return false;
  }

  /** An attempt of a job of `group` ended: its slot is free; held jobs may go in. */
  ended(group: string): void {
    const state = this.#groups.get(group);
    if (state === undefined) return;
    state.running--;
    this.#release(group, state);
  }

  /** Clears the rate timers (the run is stopping); held jobs stay held. */
  close(): void {
    for (const state of this.#groups.values()) {
      if (state.timer !== undefined) this.#clock.clearTimer(state.timer);
      state.timer = undefined;
    }
  }

  #group(name: string): Group {
    let state = this.#groups.get(name);
    if (state === undefined) {
      state = {
        limits: this.#limits[name] ?? {},
        running: 0,
        pending: 0,
        starts: [],
        held: new Heap(),
        timer: undefined,
      };
      this.#groups.set(name, state);
    }
    return state;
  }

  /** How many more may start now. */
  #room(state: Group): number {
    const { concurrency, rate } = state.limits;
    let room = concurrency === undefined ? Infinity : concurrency - state.running - state.pending;
    if (rate !== undefined) {
      const since = this.#clock.now() - rate.window;
      const starts = state.starts;
      let old = 0;
      while (old < starts.length && starts[old] <= since) old++;
      if (old > 0) starts.splice(0, old);
      room = Math.min(room, rate.limit - starts.length - state.pending);
    }
    return room;
  }

  #started(state: Group): void {
    state.running++;
    if (state.limits.rate !== undefined) state.starts.push(this.#clock.now());
  }

  /** After a start of a held group's job: the timer for the next, if the rate holds them. */
  afterStart(group: string): void {
    const state = this.#groups.get(group);
    if (state !== undefined && state.held.size > 0) this.#wake(group, state);
  }

  /** Lets in the held jobs the limits allow; with the rate in the way, sets its timer. */
  #release(group: string, state: Group): void {
    while (state.held.size > 0 && this.#room(state) > 0) {
      const entry = state.held.pop() as T;
      this.#held--;
      state.pending++;
      this.#letIn(entry);
    }
    this.#wake(group, state);
  }

  /** With jobs held by the rate (not by concurrency), a timer for when the oldest start leaves the window. */
  #wake(group: string, state: Group): void {
    const rate = state.limits.rate;
    if (rate === undefined || state.timer !== undefined || state.held.size === 0) return;
    const { concurrency } = state.limits;
    if (concurrency !== undefined && state.running + state.pending >= concurrency) return;
    // Only starts leave the window: with none in it, the next start sets the timer.
    if (state.starts.length === 0 || state.starts.length + state.pending < rate.limit) return;
    const wait = Math.max(0, state.starts[0] + rate.window - this.#clock.now());
    state.timer = this.#clock.setTimer(() => {
      state.timer = undefined;
      this.#release(group, state);
      this.#timerFired();
    }, wait);
  }
}
