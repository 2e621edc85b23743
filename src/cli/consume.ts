/**
 * `taskpool consume`: takes jobs from a Redis queue and runs them on a pool
 * of workers until stopped.
 *
 * @module
 */

import { count, duration, STOP_SIGNALS } from "./_args.ts";
import { COMMON_USAGE, connect, type Flags, queueCommand, withFlags } from "./_queue.ts";
import { Reporter } from "./report.ts";
import {
  DURATION_BUCKETS,
  type Family,
  Histogram,
  parseListen,
  renderMetrics,
  serveMetrics,
} from "../dashboard/metrics.ts";
import type { RedisConsumer } from "../redis/mod.ts";

const USAGE = `Usage: taskpool consume [options]

Takes jobs from a Redis list and runs them on a pool of workers, until
stopped. Run one per machine; they share the queue. The first SIGINT or
SIGTERM takes no more jobs and finishes the held ones; a second exits at
once, leaving them for another consumer to recover.

Options:
${COMMON_USAGE}
  --workers <n>      workers; default: the CPU count
  --capacity <n>     tasks queued in the pool beyond the running ones; the consumer holds at
                     most workers + capacity jobs (default: automatic, from workers * 2 for
                     long jobs up to 64 for jobs much shorter than a Redis round trip)
  --base <dir>       where relative task modules and command directories resolve; default: .
  --heartbeat <time> a consumer silent this long is presumed dead ("10s", the default)
  --grace <time>     after the first signal, how long to keep trying to record the outcomes
                     of held jobs when Redis does not answer ("30s", the default); holding
                     nothing, the consumer ends at once
  --metrics <addr>   serve Prometheus metrics on http://<addr>/metrics, such as
                     127.0.0.1:9464 (port 0: any free one, printed at the start)
  --help             this text

Exit codes: 0 stopped after finishing its jobs, 1 a Redis failure (or outcomes left unrecorded),
2 usage, 130 exited at once.`;

/** Runs `taskpool consume …`; resolves with the exit code. */
export function consume(args: string[]): Promise<number> {
  return queueCommand("consume", USAGE, args, {
    workers: { type: "string" },
    capacity: { type: "string" },
    base: { type: "string" },
    heartbeat: { type: "string" },
    grace: { type: "string" },
    metrics: { type: "string" },
  }, consumeWith);
}

async function consumeWith(values: Flags): Promise<number> {
  const workers = count("workers", values.workers);
  const capacity = count("capacity", values.capacity);
  const heartbeat = duration("heartbeat", values.heartbeat, 100);
  const grace = duration("grace", values.grace);
  const listen = typeof values.metrics === "string" ? parseListen(values.metrics) : undefined;
  const durations = new Histogram(DURATION_BUCKETS);
  const started = performance.now();
  let base = Deno.cwd();
  if (typeof values.base === "string") {
    base = values.base.startsWith("/") ? values.base : `${Deno.cwd()}/${values.base}`;
    try {
      if (!Deno.statSync(base).isDirectory) throw new Error();
    } catch {
      throw new TypeError(`--base must be a directory, got "${values.base}"`);
    }
  }
  const queue = await connect(values);
  queue.close(); // connecting checked the URL; the consumer has its own connections
  const reporter = new Reporter({
    total: 0,
    json: values.json === true,
    live: false,
    color: Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"),
    running: () => 0,
  });
  const consumer = queue.consume({
    workers,
    capacity,
    base,
    heartbeat,
    grace,
    onFinish: (result) => {
      if (result.duration !== undefined) durations.observe(result.duration / 1000);
      reporter.finished(result);
    },
    onRetry: (job, attempt, error) =>
      reporter.note(`retry ${job.id} (attempt ${attempt} failed: ${error})`),
    onRecover: (moved, gone) =>
      reporter.note(`recovered ${moved} job(s) of dead consumer(s) ${gone.join(", ")}`),
    onWarning: (message) => reporter.note(`taskpool consume: ${withFlags(message)}`),
  });
  reporter.note(`taskpool consume: ${consumer.id} consuming "${queue.name}"`);
  const metrics = listen === undefined ? undefined : await serveMetrics(
    listen,
    () => renderMetrics(consumerFamilies(queue.name, consumer, durations, started)),
  );
  if (metrics !== undefined) {
    reporter.note(
      `taskpool consume: metrics on http://${listen!.hostname}:${metrics.port}/metrics`,
    );
  }
  let interrupted = 0;
  const onSignal = () => {
    interrupted++;
    if (interrupted === 1) {
      reporter.note(
        `taskpool consume: stopping: no new jobs; finishing the ${consumer.held} held (again to exit at once)`,
      );
      consumer.stop();
    } else {
      reporter.note("taskpool consume: exiting at once; held jobs are left for recovery");
      consumer.cancel();
    }
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  let unrecorded: string[];
  try {
    const stats = await consumer.done;
    unrecorded = stats.unrecorded;
    reporter.summary();
    reporter.note(
      `taskpool consume: took ${stats.taken}: ${stats.succeeded} succeeded, ${stats.failed} failed, ` +
        `${stats.malformed} malformed, ${stats.retried} retried; recovered ${stats.recovered}`,
    );
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
    await metrics?.server.shutdown();
  }
  if (unrecorded.length > 0) {
    reporter.note(
      `taskpool consume: could not record the outcome of ${
        unrecorded.join(", ")
      } before the grace ran out; ` +
        `they stay in "${queue.name}:processing:${consumer.id}" for another consumer to recover`,
    );
    return 1;
  }
  return interrupted > 1 ? 130 : 0;
}

/** What `--metrics` serves for one consumer: its counters, durations, held jobs and workers. */
function consumerFamilies(
  queue: string,
  consumer: RedisConsumer,
  durations: Histogram,
  started: number,
): Family[] {
  const stats = consumer.stats;
  const workers = consumer.workers;
  return [
    {
      name: "taskpool_jobs_total",
      help: "Jobs this consumer finished, by outcome (retried: failed attempts scheduled again).",
      type: "counter",
      samples: (["succeeded", "failed", "retried", "malformed"] as const).map((status) => ({
        labels: { queue, status },
        value: stats[status],
      })),
    },
    {
      name: "taskpool_job_duration_seconds",
      help: "How long the jobs this consumer finished ran, seconds.",
      type: "histogram",
      samples: durations.samples({ queue }),
    },
    {
      name: "taskpool_jobs_held",
      help: "Jobs this consumer holds now: running, queued in its pool, or being recorded.",
      type: "gauge",
      samples: [{ labels: { queue }, value: consumer.held }],
    },
    {
      name: "taskpool_pool_workers",
      help: "This consumer's pool workers, by state.",
      type: "gauge",
      samples: [
        { labels: { state: "idle" }, value: workers.idle },
        { labels: { state: "running" }, value: workers.running },
      ],
    },
    {
      name: "taskpool_process_uptime_seconds",
      help: "Seconds since this consumer process started consuming.",
      type: "gauge",
      samples: [{ labels: {}, value: (performance.now() - started) / 1000 }],
    },
  ];
}
