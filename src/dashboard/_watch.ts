/**
 * A dashboard's view of one queue: it reads the queue every second (one
 * round of reads, whatever the number of open pages) and keeps the last 15
 * minutes of outcomes per second by status, counted from the results
 * stream itself (its own count of records, and the newest 200 of them for
 * the split by status: two commands a second at any rate).
 *
 * @module
 */

import type {
  ConsumerInfo,
  DeadRecord,
  GroupInfo,
  OutcomeMark,
  OutcomeRecord,
  QueueCounts,
  RedisQueue,
  RunningJob,
} from "../redis/mod.ts";

/** Seconds of throughput kept: the chart's 15 minutes. */
export const HISTORY_SECONDS = 900;
/** How often a queue is read, ms. */
export const SAMPLE_MS = 1000;
/** The statuses the chart draws, each a line. */
export const CHART_STATUSES = ["succeeded", "failed", "skipped", "cancelled"] as const;
/** Characters of untrusted text (errors, entries) a snapshot carries per item; details have all. */
const SHORT = 300;

/** Counts by state, as the dashboard and its `/metrics` name them. */
export interface StateCounts {
  waiting: number;
  delayed: number;
  blocked: number;
  held: number;
  dead: number;
}

/** A consumer as the dashboard shows it: its info and its recent runs per second. */
export interface ConsumerView extends ConsumerInfo {
  /** Jobs it finished per second since the last read (succeeded, failed, retried, cancelled). */
  rate: number;
}

/** What `GET /api/overview` returns. */
export interface Overview {
  queue: string;
  /** When it was read, ms since the epoch. */
  at: number;
  counts: StateCounts;
  consumers: ConsumerView[];
  /** The queue's groups: limits, jobs held back (`waiting`) and let in (`running`). */
  groups: GroupInfo[];
}

/** Everything a page shows, sent on its event stream each second. */
export interface Snapshot extends Overview {
  /** Running jobs as their consumers report them; `orphaned` when that consumer is dead. */
  running: Array<RunningJob & { orphaned?: boolean }>;
  /** The latest outcomes, without results and output (the detail view has them). */
  outcomes: OutcomeRecord[];
  dead: { total: number; records: DeadRecord[] };
  /** Outcomes per second by status, oldest first, for the seconds from `start` (ms). */
  throughput: { start: number } & Record<(typeof CHART_STATUSES)[number], number[]>;
}

type Totals = { done: number; at: number };

function short(text: string): string {
  return text.length <= SHORT ? text : `${text.slice(0, SHORT)}…`;
}

/** Turns the queue's counts into the dashboard's states. */
function states(counts: QueueCounts): StateCounts {
  return {
    waiting: counts.queued,
    delayed: counts.delayed,
    blocked: counts.blocked,
    held: counts.processing,
    dead: counts.dead,
  };
}

/** One queue, read every second while the dashboard runs. */
export class QueueWatch {
  readonly name: string;
  readonly #queue: RedisQueue;
  /** Each consumer's jobs done and when it was read, for its rate. */
  #last = new Map<string, Totals>();
  /** Where the results stream was at the last read. */
  #mark: OutcomeMark | undefined;
  /** Per second, oldest first: the second (ms) and its counts by status. */
  readonly #history: Array<[number, Record<string, number>]> = [];
  #snapshot: Snapshot | undefined;
  /** The last read's error while it fails (the snapshot is then as old as `snapshot.at`). */
  error: string | undefined;

  constructor(queue: RedisQueue) {
    this.#queue = queue;
    this.name = queue.name;
  }

  /** The latest snapshot, if one was read. */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Reads the queue once, and records the outcomes since the last read. */
  async sample(now = Date.now()): Promise<Snapshot> {
    const q = this.#queue;
    const [counts, consumers, running, outcomes, dead, recorded, groups] = await Promise.all([
      q.counts(),
      q.consumers(),
      q.running(),
      q.outcomes({ count: 20 }),
      q.dead({ count: 50 }),
      q.outcomeCounts(this.#mark),
      q.groups(),
    ]);
    if (this.#mark !== undefined) this.#record(now, recorded.byStatus);
    this.#mark = recorded.mark;
    const alive = new Set(consumers.filter((c) => c.alive).map((c) => c.id));
    const snapshot: Snapshot = {
      queue: this.name,
      at: now,
      counts: states(counts),
      consumers: this.#rates(consumers, now),
      groups,
      running: running.slice(0, 100).map((job) =>
        alive.has(job.consumer) ? job : { ...job, orphaned: true }
      ),
      outcomes: outcomes.map(({ result: _, output: __, ...rest }) => ({
        ...rest,
        ...(rest.error === undefined ? {} : { error: short(rest.error) }),
      })),
      dead: {
        total: dead.total,
        records: dead.records.map((d) => ({ ...d, entry: short(d.entry), error: short(d.error) })),
      },
      throughput: this.#series(now),
    };
    this.#snapshot = snapshot;
    this.error = undefined;
    return snapshot;
  }

  /** Each consumer's jobs per second since it was last read. */
  #rates(consumers: ConsumerInfo[], now: number): ConsumerView[] {
    const next = new Map<string, Totals>();
    const views = consumers.map((c) => {
      if (!c.alive) return { ...c, rate: 0 };
      const done = c.succeeded + c.failed + c.retried + c.cancelled;
      const before = this.#last.get(c.id);
      next.set(c.id, { done, at: now });
      const seconds = before === undefined ? 0 : (now - before.at) / 1000;
      const rate = seconds > 0 ? Math.max(0, done - before!.done) / seconds : 0;
      return { ...c, rate: Math.round(rate * 10) / 10 };
    });
    this.#last = next;
    return views;
  }

  /** Adds the outcomes of one read to the second it ended in. */
  #record(now: number, byStatus: Record<string, number>): void {
    const second = Math.floor(now / 1000) * 1000;
    const top = this.#history[this.#history.length - 1];
    const into = top !== undefined && top[0] === second ? top[1] : {};
    for (const [status, n] of Object.entries(byStatus)) into[status] = (into[status] ?? 0) + n;
    if (into !== top?.[1]) this.#history.push([second, into]);
  }

  /** The last 15 minutes, a value per second and status (0 where nothing was read). */
  #series(now: number): Snapshot["throughput"] {
    const end = Math.floor(now / 1000) * 1000;
    const start = end - (HISTORY_SECONDS - 1) * 1000;
    while (this.#history.length > 0 && this.#history[0][0] < start) this.#history.shift();
    const series = { start } as Snapshot["throughput"];
    for (const status of CHART_STATUSES) {
      series[status] = new Array<number>(HISTORY_SECONDS).fill(0);
    }
    for (const [second, counts] of this.#history) {
      const i = (second - start) / 1000;
      for (const status of CHART_STATUSES) series[status][i] = counts[status] ?? 0;
    }
    return series;
  }
}
