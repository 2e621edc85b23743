/**
 * `taskpool consume` and `taskpool push`: the command line of the Redis
 * queue.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type JobFile, parseDuration } from "../jobs/mod.ts";
import { loadJobFile } from "./load.ts";
import { RedisConnectionError, RedisError, RedisQueue } from "../redis/mod.ts";
import { Reporter } from "./report.ts";

const COMMON = `  --redis <url>      redis://[user[:password]@]host[:port][/db] (rediss:// for TLS);
                     default: $TASKPOOL_REDIS_URL
  --queue <name>     the list that holds the jobs; default: jobs
  --json             one JSON object per finished job on stdout (JSON Lines)`;

const USAGE = {
  consume: `Usage: taskpool consume [options]

Takes jobs from a Redis list and runs them on a pool of workers, until
stopped. Run one per machine; they share the queue. The first SIGINT or
SIGTERM takes no more jobs and finishes the held ones; a second exits at
once, leaving them for another consumer to recover.

Options:
${COMMON}
  --workers <n>      workers; default: the CPU count
  --capacity <n>     tasks queued in the pool beyond the running ones (default: workers * 2);
                     the consumer holds at most workers + capacity jobs
  --base <dir>       where relative task modules and command directories resolve; default: .
  --heartbeat <time> a consumer silent this long is presumed dead ("10s", the default)
  --help             this text

Exit codes: 0 stopped after finishing its jobs, 1 a Redis failure, 2 usage, 130 exited at once.`,
  push: `Usage: taskpool push [options] <jobs.json>

Validates a job file and enqueues its jobs in a Redis list for consumers.
Dependencies ("after") are honoured across consumers.

Options:
${COMMON}
  --wait             wait for every job's outcome and exit like a local run
  --help             this text

Exit codes: 0 pushed (with --wait: all succeeded), 1 some failed or a Redis failure,
2 invalid input or usage, 130 interrupted while waiting (the jobs stay queued).`,
};

const encoder = new TextEncoder();
const err = (text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n"));

/** Runs `taskpool consume …` or `taskpool push …`; resolves with the exit code. */
export async function main(command: "consume" | "push", args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      allowPositionals: command === "push",
      options: {
        redis: { type: "string" },
        queue: { type: "string", default: "jobs" },
        json: { type: "boolean", default: false },
        help: { type: "boolean", default: false },
        ...(command === "consume"
          ? {
            workers: { type: "string" },
            capacity: { type: "string" },
            base: { type: "string" },
            heartbeat: { type: "string" },
          } as const
          : { wait: { type: "boolean", default: false } } as const),
      },
    });
  } catch (error) {
    err(`taskpool ${command}: ${(error as Error).message}\n\n${USAGE[command]}`);
    return 2;
  }
  const values = flags.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    console.log(USAGE[command]);
    return 0;
  }
  try {
    return command === "consume" ? await consume(values) : await push(values, flags.positionals);
  } catch (error) {
    if (error instanceof TypeError || error instanceof RangeError) {
      err(`taskpool ${command}: ${withFlags(error.message)}`);
      return 2;
    }
    if (error instanceof RedisConnectionError || error instanceof RedisError) {
      err(`taskpool ${command}: ${withFlags(error.message)}`);
      return 1;
    }
    throw error;
  }
}

/**
 * The library's advice in this command line's terms: the library speaks of
 * the `url` option and the queue's name, a user here types --redis and
 * --queue. Each phrase is the library's exact wording (RedisQueue.connect,
 * the RedisClient's connection errors, the scripts' WRONGTYPE check); a
 * phrase not found is left as it is.
 */
function withFlags(message: string): string {
  return message
    .replaceAll(
      "pass the 'url' option, e.g. redis://host:6379/0,",
      "pass --redis redis://host:6379/0",
    )
    .replaceAll("(check the Redis URL)", "(check --redis or TASKPOOL_REDIS_URL)")
    .replaceAll("choose another queue name,", "choose another --queue,");
}

