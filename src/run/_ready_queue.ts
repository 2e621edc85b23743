/**
 * The ready jobs of a run, highest priority first, then file order.
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";

/** What the ready queue needs of a job's state: the job, and its position in the file. */
export interface Ready {
  readonly job: Job;
  /** Its position in the file's jobs. */
  readonly at: number;
}

/**
 * The ready jobs (as positions in the file), higher priority first, then
 * file order. Most are ready at the start, and they usually are in that
 * order already (one priority): then this reads the file's own job array
 * with a cursor, skipping the jobs that wait, with no copy of it. Jobs that
 * become ready later (dependents, retries) go through a heap. A heap of all
 * of them took ~23 ms of sampled main-thread time in profiles of the
 * 10,000-job bench (~13 levels per pop).
 */
export class ReadyQueue {
  readonly #jobs: Job[];
  /** The positions of the jobs ready at the start, sorted, when file order is not their order. */
  #sorted: number[] | null = null;
  /** Next place to look in the file (or in `#sorted`). */
  #cursor = 0;
  readonly #later = new Heap();

  constructor(jobs: Job[]) {
    this.#jobs = jobs;
    this.#cursor = jobs.length; // nothing until start()
  }

  /** Takes the jobs that wait for nothing as ready. */
  start(): void {
    const jobs = this.#jobs;
    this.#cursor = 0;
    // File order is their order unless a priority rises along the file.
    let last = Infinity;
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i];
      if (waitsAtStart(job)) continue;
      if (job.priority > last) {
        const sorted: number[] = [];
        for (let k = 0; k < jobs.length; k++) if (!waitsAtStart(jobs[k])) sorted.push(k);
        sorted.sort((a, b) => (rank(jobs[a], a, jobs[b], b) ? -1 : 1));
        this.#sorted = sorted;
        return;
      }
      last = job.priority;
    }
  }

  /** The position of the first job that is ready, or -1 if none is. */
  peek(): number {
    const first = this.#first();
    const later = this.#later.peek();
    if (first < 0) return later === undefined ? -1 : later.at;
    if (later === undefined || rank(this.#jobs[first], first, later.job, later.at)) return first;
    return later.at;
  }

  /** Takes the job `peek()` named. */
  pop(): void {
    const first = this.#first();
    const later = this.#later.peek();
    if (
      first >= 0 && (later === undefined || rank(this.#jobs[first], first, later.job, later.at))
    ) {
      this.#cursor++;
    } else this.#later.pop();
  }

  /** Adds a job that became ready. */
  push(entry: Ready): void {
    this.#later.push(entry);
  }

  /** The next job ready at the start that has not been taken, or -1; moves the cursor to it. */
  #first(): number {
    const sorted = this.#sorted;
    if (sorted !== null) return this.#cursor < sorted.length ? sorted[this.#cursor] : -1;
    const jobs = this.#jobs;
    let at = this.#cursor;
    while (at < jobs.length && waitsAtStart(jobs[at])) at++;
    this.#cursor = at;
    return at < jobs.length ? at : -1;
  }
}

/** A binary heap of jobs: higher priority first, then file order (also a group's held jobs: `_groups.ts`). */
export class Heap {
  readonly #items: Ready[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): Ready | undefined {
    return this.#items[0];
  }

  push(entry: Ready): void {
    // Moves the hole up, not the entry by swaps: no temporaries per level.
    const items = this.#items;
    let i = items.length;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, items[parent])) break;
      items[i] = items[parent];
      i = parent;
    }
    items[i] = entry;
  }

  pop(): Ready | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    const n = items.length;
    if (n > 0 && last !== undefined) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const child = l + 1 < n && before(items[l + 1], items[l]) ? l + 1 : l;
        if (!before(items[child], last)) break;
        items[i] = items[child];
        i = child;
      }
      items[i] = last;
    }
    return top;
  }
}

/** Whether entry `a` goes before entry `b`. */
function before(a: Ready, b: Ready): boolean {
  return rank(a.job, a.at, b.job, b.at);
}

/**
 * Whether job `a` (at position `atA` of the file's jobs) goes before job `b`
 * among ready jobs: higher priority, then file order (the position, which
 * is `index` unless the jobs of a file were filtered or reordered).
 */
function rank(a: Job, atA: number, b: Job, atB: number): boolean {
  const p = a.priority;
  const q = b.priority;
  return p > q || (p === q && atA < atB);
}

/**
 * Whether a job is not ready when the run starts: it waits for other jobs,
 * for a time (`delay`, `at`), or it recurs (its runs come on their ticks).
 * The time fields are absent from a job without them: three reads of
 * `undefined`.
 */
export function waitsAtStart(job: Job): boolean {
  return job.after.length > 0 || job.delay !== undefined || job.at !== undefined ||
    job.schedule !== undefined;
}
