/**
 * `taskpool <jobs.json>`: runs the jobs of a file on a pool of workers, with
 * a progress line, JSON Lines, `--dry-run`, and a stop on the first SIGINT
 * or SIGTERM (a cancel on the second, or at the end of `--grace`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type JobFile, plan } from "../jobs/mod.ts";
import { Scheduler } from "../run/scheduler.ts";
import { count, duration, err, STOP_SIGNALS } from "./_args.ts";
import { loadJobFile } from "./load.ts";
import { Reporter, showProgress } from "./report.ts";
import {
  DURATION_BUCKETS,
  type Family,
  Histogram,
  parseListen,
  renderMetrics,
  serveMetrics,
} from "../dashboard/metrics.ts";
import type { JobStatus } from "../run/types.ts";

/** The CLI's version. */
export const VERSION = "0.1.0";

/** The usage of the CLI's main command. */
export const USAGE = `Usage: taskpool [options] <jobs.json>
       taskpool push [--wait] [options] <jobs.json>   (enqueue in Redis; --help for more)
       taskpool consume [options]                    (run jobs from Redis; --help for more)
       taskpool schedules | unschedule <id>...       (recurring jobs in Redis; --help for more)
       taskpool cancel [options] <id>...             (cancel jobs in Redis, wherever; --help)
       taskpool dashboard [--queue Q]... [options]   (live dashboard of Redis queues; --help)

Runs the jobs of a JSON job file on a pool of workers.

Options:
  --workers <n>      workers, and jobs (tasks and commands together) running at once;
                     default: the file's, else the CPU count
  --capacity <n>     tasks queued in the pool beyond the running ones; default: the file's,
                     else the larger of workers * 2 and 64 (more than the pool's workers * 2:
                     a run hands tasks from one thread, and a deeper queue keeps the workers
                     busy between its turns)
  --json             one JSON object per finished job on stdout (JSON Lines)
  --events           with --json: also a line when a job starts and when its progress changes
                     ({"event":"start"|"progress", ...}, at most every 50 ms per job)
  --fail-fast        start nothing new after the first job fails for good
  --grace <time>     after a first SIGINT/SIGTERM, cancel what still runs after this ("30s");
                     default: none, what runs finishes unless a second signal comes
  --for <time>       stop after this long ("1h"), as a first signal would: for a file with
                     recurring jobs, which otherwise runs until stopped
  --metrics <addr>   serve Prometheus metrics on http://<addr>/metrics while it runs, such as
                     127.0.0.1:9464 (port 0: any free one, printed at the start)
  --dry-run          validate the file and print the plan (and the next five ticks of each
                     recurring job, in UTC and its time zone); run nothing
  --help             this text
  --version          the version

A line per finished job goes to stderr (a progress line instead on a terminal), so that stdout
holds only the JSON Lines of --json. The first SIGINT/SIGTERM starts nothing new: running jobs
finish, the rest are reported not-run; a second cancels what still runs.

A file with recurring jobs (cron, every) runs until stopped by a signal or --for; it then exits 0
if every run succeeded, else 1.

Exit codes: 0 all succeeded, 1 some failed, 2 invalid input or usage, 130 interrupted.`;

