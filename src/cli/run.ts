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
import { Reporter } from "./report.ts";

/** The CLI's version. */
export const VERSION = "0.1.0";

/** The usage of the CLI's main command. */
export const USAGE = `Usage: taskpool [options] <jobs.json>
       taskpool push [--wait] [options] <jobs.json>   (enqueue in Redis; --help for more)
       taskpool consume [options]                    (run jobs from Redis; --help for more)

Runs the jobs of a JSON job file on a pool of workers.

Options:
  --workers <n>      workers, and jobs (tasks and commands together) running at once;
                     default: the file's, else the CPU count
  --capacity <n>     tasks queued in the pool beyond the running ones; default: the file's,
                     else the larger of workers * 2 and 64 (more than the pool's workers * 2:
                     a run hands tasks from one thread, and a deeper queue keeps the workers
                     busy between its turns)
  --json             one JSON object per finished job on stdout (JSON Lines)
  --fail-fast        start nothing new after the first job fails for good
  --grace <time>     after a first SIGINT/SIGTERM, cancel what still runs after this ("30s");
                     default: none, what runs finishes unless a second signal comes
  --dry-run          validate the file and print the plan; run nothing
  --help             this text
  --version          the version

A line per finished job goes to stderr (a progress line instead on a terminal), so that stdout
holds only the JSON Lines of --json. The first SIGINT/SIGTERM starts nothing new: running jobs
finish, the rest are reported not-run; a second cancels what still runs.

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
        "fail-fast": { type: "boolean", default: false },
        grace: { type: "string" },
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
  let workers, capacity, grace;
  try {
    workers = count("workers", values.workers);
    capacity = count("capacity", values.capacity);
    grace = duration("grace", values.grace);
  } catch (error) {
    err(`taskpool: ${(error as Error).message}`);
    return 2;
  }
  const file = await loadJobFile(positionals[0], "taskpool", "run");
  if (file === null) return 2;
  if (values["dry-run"]) {
    const levels = plan(file);
    console.log(
      `${file.jobs.length} jobs in ${levels.length} level${levels.length === 1 ? "" : "s"}:`,
    );
    levels.forEach((ids, level) => console.log(`  ${level + 1}. ${ids.join(", ")}`));
    return 0;
  }

  return await runFile(file, {
    workers,
    capacity,
    grace,
    json: values.json,
    failFast: values["fail-fast"],
  });
}

/** Runs a loaded job file to its end, or to a stop by signals; resolves with the exit code. */
async function runFile(
  file: JobFile,
  options: {
    workers?: number;
    capacity?: number;
    grace?: number;
    json: boolean;
    failFast: boolean;
  },
): Promise<number> {
  const { workers, capacity, grace } = options;
  const live = Deno.stderr.isTerminal() && !options.json;
  const box: { scheduler?: Scheduler } = {};
  const reporter = new Reporter({
    total: file.jobs.length,
    json: options.json,
    live,
    color: live && !Deno.env.get("NO_COLOR"),
    running: () => box.scheduler?.running ?? 0,
    waiting: () => box.scheduler?.waiting ?? 0,
  });
  const scheduler = box.scheduler = new Scheduler(file, {
    workers,
    capacity,
    failFast: options.failFast,
    onFinish: (result) => reporter.finished(result),
  });

  let interrupted = 0;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onSignal = () => {
    interrupted++;
    if (interrupted === 1) {
      scheduler.stop(); // withdraws what no worker started: only running jobs remain
      const running = scheduler.running;
      reporter.note(
        `taskpool: stopping: ${running} running job${
          running === 1 ? "" : "s"
        } finishing, nothing new starts (signal again to cancel ${running === 1 ? "it" : "them"})`,
      );
      if (grace !== undefined) graceTimer = setTimeout(() => scheduler.cancel(), grace);
    } else {
      reporter.note("taskpool: cancelling what still runs");
      scheduler.cancel();
    }
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
  let results;
  try {
    results = await scheduler.run();
  } finally {
    clearTimeout(graceTimer);
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
  }
  reporter.summary();
  if (interrupted > 0) return 130;
  return results.every((r) => r.status === "succeeded") ? 0 : 1;
}
