/**
 * `map()`: a task per input of a stream, results yielded in input order (or
 * as they finish), with backpressure and no promise per task.
 *
 * Inputs are sent by a feeder that the result pump calls after every batch
 * of results (`Submitter.feeders`), so the workers never wait for the
 * consumer of the generator; results go to the run's `MapSink`, which also
 * bounds how far the inputs may run ahead of the consumer.
 *
 * @module
 */

import { describe } from "../_util.ts";
import type { PoolCore } from "./_core.ts";
import { type Cancellation, releaseControl } from "./_control.ts";
import type { Sink } from "./_parts.ts";
import type { MapOptions, TaskSpec } from "./types.ts";

/** Results a map() run may hold for its consumer beyond two queues' worth. */
const MAP_SLACK = 32;

/**
 * The results of one map() run, by input position, in arrays indexed by
 * `seq % window` (a run has fewer tasks in flight than the pool has ids).
 */
export class MapSink implements Sink {
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

  /** Whether the result `take` last returned is a value (else an error). */
  tookOk = false;

  /** Takes the result at `seq` (its kind in `tookOk`): no object per result. */
  take(seq: number): unknown {
    const at = seq % this.#window;
    this.tookOk = this.#state[at] === 1;
    const value = this.#values[at];
    this.#state[at] = 0;
    this.#values[at] = undefined;
    this.taken++;
    if (seq === this.#nextInOrder) this.#nextInOrder++;
    if (this.#arrivedHead < this.#arrived.length && this.#arrived[this.#arrivedHead] === seq) {
      this.#arrivedHead++;
      if (this.#arrivedHead === this.#arrived.length) this.#arrived.length = this.#arrivedHead = 0;
    }
    return value;
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

/** The state of one map() run: its inputs, what was sent, and its sink. */
class MapRun {
  readonly sink: MapSink;
  readonly yieldErrors: boolean;
  readonly #core: PoolCore;
  readonly #index: number;
  readonly #signal: AbortSignal | undefined;
  readonly #perTask: Cancellation | undefined;
  readonly #onProgress: ((value: unknown, index: number) => void) | undefined;
  readonly #asyncInputs: boolean;
  readonly #source: Iterator<unknown> | AsyncIterator<unknown>;
  readonly #onAbort: () => void;
  /** Inputs pulled but not sent yet: prefetched from an async source, or one that found no room. */
  readonly #ahead: unknown[] = [];
  #aheadHead = 0;
  #sent = 0;
  #exhausted = false;
  #failure: { error: unknown } | null = null;

  constructor(
    core: PoolCore,
    task: string | TaskSpec,
    inputs: Iterable<unknown> | AsyncIterable<unknown>,
    options: MapOptions,
  ) {
    core.checkOpen();
    this.#core = core;
    this.#index = core.functions.indexOf(task);
    if (options.errors !== undefined && options.errors !== "throw" && options.errors !== "yield") {
      throw new TypeError(
        `Cannot map as 'errors' must be "throw" or "yield": current value is ${
          describe(options.errors)
        }`,
      );
    }
    this.yieldErrors = options.errors === "yield";
    this.#signal = options.signal;
    this.#signal?.throwIfAborted();
    this.#onProgress = options.onProgress;
    if (this.#onProgress !== undefined && typeof this.#onProgress !== "function") {
      throw new TypeError(
        `Cannot map as 'onProgress' must be a function: current value is ${typeof this
          .#onProgress}`,
      );
    }
    // A listener of progress needs a control per task; the control then
    // gets its own callback, bound to the task's input index, in #send.
    this.#perTask = options.timeout === undefined && this.#onProgress === undefined
      ? undefined
      : { timeout: options.timeout, onProgress: this.#onProgress && (() => {}) };
    // In flight plus finished-but-not-taken: enough to keep the queue full
    // while the consumer takes a batch, few enough to follow its pace.
    const limit = MAP_SLACK + 2 * (core.capacity + core.workers.size);
    this.sink = new MapSink(core.tasks.idLimit, limit, options.ordered ?? true);
    this.#onAbort = () => this.sink.wakeUp();
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#asyncInputs = Symbol.asyncIterator in inputs;
    this.#source = this.#asyncInputs
      ? (inputs as AsyncIterable<unknown>)[Symbol.asyncIterator]()
      : (inputs as Iterable<unknown>)[Symbol.iterator]();
    core.submit.feeders.add(this.feed);
    core.wakers.add(this.sink);
  }

  /**
   * Sends inputs while the queue has room. The result pump calls it after
   * every batch of results, so the workers never wait for the generator.
   */
  readonly feed = (): void => {
    const core = this.#core;
    const submit = core.submit;
    const ahead = this.#ahead;
    while (this.#failure === null && core.status.state === "open") {
      if (
        submit.ring.len() >= core.capacity || submit.waitingLive > 0 || !this.sink.room(this.#sent)
      ) {
        return;
      }
      let value: unknown;
      if (this.#aheadHead < ahead.length) value = ahead[this.#aheadHead];
      else if (this.#asyncInputs || this.#exhausted) return;
      else {
        const next = (this.#source as Iterator<unknown>).next();
        if (next.done) {
          this.#exhausted = true;
          return;
        }
        value = ahead[ahead.length] = next.value;
      }
      if (!this.#send(value)) return;
      this.#sent++;
      if (++this.#aheadHead === ahead.length) ahead.length = this.#aheadHead = 0;
    }
  };

  /** Queues one input's task; false when it found no room (or failed: see `#failure`). */
  #send(value: unknown): boolean {
    const submit = this.#core.submit;
    let form = -1;
    try {
      form = submit.encodeOne(value);
      const control = this.#core.controlFor(this.#perTask);
      const onProgress = this.#onProgress;
      if (onProgress !== undefined) {
        const index = this.#sent;
        control!.progress = (progress) => onProgress(progress, index);
      }
      if (submit.push(this.#index, form, control, this.sink, this.#sent) !== null) return true;
      // Nothing may linger for a task that was not queued: its timer, its parcel.
      if (control !== undefined) releaseControl(control);
      submit.discard(form);
      return false;
    } catch (error) {
      if (form >= 0) submit.discard(form);
      this.#failure = { error }; // thrown by the generator, not by the pump
      this.sink.wakeUp();
      return false;
    }
  }

  /** Throws the signal's reason, or `PoolClosedError` once a closed pool has nothing more to give. */
  check(): void {
    this.#signal?.throwIfAborted();
    // Closed: yield what was sent, then end with PoolClosedError if inputs
    // remain (nothing new is sent).
    if (
      this.#core.status.state !== "open" && this.sink.taken === this.#sent &&
      !(this.#exhausted && this.#aheadHead === this.#ahead.length)
    ) {
      this.#core.checkOpen();
    }
  }

  /** Whether there are async inputs to prefetch. */
  get prefetching(): boolean {
    return this.#asyncInputs && !this.#exhausted;
  }

  /** Keeps up to a queue's worth of inputs of an async source at hand for the feeder. */
  async prefetch(): Promise<void> {
    const ahead = this.#ahead;
    const source = this.#source as AsyncIterator<unknown>;
    while (!this.#exhausted && ahead.length - this.#aheadHead < this.#core.capacity) {
      const next = await source.next();
      if (next.done) this.#exhausted = true;
      else ahead.push(next.value);
    }
  }

  /** Throws what sending an input threw. */
  throwFailure(): void {
    if (this.#failure !== null) throw this.#failure.error;
  }

  /** Every input was sent and every result taken. */
  done(): boolean {
    return this.#exhausted && this.#aheadHead === this.#ahead.length &&
      this.sink.taken === this.#sent;
  }

  /** Ends the run: its queued tasks are skipped, its running ones finish unobserved. */
  async end(): Promise<void> {
    const core = this.#core;
    core.submit.feeders.delete(this.feed);
    core.wakers.delete(this.sink);
    this.#signal?.removeEventListener("abort", this.#onAbort);
    core.tasks.dropSink(this.sink);
    core.idleCheck();
    if (!this.#exhausted) await this.#source.return?.();
  }
}

/**
 * Runs task `task` for each input and yields the results (see
 * `WorkerPool.prototype.map`).
 */
export async function* mapTasks<R>(
  core: PoolCore,
  task: string | TaskSpec,
  inputs: Iterable<unknown> | AsyncIterable<unknown>,
  options: MapOptions,
): AsyncGenerator<R | Error, void, undefined> {
  const run = new MapRun(core, task, inputs, options);
  const sink = run.sink;
  try {
    for (;;) {
      run.check();
      if (run.prefetching) await run.prefetch();
      core.submit.refill();
      run.throwFailure();
      // Yield every result that is ready, in order or as they came.
      let yielded = false;
      for (let seq = sink.next(); seq >= 0; seq = sink.next()) {
        const value = sink.take(seq);
        yielded = true;
        if (!sink.tookOk && !run.yieldErrors) throw value;
        yield value as R | Error;
      }
      if (run.done()) return;
      if (!yielded) {
        // Check again right before the wait: a close, terminate or abort that came
        // while the prefetch above awaited the source woke nobody.
        run.check();
        await sink.nextResult();
      }
    }
  } finally {
    await run.end();
  }
}
