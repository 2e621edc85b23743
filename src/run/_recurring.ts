/**
 * The ticks of a run's recurring jobs (`cron` or `every`): a timer per job
 * at its next fire time, and what a tick does when it comes.
 *
 * - **Overlap.** A tick whose job's previous run still runs is skipped
 *   (`"skip"`, the default: reported `skipped`), waits for it (`"queue"`),
 *   or runs beside it (`"allow"`).
 * - **Catch-up.** A timer that fires a whole period late (the machine
 *   slept, or the process was stopped) missed ticks: `"skip"` (the default)
 *   runs none of them and waits for the next tick; `"one"` runs one run for
 *   all of them, as of the latest. Ticks from before the run began never
 *   count: a local run has no memory of earlier runs.
 *
 * @module
 */

import type { Job } from "../jobs/mod.ts";
import type { Clock } from "./clock.ts";
import { atInstant } from "./_timer.ts";

/** What the ticks need of the scheduler. */
export interface TickHost {
  readonly clock: Clock;
  /** Starts a run of recurring `job` for the tick at `tick` (ms since the epoch). */
  startRun(job: Job, tick: number): void;
  /** Reports the tick at `tick` of `job` skipped: its previous run still runs. */
  skipTick(job: Job, tick: number): void;
}

/** The ticks of one recurring job. */
interface Ticking {
  readonly job: Job;
  /** Runs started and not ended. */
  active: number;
  /** Ticks waiting for the previous run to end (`overlap: "queue"`). */
  readonly queued: number[];
  /** The next tick armed, ms since the epoch. */
  next: number;
  cancel: () => void;
}

/** The recurring jobs of one run. */
export class Ticks {
  readonly #host: TickHost;
  readonly #jobs = new Map<Job, Ticking>();
  #stopped = false;

  /**
   * @param jobs The run's recurring jobs (each has a `schedule`).
   * @param host The scheduler.
   */
  constructor(jobs: Job[], host: TickHost) {
    this.#host = host;
    for (const job of jobs) {
      this.#jobs.set(job, { job, active: 0, queued: [], next: NaN, cancel: () => {} });
    }
  }

  /** Whether there are recurring jobs whose ticks still come. */
  get live(): boolean {
    return !this.#stopped && this.#jobs.size > 0;
  }

  /** The next tick of any job, ms since the epoch; `undefined` if none is armed. */
  get nextTick(): number | undefined {
    let next: number | undefined;
    for (const t of this.#jobs.values()) if (next === undefined || t.next < next) next = t.next;
    return this.#stopped ? undefined : next;
  }

  /** Arms the first tick of every job: the first fire time after now. */
  start(): void {
    const now = this.#host.clock.now();
    for (const t of this.#jobs.values()) this.#arm(t, now);
  }

  /**
   * No tick comes any more: timers are cleared. Returns the ticks that were
   * waiting for a previous run (`overlap: "queue"`): they never start.
   */
  stop(): Array<[Job, number]> {
    this.#stopped = true;
    const dropped: Array<[Job, number]> = [];
    for (const t of this.#jobs.values()) {
      t.cancel();
      for (const tick of t.queued.splice(0)) dropped.push([t.job, tick]);
    }
    return dropped;
  }

  /** A run of recurring `job` ended: a tick that waited for it starts now. */
  runEnded(job: Job): void {
    const t = this.#jobs.get(job);
    if (t === undefined) return;
    t.active--;
    const tick = t.queued.shift();
    if (tick !== undefined && !this.#stopped) this.#run(t, tick);
  }

  /** Sets the timer for the first tick strictly after `after`. */
  #arm(t: Ticking, after: number): void {
    if (this.#stopped) return;
    const next = t.job.schedule!.next(new Date(after)).getTime();
    t.next = next;
    t.cancel = atInstant(this.#host.clock, next, () => this.#fire(t, next));
  }

  #fire(t: Ticking, tick: number): void {
    if (this.#stopped) return;
    const now = this.#host.clock.now();
    const schedule = t.job.schedule!;
    const following = schedule.next(new Date(tick)).getTime();
    if (following <= now) {
      // A whole period late: the ticks since were missed.
      if (t.job.catchUp === "one") this.#tick(t, latestBefore(schedule, following, now));
    } else this.#tick(t, tick);
    this.#arm(t, Math.max(tick, now));
  }

  #tick(t: Ticking, tick: number): void {
    const overlap = t.job.overlap ?? "skip";
    if (t.active > 0 && overlap === "skip") this.#host.skipTick(t.job, tick);
    else if ((t.active > 0 || t.queued.length > 0) && overlap === "queue") t.queued.push(tick);
    else this.#run(t, tick);
  }

  #run(t: Ticking, tick: number): void {
    t.active++;
    this.#host.startRun(t.job, tick);
  }
}

/** The latest tick of `schedule` at or before `now`, starting from tick `from` (≤ now). */
function latestBefore(schedule: NonNullable<Job["schedule"]>, from: number, now: number): number {
  if (schedule.kind === "every") return now - (now % schedule.interval); // epoch-aligned
  let latest = from;
  for (let next = schedule.next(new Date(latest)).getTime(); next <= now;) {
    latest = next;
    next = schedule.next(new Date(next)).getTime();
  }
  return latest;
}