/** A positive integer flag, or a RangeError that names it. */
function count(name: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`--${name} must be a positive integer, got "${value}"`);
  }
  return n;
}

async function consume(values: Record<string, string | boolean | undefined>): Promise<number> {
  const workers = count("workers", values.workers);
  const capacity = count("capacity", values.capacity);
  let heartbeat: number | undefined;
  if (values.heartbeat !== undefined) {
    heartbeat = parseDuration(values.heartbeat);
    if (heartbeat === undefined || heartbeat < 100) {
      throw new RangeError(
        `--heartbeat must be a duration of at least 100ms such as "10s", got "${values.heartbeat}"`,
      );
    }
  }
  let base = Deno.cwd();
  if (typeof values.base === "string") {
    base = values.base.startsWith("/") ? values.base : `${Deno.cwd()}/${values.base}`;
    try {
      if (!Deno.statSync(base).isDirectory) throw new Error();
    } catch {
      throw new TypeError(`--base must be a directory, got "${values.base}"`);
    }
  }
  const queue = await RedisQueue.connect({
    url: values.redis as string | undefined,
    queue: values.queue as string,
  });
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
    onFinish: (result) => reporter.finished(result),
    onRetry: (job, attempt, error) =>
      reporter.note(`retry ${job.id} (attempt ${attempt} failed: ${error})`),
    onRecover: (moved, gone) =>
      reporter.note(`recovered ${moved} job(s) of dead consumer(s) ${gone.join(", ")}`),
    onWarning: (message) => reporter.note(`taskpool consume: ${withFlags(message)}`),
  });
  reporter.note(`taskpool consume: ${consumer.id} consuming "${queue.name}"`);
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
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    const stats = await consumer.done;
    reporter.summary();
    reporter.note(
      `taskpool consume: took ${stats.taken}: ${stats.succeeded} succeeded, ${stats.failed} failed, ` +
        `${stats.malformed} malformed, ${stats.retried} retried; recovered ${stats.recovered}`,
    );
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  return interrupted > 1 ? 130 : 0;
}

async function push(
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
): Promise<number> {
  if (positionals.length !== 1) {
    err(
      `taskpool push: ${
        positionals.length === 0 ? "no job file given" : "give one job file"
      }\n\n${USAGE.push}`,
    );
    return 2;
  }
  const file = await loadJobFile(positionals[0], "taskpool push", "pushed");
  if (file === null) return 2;
  // Listen before pushing: a signal during the push lets it finish (it is one
  // atomic step) and then ends the wait before it starts.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  try {
    return await pushAndWait(values, file, stop.signal);
  } finally {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
}

async function pushAndWait(
  values: Record<string, string | boolean | undefined>,
  file: JobFile,
  signal: AbortSignal,
): Promise<number> {
  await using queue = await RedisQueue.connect({
    url: values.redis as string | undefined,
    queue: values.queue as string,
  });
  if (signal.aborted) {
    err("taskpool push: interrupted before the push; nothing was pushed");
    return 130;
  }
  const receipt = await queue.push(file);
  err(
    `taskpool push: pushed ${receipt.ids.length} job(s) to "${queue.name}" (batch ${receipt.batch})`,
  );
  if (!values.wait) return 0;

  const live = Deno.stderr.isTerminal() && !values.json;
  const reporter = new Reporter({
    total: receipt.ids.length,
    json: values.json === true,
    live,
    color: live && !Deno.env.get("NO_COLOR"),
    running: () => 0,
  });
  try {
    const results = await queue.wait(receipt, {
      signal,
      onResult: (result) => reporter.finished(result),
      onWarning: (message) => reporter.note(`taskpool push: ${withFlags(message)}`),
    });
    reporter.summary();
    return results.every((r) => r.status === "succeeded") ? 0 : 1;
  } catch (error) {
    if (!signal.aborted) throw error;
    reporter.summary();
    reporter.note(
      `taskpool push: stopped waiting; the jobs stay queued (batch ${receipt.batch})`,
    );
    return 130;
  }
}
