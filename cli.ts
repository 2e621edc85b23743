/**
 * The taskpool command line: runs the jobs of a JSON file on a worker pool.
 *
 * ```sh
 * deno run -A cli.ts jobs.json            # run, with a progress line
 * deno run -A cli.ts --dry-run jobs.json  # validate and print the plan
 * deno run -A cli.ts --json jobs.json     # one JSON object per finished job
 * deno run -A cli.ts push --redis redis://127.0.0.1:6379/0 --wait jobs.json
 * deno run -A cli.ts consume --redis redis://127.0.0.1:6379/0 --workers 4
 * ```
 *
 * Exit codes: 0 every job succeeded, 1 some failed, 2 invalid input or
 * usage, 130 interrupted. The first SIGINT or SIGTERM starts nothing new and
 * lets what is queued and running finish; a second one (or the end of
 * `--grace`) cancels what still runs.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseDuration, plan } from "./src/jobs/mod.ts";
import { loadJobFile } from "./src/cli/load.ts";
import { Scheduler } from "./src/run/scheduler.ts";
import { Reporter } from "./src/cli/report.ts";

const VERSION = "0.1.0";

const USAGE = `Usage: taskpool [options] <jobs.json>
       taskpool push [--wait] [options] <jobs.json>   (enqueue in Redis; --help for more)
       taskpool consume [options]                    (run jobs from Redis; --help for more)

Runs the jobs of a JSON job file on a pool of workers.

Options:
  --workers <n>      workers (and jobs at once); default: the file's, else the CPU count
  --capacity <n>     tasks queued in the pool beyond the running ones
  --json             one JSON object per finished job on stdout (JSON Lines)
  --fail-fast        start nothing new after the first job fails for good
  --grace <time>     after a first SIGINT/SIGTERM, cancel what still runs after this ("30s")
  --dry-run          validate the file and print the plan; run nothing
  --help             this text
  --version          the version

Exit codes: 0 all succeeded, 1 some failed, 2 invalid input or usage, 130 interrupted.`;

const encoder = new TextEncoder();
const err = (text: string) => Deno.stderr.writeSync(encoder.encode(text + "\n"));

/** Runs the CLI with `args`; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "consume" || args[0] === "push") {
    // The Redis queue's commands load only when asked for.
    const queue = await import("./src/cli/queue_commands.ts");
    return queue.main(args[0], args.slice(1));
  }
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
    err(
      `taskpool: ${
        positionals.length === 0 ? "no job file given" : "give one job file"
      }\n\n${USAGE}`,
    );
    return 2;
  }
  const count = (name: string, value: string | undefined): number | undefined | null => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) {
      err(`taskpool: --${name} must be a positive integer, got "${value}"`);
      return null;
    }
    return n;
  };
  const workers = count("workers", values.workers);
  const capacity = count("capacity", values.capacity);
  if (workers === null || capacity === null) return 2;
  const grace = values.grace === undefined ? undefined : parseDuration(values.grace);
  if (values.grace !== undefined && grace === undefined) {
    err(`taskpool: --grace must be a duration such as "30s" or "500ms", got "${values.grace}"`);
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

  const live = Deno.stderr.isTerminal() && !values.json;
  const box: { scheduler?: Scheduler } = {};
  const reporter = new Reporter({
    total: file.jobs.length,
    json: values.json,
    live,
    color: live && !Deno.env.get("NO_COLOR"),
    running: () => box.scheduler?.running ?? 0,
  });
  const scheduler = box.scheduler = new Scheduler(file, {
    workers,
    capacity,
    failFast: values["fail-fast"],
    onFinish: (result) => reporter.finished(result),
  });

  let interrupted = 0;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onSignal = () => {
    interrupted++;
    if (interrupted === 1) {
      reporter.note(
        "taskpool: stopping: no new jobs; waiting for those queued and running (again to cancel them)",
      );
      scheduler.stop();
      if (grace !== undefined) graceTimer = setTimeout(() => scheduler.cancel(), grace);
    } else {
      reporter.note("taskpool: cancelling what still runs");
      scheduler.cancel();
    }
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  let results;
  try {
    results = await scheduler.run();
  } finally {
    clearTimeout(graceTimer);
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  }
  reporter.summary();
  if (interrupted > 0) return 130;
  return results.every((r) => r.status === "succeeded") ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
