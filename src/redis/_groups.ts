/**
 * Groups of a Redis queue, from outside the scripts that move jobs:
 * setting a group's limits ({@linkcode SET_GROUP}) and reading every
 * group's state. How grouped jobs move, and their keys: `_group_lua.ts`.
 *
 * @module
 */

import type { RedisClient } from "./client.ts";
import type { QueueKeys } from "./_keys.ts";
import { ENQUEUE, EXPECT, runScript, type Script } from "./_scripts.ts";
import { type GroupLimits, groupNameProblem, readGroupLimits } from "../jobs/groups.ts";

/**
 * Sets one group's limits and lets in at once what the new limits allow
 * (jobs already running go on under a lower limit).
 *
 * - KEYS: 1 groups, 2 queue.
 * - ARGV: 1 the group, 2 its limits as JSON (`{}`: none).
 * - Returns how many of its jobs wait, held back, after it.
 * - Called by `setGroup` below, for `RedisQueue.prototype.setGroup` and a
 *   push of a job file with `groups`.
 */
export const SET_GROUP: Script = {
  name: "set-group",
  source: EXPECT + ENQUEUE + `
expect(1, 'hash') expect(2, 'list') expect_priority(KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
release(KEYS[2], ARGV[1])
wake(KEYS[2])
return redis.call('ZCARD', KEYS[2] .. ':group:' .. ARGV[1])`,
};

/** A group of a Redis queue: its limits, and its jobs. */
export interface GroupInfo {
  /** The group's name. */
  name: string;
  /** Its limits (`{}`: none). */
  limits: GroupLimits;
  /** Its jobs held back by the limits. */
  waiting: number;
  /** Its jobs let in and not done: running, or queued to start next. */
  running: number;
  /** With a rate: its jobs let in during the last window. */
  started?: number;
}

/**
 * Checks and stores one group's limits for a queue.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param name The group.
 * @param limits Its limits: `concurrency`, `rate` (`"10/1s"` or `{ limit, window }`).
 * @returns How many of its jobs are still held back.
 * @throws {TypeError} For a bad name or limits, saying what is wrong.
 */
export async function setGroup(
  client: RedisClient,
  keys: QueueKeys,
  name: string,
  limits: GroupLimits | { concurrency?: number; rate?: string | GroupLimits["rate"] },
): Promise<number> {
  const problem = groupNameProblem(name);
  if (problem !== undefined) throw new TypeError(`setGroup: the group's name: ${problem}`);
  const problems: string[] = [];
  const read = readGroupLimits(
    limits,
    "limits",
    (at, message) => problems.push(`${at}: ${message}`),
  );
  if (read === undefined) throw new TypeError(`setGroup("${name}"): ${problems.join("; ")}`);
  const reply = await runScript(client, SET_GROUP, [keys.groups, keys.queue], [
    name,
    JSON.stringify(read),
  ]);
  return Number(reply);
}

/**
 * Every group the queue knows (those with limits, and those whose jobs
 * were ever held), by name.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @returns Each group's limits and counts.
 */
export async function groupsOf(client: RedisClient, keys: QueueKeys): Promise<GroupInfo[]> {
  const pairs = await client.send(["HGETALL", keys.groups]) as string[];
  const now = Date.now();
  const infos = await Promise.all(Array.from({ length: pairs.length / 2 }, async (_, i) => {
    const name = pairs[2 * i];
    let limits: GroupLimits = {};
    try {
      limits = JSON.parse(pairs[2 * i + 1]) as GroupLimits;
    } catch { /* written by hand: shown without limits */ }
    const [waiting, running, started] = await Promise.all([
      client.send(["ZCARD", `${keys.prefix}group:${name}`]),
      client.send(["SCARD", `${keys.prefix}groupactive:${name}`]),
      limits.rate === undefined ? Promise.resolve(undefined) : client.send([
        "ZCOUNT",
        `${keys.prefix}grouprate:${name}`,
        `(${now - limits.rate.window}`,
        "+inf",
      ]),
    ]);
    const info: GroupInfo = {
      name,
      limits,
      waiting: Number(waiting),
      running: Number(running),
    };
    if (started !== undefined) info.started = Number(started);
    return info;
  }));
  return infos.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * How many jobs wait held back by their groups, in all groups.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @returns The count.
 */
export async function heldBack(client: RedisClient, keys: QueueKeys): Promise<number> {
  const names = await client.send(["HKEYS", keys.groups]) as string[];
  const counts = await Promise.all(
    names.map((name) => client.send(["ZCARD", `${keys.prefix}group:${name}`])),
  );
  return counts.reduce<number>((sum, n) => sum + Number(n), 0);
}