/** Runs `taskpool [options] <jobs.json>`; resolves with the exit code. */
export async function run(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      allowPositionals: true,
      options: {
        workers: { type: "string" },
        capacity: { type: "string" },
        json: { type: "boolean", default: false },
        events: { type: "boolean", default: false },
        "fail-fast": { type: "boolean", default: false },
        grace: { type: "string" },
        for: { type: "string" },
        metrics: { type: "string" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", default: false },
        version: { type: "boolean", default: false },
      },
    });
  } catch (error) {
    err(`taskpool: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = flags;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(`taskpool ${VERSION}`);
    return 0;
  }
  if (positionals.length !== 1) {
    const what = positionals.length === 0 ? "no job file given" : "give one job file";
    err(`taskpool: ${what}\n\n${USAGE}`);
    return 2;
  }
  let workers, capacity, grace, forMs, listen;
  try {
    workers = count("workers", values.workers);
    capacity = count("capacity", values.capacity);
    grace = duration("grace", values.grace);
    forMs = duration("for", values.for);
    listen = values.metrics === undefined ? undefined : parseListen(values.metrics);
    if (values.events && !values.json) {
      throw new RangeError("--events adds lines to --json's: give both");
    }
  } catch (error) {
    err(`taskpool: ${(error as Error).message}`);
    return 2;
  }
  const file = await loadJobFile(positionals[0], "taskpool", "run");
  if (file === null) return 2;
  if (values["dry-run"]) {
    printPlan(file);
    return 0;
  }

  return await runFile(file, {
    workers,
    capacity,
    grace,
    forMs,
    listen,
    json: values.json,
    events: values.events,
    failFast: values["fail-fast"],
  });
}

/** The order the one-off jobs would start in, by level, and the next five ticks of each recurring one. */
function printPlan(file: JobFile): void {
  const oneOff = { ...file, jobs: file.jobs.filter((job) => job.schedule === undefined) };
  if (oneOff.jobs.length > 0 || oneOff.jobs.length === file.jobs.length) {
    const levels = plan(oneOff);
    console.log(
      `${oneOff.jobs.length} jobs in ${levels.length} level${levels.length === 1 ? "" : "s"}:`,
    );
    levels.forEach((ids, level) => console.log(`  ${level + 1}. ${ids.join(", ")}`));
  }
  for (const job of file.jobs) {
    const schedule = job.schedule;
    if (schedule === undefined) continue;
    const zone = schedule.kind === "cron" ? schedule.timezone : "UTC";
    console.log(`${job.id} (${schedule.kind} ${schedule}${zone === "UTC" ? "" : `, ${zone}`}):`);
    const local = new Intl.DateTimeFormat("sv-SE", {
      timeZone: zone,
      dateStyle: "short",
      timeStyle: "medium",
    });
    let tick = new Date();
    for (let i = 0; i < 5; i++) {
      tick = schedule.next(tick);
      const inZone = zone === "UTC" ? "" : `  (${local.format(tick)} ${zone})`;
      console.log(`  ${tick.toISOString()}${inZone}`);
    }
  }
}

/** Runs a loaded job file to its end, or to a stop by signals; resolves with the exit code. */
async function runFile(
  file: JobFile,
  options: {
    workers?: number;
    capacity?: number;
    grace?: number;
    forMs?: number;
    listen?: { hostname: string; port: number };
    json: boolean;
    events: boolean;
    failFast: boolean;
  },
): Promise<number> {
  const { workers, capacity, grace, forMs, listen } = options;
  const started = performance.now();
  const finished = new Map<JobStatus, number>(
    (["succeeded", "failed", "skipped", "cancelled", "not-run"] as const).map((s) => [s, 0]),
  );
  const durations = new Histogram(DURATION_BUCKETS);
  const recurring = file.jobs.some((job) => job.schedule !== undefined);
  const live = Deno.stderr.isTerminal() && !options.json;
  const box: { scheduler?: Scheduler } = {};
  const reporter = new Reporter({
    total: file.jobs.length,
    json: options.json,
    live,
    color: live && !Deno.env.get("NO_COLOR"),
    running: () => box.scheduler?.running ?? 0,
    waiting: () => box.scheduler?.waiting ?? 0,
    nextTick: () => box.scheduler?.nextTick,
    longest: () => {
      // Jobs in the order they started: the first one still running is the longest.
      for (const id of running.keys()) return `${id} ${showProgress(running.get(id))}`;
    },
  });
  // Only a live line or --events wants starts and progress: a plain run keeps its hot path.
  const watch = live || options.events;
  const running = new Map<string, unknown>();
  const scheduler = box.scheduler = new Scheduler(file, {
    workers,
    capacity,
    failFast: options.failFast,
    onStart: watch
      ? (job, attempt) => {
        running.delete(job.id); // a retry starts again at the end of the order
        running.set(job.id, undefined);
        if (options.events) {
          reporter.event({ event: "start", id: job.id, attempt, at: new Date().toISOString() });
        }
      }
      : undefined,
    onProgress: watch
      ? (job, value) => {
        if (running.has(job.id)) running.set(job.id, value);
        if (options.events) reporter.event({ event: "progress", id: job.id, value });
      }
      : undefined,
    onFinish: (result) => {
      running.delete(result.id);
      finished.set(result.status, finished.get(result.status)! + 1);
      if (result.duration !== undefined) durations.observe(result.duration / 1000);
      reporter.finished(result);
    },
  });
  const metrics = listen === undefined ? undefined : await serveMetrics(
    listen,
    () => renderMetrics(runFamilies(scheduler, finished, durations, started)),
  );
  if (metrics !== undefined) {
    reporter.note(`taskpool: metrics on http://${listen!.hostname}:${metrics.port}/metrics`);
  }

  let interrupted = 0;
  let stoppedOnTime = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = (why: string) => {
    scheduler.stop(); // withdraws what no worker started: only running jobs remain
    const running = scheduler.running;
    reporter.note(
      `taskpool: ${why}: ${running} running job${
        running === 1 ? "" : "s"
      } finishing, nothing new starts (signal again to cancel ${running === 1 ? "it" : "them"})`,
    );
    if (grace !== undefined) graceTimer = setTimeout(() => scheduler.cancel(), grace);
  };
  const onSignal = () => {
    interrupted++;
    if (interrupted === 1 && !stoppedOnTime) stop("stopping");
    else {
      reporter.note("taskpool: cancelling what still runs");
      scheduler.cancel();
    }
  };
  const forTimer = forMs === undefined ? undefined : setTimeout(() => {
    stoppedOnTime = true;
    if (interrupted === 0) stop(`stopping after --for ${forMs} ms`);
  }, forMs);
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  let results;
  try {
    results = await scheduler.run();
  } finally {
    clearTimeout(graceTimer);
    clearTimeout(forTimer);
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
    await metrics?.server.shutdown();
  }
  reporter.summary();
  // A file with recurring jobs runs until stopped: a stop is its end, not an interruption.
  if (interrupted > 0 && !recurring) return 130;
  return results.every((r) => r.status === "succeeded" || isTick(r.id) && !failed(r.status))
    ? 0
    : 1;
}

