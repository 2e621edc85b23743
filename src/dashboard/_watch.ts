/**
 * A dashboard's view of one queue: it reads the queue every second (one
 * round of reads, whatever the number of open pages) and keeps the last 15
 * minutes of throughput, which it derives from the counts each consumer's
 * heartbeat carries (so watching costs the queue nothing per job: no read
 * of the results stream at full speed).
 *
 * @module
 */

import type {
  ConsumerInfo,
  DeadRecord,
  OutcomeRecord,
  QueueCounts,
  RedisQueue,
  RunningJob,
} from "../redis/mod.ts";

/** Seconds of throughput kept: the chart's 15 minutes. */
export const HISTORY_SECONDS = 900;
/** How often a queue is read, ms. */
export const SAMPLE_MS = 1000;

/** Counts by state, as the dashboard and its `/metrics` name them. */
export interface StateCounts {
  waiting: number;
  delayed: number;
  blocked: number;
  held: number;
  dead: number;
  running: number;
}

/** A consumer as the dashboard shows it: its info and its recent runs per second. */
export interface ConsumerView extends ConsumerInfo {
  /** Jobs it finished per second over the last sample (succeeded + failed + retried). */
  rate: number;
}

/** What `GET /api/overview` returns. */
export interface Overview {
  queue: string;
  /** When it was read, ms since the epoch. */
  at: number;
  counts: StateCounts;
  consumers: ConsumerView[];
}

/** Everything a page shows, sent on its event stream each second. */
export interface Snapshot extends Overview {
  running: RunningJob[];
  outcomes: OutcomeRecord[];
  dead: { total: number; records: DeadRecord[] };
  /** Outcomes per second, oldest first, for the seconds from `start` (ms). */
  throughput: { start: number; succeeded: number[]; failed: number[]; retried: number[] };
}

type Totals = { succeeded: number; failed: number; retried: number };

/** Turns the queue's counts into the dashboard's states. */
function states(counts: QueueCounts, running: number): StateCounts {
  return {
    waiting: counts.queued,
    delayed: counts.delayed,
    blocked: counts.blocked,
    held: counts.processing,
    dead: counts.dead,
    running,
  };
}

/** One queue, read every second while the dashboard runs. */
export class QueueWatch {
  readonly name: string;
  readonly #queue: RedisQueue;
  /** Each consumer's totals at the last sample. */
  #last = new Map<string, Totals>();
  #lastAt = 0;
  /** Per second, oldest first: [second (ms), succeeded, failed, retried]. */
  readonly #history: Array<[number, number, number, number]> = [];
  #snapshot: Snapshot | undefined;
  /** The last read's error, if it failed (shown on the page and in the log). */
  error: string | undefined;

  constructor(queue: RedisQueue) {
    this.#queue = queue;
    this.name = queue.name;
  }

  /** The latest snapshot, if one was read. */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Reads the queue once, and records the throughput since the last read. */
  async sample(now = Date.now()): Promise<Snapshot> {
    const q = this.#queue;
    const [counts, consumers, running, outcomes, dead] = await Promise.all([
      q.counts(),
      q.consumers(),
      q.running(),
      q.outcomes({ count: 20 }),
      q.dead({ count: 50 }),
    ]);
    const views = this.#rates(consumers, now);
    const snapshot: Snapshot = {
      queue: this.name,
      at: now,
      counts: states(counts, running.length),
      consumers: views,
      running: running.slice(0, 100),
      outcomes,
      dead,
      throughput: this.#series(now),
    };
    this.#snapshot = snapshot;
    this.error = undefined;
    return snapshot;
  }

  /** Each consumer's rate since the last sample; the deltas go into the history. */
  #rates(consumers: ConsumerInfo[], now: number): ConsumerView[] {
    const seconds = this.#lastAt === 0 ? 0 : (now - this.#lastAt) / 1000;
    const next = new Map<string, Totals>();
    const sum: Totals = { succeeded: 0, failed: 0, retried: 0 };
    const views = consumers.map((c) => {
      const totals = { succeeded: c.succeeded, failed: c.failed, retried: c.retried };
      if (!c.alive) return { ...c, rate: 0 };
      next.set(c.id, totals);
      // A consumer first seen counts from its start, if that was after the last read.
      const before = this.#last.get(c.id) ??
        ((c.since ?? 0) > this.#lastAt && this.#lastAt > 0
          ? { succeeded: 0, failed: 0, retried: 0 }
          : totals);
      const delta = {
        succeeded: Math.max(0, totals.succeeded - before.succeeded),
        failed: Math.max(0, totals.failed - before.failed),
        retried: Math.max(0, totals.retried - before.retried),
      };
      sum.succeeded += delta.succeeded;
      sum.failed += delta.failed;
      sum.retried += delta.retried;
      const done = delta.succeeded + delta.failed + delta.retried;
      return { ...c, rate: seconds > 0 ? Math.round(done / seconds * 10) / 10 : 0 };
    });
    this.#last = next;
    if (this.#lastAt > 0) {
      const second = Math.floor(now / 1000) * 1000;
      const top = this.#history[this.#history.length - 1];
      if (top !== undefined && top[0] === second) {
        top[1] += sum.succeeded;
        top[2] += sum.failed;
        top[3] += sum.retried;
      } else this.#history.push([second, sum.succeeded, sum.failed, sum.retried]);
    }
    this.#lastAt = now;
    return views;
  }

  /** The last 15 minutes, a value per second (0 where nothing was read). */
  #series(now: number): Snapshot["throughput"] {
    const end = Math.floor(now / 1000) * 1000;
    const start = end - (HISTORY_SECONDS - 1) * 1000;
    while (this.#history.length > 0 && this.#history[0][0] < start) this.#history.shift();
    const series = {
      start,
      succeeded: new Array<number>(HISTORY_SECONDS).fill(0),
      failed: new Array<number>(HISTORY_SECONDS).fill(0),
      retried: new Array<number>(HISTORY_SECONDS).fill(0),
    };
    for (const [second, succeeded, failed, retried] of this.#history) {
      const i = (second - start) / 1000;
      series.succeeded[i] = succeeded;
      series.failed[i] = failed;
      series.retried[i] = retried;
    }
    return series;
  }
}
