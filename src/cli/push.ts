/**
 * `taskpool push`: validates a job file and enqueues its jobs in a Redis
 * queue; with `--wait`, waits for their outcomes like a local run.
 *
 * @module
 */

import type { JobFile } from "../jobs/mod.ts";
import { err, STOP_SIGNALS } from "./_args.ts";
import { COMMON_USAGE, connect, type Flags, queueCommand, withFlags } from "./_queue.ts";
import { loadJobFile } from "./load.ts";
import { Reporter, showProgress } from "./report.ts";
import type { RedisQueue, RunningJob } from "../redis/mod.ts";

const USAGE = `Usage: taskpool push [options] <jobs.json>

Validates a job file and enqueues its jobs in a Redis list for consumers.
Dependencies ("after") are honoured across consumers.

Options:
${COMMON_USAGE}
  --wait             wait for every job's outcome and exit like a local run
  --help             this text

Exit codes: 0 pushed (with --wait: all succeeded), 1 some failed or a Redis failure,
2 invalid input or usage, 130 interrupted while waiting (the jobs stay queued).`;

/** Runs `taskpool push …`; resolves with the exit code. */
export function push(args: string[]): Promise<number> {
  return queueCommand("push", USAGE, args, {
    wait: { type: "boolean", default: false },
  }, pushFile);
}

async function pushFile(values: Flags, positionals: string[]): Promise<number> {
  if (positionals.length !== 1) {
    err(
      `taskpool push: ${
        positionals.length === 0 ? "no job file given" : "give one job file"
      }\n\n${USAGE}`,
    );
    return 2;
  }
  const file = await loadJobFile(positionals[0], "taskpool push", "pushed");
  if (file === null) return 2;
  // Listen before pushing: a signal during the push lets it finish (it is one
  // atomic step) and then ends the wait before it starts.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  try {
    return await pushAndWait(values, file, stop.signal);
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
}

async function pushAndWait(values: Flags, file: JobFile, signal: AbortSignal): Promise<number> {
  await using queue = await connect(values);
  if (signal.aborted) {
    err("taskpool push: interrupted before the push; nothing was pushed");
    return 130;
  }
  const receipt = await queue.push(file);
  err(
    `taskpool push: pushed ${receipt.ids.length} job(s) to "${queue.name}" (batch ${receipt.batch})` +
      (receipt.schedules.length === 0
        ? ""
        : `; registered ${receipt.schedules.length} recurring job(s): ${
          receipt.schedules.join(", ")
        }${values.wait ? " (--wait does not wait for their runs)" : ""}`),
  );
  if (receipt.duplicates.length > 0) {
    const shown = receipt.duplicates.slice(0, 5).map((d) =>
      `${d.id} (key held by ${d.heldBy.id} of batch ${d.heldBy.batch}${
        d.replaced ? ", whose entry it replaced" : ""
      })`
    );
    const more = receipt.duplicates.length - shown.length;
    err(
      `taskpool push: ${receipt.duplicates.length} duplicate(s) not enqueued: ${shown.join(", ")}${
        more > 0 ? ` and ${more} more` : ""
      }${values.wait ? "; --wait does not wait for them" : ""}`,
    );
  }
  if (!values.wait) return 0;

  const live = Deno.stderr.isTerminal() && !values.json;
  // On a terminal, the batch's running jobs as their consumers report them.
  const watch = live ? watchRunning(queue, receipt.batch) : undefined;
  const reporter = new Reporter({
    total: receipt.ids.length,
    json: values.json === true,
    live,
    color: live && !Deno.env.get("NO_COLOR"),
    running: () => watch?.jobs.length ?? 0,
    longest: () => {
      const job = watch?.jobs[0];
      return job && `${job.id} ${showProgress(job.progress)}`;
    },
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
  } finally {
    watch?.stop();
  }
}

/**
 * Reads the running jobs of a batch every second (those its consumers
 * report: with progress, or running a second or more), longest first.
 */
function watchRunning(queue: RedisQueue, batch: string): { jobs: RunningJob[]; stop(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const watch = {
    jobs: [] as RunningJob[],
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
  const look = async () => {
    try {
      watch.jobs = (await queue.running()).filter((job) => job.batch === batch);
    } catch { /* the wait reports a lost connection */ }
    if (!stopped) timer = setTimeout(look, 1000);
  };
  look();
  return watch;
}