/**
 * Whether a result is a run of a recurring job (`<job id>@<tick>`): a tick
 * skipped (overlap) or not started (the stop) is not a failure.
 */
function isTick(id: string): boolean {
  return /@\d{4}-\d\d-\d\dT/.test(id);
}

function failed(status: string): boolean {
  return status === "failed" || status === "cancelled";
}

/** What `--metrics` serves for a local run: outcomes, durations, running and waiting jobs. */
function runFamilies(
  scheduler: Scheduler,
  finished: Map<JobStatus, number>,
  durations: Histogram,
  started: number,
): Family[] {
  return [
    {
      name: "taskpool_jobs_total",
      help: "Jobs (and runs of recurring jobs) of this run that ended, by outcome.",
      type: "counter",
      samples: [...finished].map(([status, value]) => ({ labels: { status }, value })),
    },
    {
      name: "taskpool_job_duration_seconds",
      help: "How long the jobs of this run that ended ran, seconds.",
      type: "histogram",
      samples: durations.samples({}),
    },
    {
      name: "taskpool_jobs_running",
      help: "Jobs running now.",
      type: "gauge",
      samples: [{ labels: {}, value: scheduler.running }],
    },
    {
      name: "taskpool_jobs_waiting",
      help: "Jobs ready to run, waiting for a worker.",
      type: "gauge",
      samples: [{ labels: {}, value: scheduler.waiting }],
    },
    {
      name: "taskpool_process_uptime_seconds",
      help: "Seconds since this run started.",
      type: "gauge",
      samples: [{ labels: {}, value: (performance.now() - started) / 1000 }],
    },
  ];
}
