/**
 * `taskpool cancel`: cancels jobs of a Redis queue wherever they are
 * (waiting, delayed, blocked or running on any consumer), and says what it
 * found of each.
 *
 * @module
 */

import { duration, err, STOP_SIGNALS } from "./_args.ts";
import { COMMON_USAGE, connect, type Flags, queueCommand } from "./_queue.ts";
import type { CancelReport } from "../redis/mod.ts";

const USAGE = `Usage: taskpool cancel [options] <id>...
       taskpool cancel [options] --batch <batch> [<id>...]

Cancels jobs of a Redis queue. A waiting, delayed or blocked job is removed and
recorded "cancelled" (its dependents "skipped"). A running job's consumer, on any
machine, aborts it within a second as a timeout would and records it "cancelled"
(not retried); cancel waits for that outcome.

Options:
${COMMON_USAGE}
  --batch <batch>    only jobs of this push (its batch id); without ids, all of its jobs
  --wait <time>      how long to wait for running jobs' outcomes ("10s", the default)
  --help             this text

Prints one line per job: what it found (cancelled while waiting, delayed, blocked or
running; already finished; unknown). Exit codes: 0 done, 1 some id was unknown (or a
Redis failure), 2 usage.`;

/** Runs `taskpool cancel …`; resolves with the exit code. */
export function cancel(args: string[]): Promise<number> {
  return queueCommand("cancel", USAGE, args, {
    batch: { type: "string" },
    wait: { type: "string" },
  }, async (values: Flags, ids: string[]) => {
    const batch = values.batch as string | undefined;
    if (ids.length === 0 && batch === undefined) {
      err(`taskpool cancel: give job ids, or --batch\n\n${USAGE}`);
      return 2;
    }
    const wait = duration("wait", values.wait) ?? 10_000;
    await using queue = await connect(values);
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, onSignal);
    let reports: CancelReport[];
    try {
      reports = await queue.cancel(ids, { batch, wait, signal: stop.signal });
    } finally {
      for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, onSignal);
    }
    for (const report of reports) {
      if (values.json) console.log(JSON.stringify(report));
      else {console.log(
          `${report.id}${report.batch ? ` (batch ${report.batch})` : ""}: ${describe(report)}`,
        );}
    }
    if (reports.length === 0) err(`taskpool cancel: no job of batch ${batch} in "${queue.name}"`);
    return reports.length === 0 || reports.some((r) => r.found === "unknown") ? 1 : 0;
  });
}

function describe(report: CancelReport): string {
  switch (report.found) {
    case "waiting":
    case "delayed":
    case "blocked":
      return `cancelled while ${report.found}`;
    case "running":
      return report.status === "cancelled"
        ? `cancelled while running on ${report.consumer}`
        : report.status === undefined
        ? `cancel asked of ${report.consumer}, which has not recorded it yet`
        : `was running on ${report.consumer}, and ${report.status} before the cancel reached it`;
    case "finished":
      return `already finished (${report.status})`;
    default:
      return "unknown: no such job in the queue or its latest outcomes";
  }
}
