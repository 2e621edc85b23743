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
import type { Job } from "../jobs/mod.ts";

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
local before = has_rate(limits_of(KEYS[2], ARGV[1]))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
limits_read[ARGV[1]] = nil
local pending = KEYS[2] .. ':grouppending:' .. ARGV[1]
if not has_rate(limits_of(KEYS[2], ARGV[1])) then
  -- Without a rate, nothing pending is told or logged any more: forget them
  -- (a rate set again later would count them forever).
  redis.call('DEL', pending)
elseif not before then
  -- A new rate: the jobs let in already count as pending until their starts
  -- are told or their outcomes come (some may be running: fewer start, never more).
  redis.call('SUNIONSTORE', pending, pending, KEYS[2] .. ':groupactive:' .. ARGV[1])
end
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
  const [pairs, time] = await Promise.all([
    client.send(["HGETALL", keys.groups]),
    client.send(["TIME"], { route: keys.queue }), // the clock of the scripts' node
  ]) as [string[], string[]];
  // The server's clock, as the scripts read it.
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
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

/**
 * Tells which grouped jobs a consumer started: each leaves its group's
 * pending set, and for a group with a rate its start enters the window's
 * log (`_group_lua.ts`, `started`), which may let the next ones in.
 *
 * - KEYS: 1 queue.
 * - ARGV: pairs of group and ref (`batch/id`).
 * - Returns 0.
 * - Called by {@linkcode GroupStarts} for a consumer, once per turn.
 */
export const STARTED: Script = {
  name: "started",
  source: EXPECT + ENQUEUE + `
expect(1, 'list') expect_priority(KEYS[1])
for i = 1, #ARGV, 2 do started(KEYS[1], ARGV[i], ARGV[i + 1]) end
release_freed(KEYS[1])
wake(KEYS[1])
return 0`,
};

/** What a consumer holds of a job, as far as groups go. */
export interface GroupedHeld {
  job: Job;
  batch: string;
}

/**
 * A consumer's part in groups with a rate: such a job starts only on a free
 * worker (held in order, with the jobs taken after it, until one is free),
 * so that handing it to the pool is starting it, and its start is told to
 * Redis ({@linkcode STARTED}), in one call per turn, so that it counts
 * against the rate from then, not from its outcome. Which groups have a
 * rate is read with each heartbeat. Not knowing it (a rate set less than a
 * beat ago) is safe: a job not told stays pending until its outcome, which
 * then logs its start, later than it was (`_group_lua.ts`).
 */
export class GroupStarts<H extends GroupedHeld> {
  readonly #keys: QueueKeys;
  readonly #client: () => RedisClient;
  readonly #warn: (message: string) => void;
  #rated = new Set<string>();
  readonly #waiting: H[] = [];
  #started: string[] = [];

  /**
   * @param keys The queue's keys.
   * @param client The consumer's connection (once it has one).
   * @param warn Where a failed call is reported.
   */
  constructor(keys: QueueKeys, client: () => RedisClient, warn: (message: string) => void) {
    this.#keys = keys;
    this.#client = client;
    this.#warn = warn;
  }

  /** Reads which of the queue's groups have a rate. */
  async refresh(): Promise<void> {
    const pairs = await this.#client().send(["HGETALL", this.#keys.groups]) as string[];
    const rated = new Set<string>();
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      if (pairs[i + 1].includes('"rate"')) rated.add(pairs[i]);
    }
    this.#rated = rated;
  }

  /**
   * Whether `held` must wait rather than start now: its group has a rate and
   * no worker is free, or jobs wait before it.
   *
   * @param busy Attempts under way (handed to the pool or running).
   * @param workers The pool's workers.
   */
  defer(held: H, busy: number, workers: number): boolean {
    if (this.#waiting.length === 0 && (!this.#needsWorker(held) || busy < workers)) return false;
    this.#waiting.push(held);
    return true;
  }

  /**
   * The waiting jobs that may start now, in order.
   *
   * @param busy Attempts under way.
   * @param workers The pool's workers.
   */
  next(busy: number, workers: number): H[] {
    const ready: H[] = [];
    while (this.#waiting.length > 0) {
      if (this.#needsWorker(this.#waiting[0]) && busy >= workers) break;
      ready.push(this.#waiting.shift()!);
      busy++;
    }
    return ready;
  }

  /** A job started: if its group has a rate, told to Redis with the others of this turn. */
  started(held: H): void {
    const group = held.job.group;
    if (group === undefined || !this.#rated.has(group)) return;
    if (this.#started.length === 0) setTimeout(() => this.#flush(), 0);
    this.#started.push(group, `${held.batch}/${held.job.id}`);
  }

  #needsWorker(held: H): boolean {
    return held.job.group !== undefined && this.#rated.has(held.job.group);
  }

  #flush(): void {
    const args = this.#started;
    this.#started = [];
    // Lost (the connection dropped), a start stays pending until the job's
    // outcome, and is not in the window after it: the warning says so.
    runScript(this.#client(), STARTED, [this.#keys.queue], args).catch((error) =>
      this.#warn(`cannot record the start of grouped jobs: ${(error as Error).message}`)
    );
  }
}
