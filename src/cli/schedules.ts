/**
 * `taskpool schedules` and `taskpool unschedule`: the recurring jobs a
 * queue holds, and their removal.
 *
 * @module
 */

import { err } from "./_args.ts";
import { COMMON_USAGE, connect, type Flags, queueCommand } from "./_queue.ts";

const SCHEDULES_USAGE = `Usage: taskpool schedules [options]

Lists the recurring jobs (cron, every) registered in a Redis queue: each one's rule, time zone,
next tick, runs under way and last run.

Options:
${COMMON_USAGE}
  --help             this text

Exit codes: 0 listed, 1 a Redis failure, 2 usage.`;

const UNSCHEDULE_USAGE = `Usage: taskpool unschedule [options] <id>...

Removes recurring jobs from a Redis queue: no tick of theirs fires any more (runs already
queued or running go on).

Options:
${COMMON_USAGE}
  --help             this text

Exit codes: 0 all removed, 1 some id was not registered (or a Redis failure), 2 usage.`;

/** Runs `taskpool schedules …`; resolves with the exit code. */
export function schedules(args: string[]): Promise<number> {
  return queueCommand("schedules", SCHEDULES_USAGE, args, {}, async (values: Flags) => {
    await using queue = await connect(values);
    const list = await queue.schedules();
    if (values.json) {
      for (const info of list) console.log(JSON.stringify(info));
      return 0;
    }
    if (list.length === 0) {
      err(`taskpool schedules: no recurring job in "${queue.name}"`);
      return 0;
    }
    for (const info of list) {
      const next = info.next === undefined ? "firing" : new Date(info.next).toISOString();
      const last = info.lastRun === undefined
        ? "no run yet"
        : `last ${info.lastRun.id} ${info.lastRun.status}`;
      console.log(
        `${info.id}  ${info.rule}  ${info.timezone}  next ${next}  ${info.active} under way  ${last}`,
      );
    }
    return 0;
  });
}

/** Runs `taskpool unschedule … <id>...`; resolves with the exit code. */
export function unschedule(args: string[]): Promise<number> {
  return queueCommand(
    "unschedule",
    UNSCHEDULE_USAGE,
    args,
    {},
    async (values: Flags, ids: string[]) => {
      if (ids.length === 0) {
        err(`taskpool unschedule: no id given\n\n${UNSCHEDULE_USAGE}`);
        return 2;
      }
      await using queue = await connect(values);
      const removed = new Set(await queue.unschedule(ids));
      for (const id of ids) {
        err(`taskpool unschedule: ${id}: ${removed.has(id) ? "removed" : "not registered"}`);
      }
      return removed.size === new Set(ids).size ? 0 : 1;
    },
  );
}
