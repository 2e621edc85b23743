/**
 * How many jobs a consumer holds: a fixed `workers + capacity` when the user
 * set `capacity`, else a depth that follows the jobs. A worker that finishes
 * a job should find the next one already here; the next arrives a round
 * trip after the consumer asks for it. So the consumer holds, beyond its
 * running jobs, about as many as its workers finish in one round trip
 * (`workers × round trip / run time`), never fewer than `2 × workers` (the
 * fixed default before) and never more than {@linkcode MAX_AUTO_EXTRA}
 * (or `2 × workers` when that is more). Short jobs then go many per round
 * trip (one ACK call records the outcomes of a turn and takes as many next
 * entries); long jobs keep the shallow depth, so that one consumer does not
 * hoard work that an idle one could run.
 *
 * @module
 */

/** The most jobs an automatic depth queues beyond the running ones (unless `2 × workers` is more). */
export const MAX_AUTO_EXTRA = 64;
/** Weight of a new sample in the moving averages of run time and round trip. */
const ALPHA = 0.1;

/**
 * The jobs to hold beyond the running ones, for an automatic depth.
 *
 * @param workers The consumer's workers.
 * @param roundTripMs The time from asking Redis for an entry to having it (average).
 * @param runMs How long a job runs (average).
 * @returns From `2 × workers` to `max(2 × workers, MAX_AUTO_EXTRA)`.
 *
 * @example Short jobs fill the depth; long ones keep it shallow
 * ```ts
 * import { autoExtra, MAX_AUTO_EXTRA } from "./_depth.ts";
 * import assert from "node:assert";
 *
 * assert.strictEqual(autoExtra(1, 0.3, 0.01), 30);
 * assert.strictEqual(autoExtra(1, 0.3, 0.0001), MAX_AUTO_EXTRA);
 * assert.strictEqual(autoExtra(2, 0.3, 50), 4);
 * ```
 */
export function autoExtra(workers: number, roundTripMs: number, runMs: number): number {
  const least = 2 * workers;
  const most = Math.max(least, MAX_AUTO_EXTRA);
  const wanted = Math.ceil(workers * roundTripMs / Math.max(runMs, 1e-6));
  return Math.min(most, Math.max(least, wanted));
}

/** A consumer's depth: how many jobs it may hold now. */
export class Depth {
  /** The most jobs held now: `workers` plus what may wait in the pool. */
  limit: number;
  /** The most jobs that may ever wait in the pool (its queue's capacity). */
  readonly poolCapacity: number;
  readonly #workers: number;
  readonly #auto: boolean;
  #runMs = -1;
  #roundTripMs = -1;

  /**
   * @param workers The consumer's workers.
   * @param capacity The user's fixed capacity, or undefined for an automatic depth.
   */
  constructor(workers: number, capacity: number | undefined) {
    this.#workers = workers;
    this.#auto = capacity === undefined;
    const start = capacity ?? 2 * workers;
    this.limit = workers + start;
    this.poolCapacity = capacity ?? Math.max(start, MAX_AUTO_EXTRA);
  }

  /** A job ran `ms`; true if the limit grew (the taker may take more). */
  ran(ms: number): boolean {
    this.#runMs = this.#runMs < 0 ? ms : this.#runMs + ALPHA * (ms - this.#runMs);
    return this.#update();
  }

  /** A call that took entries answered after `ms`; true if the limit grew. */
  roundTrip(ms: number): boolean {
    this.#roundTripMs = this.#roundTripMs < 0
      ? ms
      : this.#roundTripMs + ALPHA * (ms - this.#roundTripMs);
    return this.#update();
  }

  #update(): boolean {
    if (!this.#auto || this.#runMs < 0 || this.#roundTripMs < 0) return false;
    const limit = this.#workers + autoExtra(this.#workers, this.#roundTripMs, this.#runMs);
    const grew = limit > this.limit;
    this.limit = limit;
    return grew;
  }
}
