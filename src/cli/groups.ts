/**
 * `taskpool groups`: a Redis queue's groups (limits, jobs held back, jobs
 * let in), and setting one group's limits by hand.
 *
 * @module
 */

import { err } from "./_args.ts";
import { COMMON_USAGE, connect, type Flags, queueCommand } from "./_queue.ts";
import type { GroupInfo } from "../redis/mod.ts";
import { type GroupRate, parseRate } from "../jobs/mod.ts";

const USAGE =
  `Usage: taskpool groups [options] [<group> --concurrency <n> | --rate <N/time> | --unlimited]

Lists the groups of a Redis queue: each one's limits, its jobs waiting (held back by the limits)
and running (let in: running, or queued to start next), and with a rate its starts in the
current window. With a group and limits, first sets that group's limits for every consumer of
the queue (as a push of a job file with "groups" does): --concurrency or --rate changes that
limit and keeps the other; the jobs they allow start at once.

Options:
${COMMON_USAGE}
  --concurrency <n>  at most n of the group's jobs run at once
  --rate <N/time>    at most N of them start in any span of time ("10/1s", "100/1m")
  --unlimited        lift the group's limits
  --help             this text

Exit codes: 0 listed (and set), 1 a Redis failure, 2 usage.`;

/** Runs `taskpool groups …`; resolves with the exit code. */
export function groups(args: string[]): Promise<number> {
  return queueCommand("groups", USAGE, args, {
    concurrency: { type: "string" },
    rate: { type: "string" },
    unlimited: { type: "boolean", default: false },
  }, async (values: Flags, names: string[]) => {
    const setting = values.concurrency !== undefined || values.rate !== undefined ||
      values.unlimited === true;
    if (names.length > 1 || (setting && names.length === 0) || (!setting && names.length > 0)) {
      err(`taskpool groups: give one group with its limits, or nothing to list\n\n${USAGE}`);
      return 2;
    }
    if (values.unlimited && (values.concurrency !== undefined || values.rate !== undefined)) {
      err(`taskpool groups: --unlimited lifts the limits: give it alone\n\n${USAGE}`);
      return 2;
    }
    const limits: { concurrency?: number; rate?: string | GroupRate } = {};
    if (values.concurrency !== undefined) {
      const n = Number(values.concurrency);
      if (!/^\d+$/.test(String(values.concurrency)) || n < 1) {
        err(
          `taskpool groups: --concurrency must be an integer from 1, got "${values.concurrency}"`,
        );
        return 2;
      }
      limits.concurrency = n;
    }
    if (values.rate !== undefined) {
      if (parseRate(values.rate) === undefined) {
        err(
          `taskpool groups: --rate must be starts per window such as "10/1s" or "100/1m", got "${values.rate}"`,
        );
        return 2;
      }
      limits.rate = values.rate as string;
    }
    await using queue = await connect(values);
    if (setting) {
      // A flag changes its limit; the group's other limit stays as it was.
      const known = values.unlimited
        ? undefined
        : (await queue.groups()).find((group) => group.name === names[0]);
      await queue.setGroup(names[0], { ...known?.limits, ...limits }); // a bad name: exit 2
    }
    const list = await queue.groups();
    if (values.json) {
      for (const info of list) console.log(JSON.stringify(info));
      return 0;
    }
    if (list.length === 0) {
      err(`taskpool groups: no group in "${queue.name}"`);
      return 0;
    }
    for (const info of list) console.log(line(info));
    return 0;
  });
}

/** One group, one line: `api  concurrency 2, rate 10/1s  3 waiting  2 running  7 started this window`. */
function line(info: GroupInfo): string {
  const { concurrency, rate } = info.limits;
  const limits = [
    concurrency === undefined ? "" : `concurrency ${concurrency}`,
    rate === undefined ? "" : `rate ${rate.limit}/${windowText(rate.window)}`,
  ].filter((part) => part !== "").join(", ") || "no limits";
  const started = info.started === undefined ? "" : `  ${info.started} started this window`;
  return `${info.name}  ${limits}  ${info.waiting} waiting  ${info.running} running${started}`;
}

/** A window as a rate is written: `1s`, `2m`, `1h`, or ms. */
function windowText(ms: number): string {
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
