/**
 * Cancelling jobs from anywhere (`RedisQueue.prototype.cancel`, `taskpool
 * cancel`): wherever a job is, one script ends it.
 *
 * - **Waiting, delayed or blocked**: {@linkcode CANCEL} takes the entry out
 *   of the queue, the delayed set or the blocked hash and, in the same step,
 *   records it `cancelled` with everything an outcome brings (ACK's own
 *   functions: its dependents are recorded `skipped`, its unique key is
 *   freed, a recurring run's bookkeeping is done). An entry no longer where
 *   it was seen (a consumer took it meanwhile) is left alone: the search
 *   goes on where it went.
 * - **Running**: {@linkcode CANCEL_RUNNING} adds its ref to `<queue>:cancel`
 *   only if the entry is still in that consumer's processing list (so no
 *   request outlives a job that already finished). Each consumer reads the
 *   set with its heartbeat, at least every second, and aborts the jobs it
 *   holds there as a timeout would (`taskSignal()` aborted, the grace, the
 *   worker replaced; a command's process group gets SIGTERM, then SIGKILL),
 *   and records them `cancelled`, not retried. The ACK that records a job's
 *   outcome removes its ref from the set, whatever the outcome.
 *
 * The search looks where a job goes next before where it was: the delayed
 * set and the blocked hash, then the queue, then the processing lists, then
 * the outcomes; a job not found is looked for again (twice), for one that
 * moved back meanwhile (a retry, a recovered consumer).
 *
 * @module
 */

import type { RedisClient, RedisReply } from "./client.ts";
import { ackKeys, type QueueKeys } from "./_keys.ts";
import { ACK_FUNCTIONS, EXPECT, runScript, type Script } from "./_scripts.ts";
import { streamRecords } from "./_records.ts";
import { delay } from "../_util.ts";

/**
 * Cancels one job that waits (in the queue, the delayed set or the blocked
 * hash): takes it out and records its outcome, in one step.
 *
 * - KEYS: as ACK's (the caller's processing list in the first place is the
 *   queue, unused: the entry is taken out here, not there).
 * - ARGV: 1 key prefix, 2 about how many records `results` keeps, 3 "0",
 *   4 "0", 5 where it is (`queue`, `priority`, `group`, `delayed` or
 *   `blocked`), 6
 *   what names it there (the entry, the member, the blocked ref), then ACK's 8
 *   fields of the job (entry, batch, id, status `cancelled`, data, dead "",
 *   schedule, key).
 * - Returns 1 cancelled, 0 not there any more (nothing written).
 * - Called by `cancelJobs` below.
 */
export const CANCEL: Script = {
  name: "cancel",
  source: EXPECT + ACK_FUNCTIONS + `
local place, where = ARGV[5], ARGV[6]
local gone = 0
if place == 'queue' then
  gone = redis.call('LREM', KEYS[2], 1, where)
elseif place == 'delayed' then
  gone = redis.call('ZREM', KEYS[9], where)
elseif place == 'priority' then
  gone = redis.call('ZREM', KEYS[2] .. ':priority', where)
elseif place == 'group' then
  gone = redis.call('ZREM', KEYS[2] .. ':group:' .. (group_of(ARGV[7]) or ''), where)
elseif redis.call('HGET', KEYS[5], where) == ARGV[7] then
  redis.call('HDEL', KEYS[5], where)
  redis.call('HDEL', KEYS[6], where)
  redis.call('HDEL', KEYS[10], where)
  gone = 1
end
if gone == 0 then return 0 end
ack(ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], true)
release_freed(KEYS[2])
-- What it let in by priority (a group's next job, a recurring job's next run) wakes consumers.
wake(KEYS[2])
return 1`,
};

/**
 * Asks for a running job's cancel: adds its ref to `<queue>:cancel` if its
 * entry is still in that consumer's processing list.
 *
 * - KEYS: 1 the consumer's processing list, 2 cancel.
 * - ARGV: 1 the entry, 2 its ref (`batch/id`).
 * - Returns 1 asked, 0 no longer there.
 * - Called by `cancelJobs` below; the consumer reads the set, the ACK of the
 *   job's outcome removes the ref.
 */
export const CANCEL_RUNNING: Script = {
  name: "cancel-running",
  source: EXPECT + `
expect(1, 'list') expect(2, 'set')
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
redis.call('SADD', KEYS[2], ARGV[2])
return 1`,
};

/** What a cancel found of one job. */
export interface CancelReport {
  /** The job's id. */
  id: string;
  /** Its push's batch ("" for an entry pushed by hand; absent when unknown). */
  batch?: string;
  /**
   * Where it was: `waiting`, `delayed` or `blocked` (cancelled there),
   * `running` (its consumer was asked to abort it), `finished` (it already
   * had an outcome), or `unknown` (found nowhere).
   */
  found: "waiting" | "delayed" | "blocked" | "running" | "finished" | "unknown";
  /** The consumer that ran it (`running`). */
  consumer?: string;
  /**
   * Its outcome, when known: `cancelled`; for a running job, what its
   * consumer recorded (`succeeded` when it finished before the abort), or
   * absent when no outcome came within the wait; for a finished one, its status.
   */
  status?: string;
}

/** Which jobs to cancel: ids (of any push, or of `batch`), or every job of `batch`. */
export interface CancelTargets {
  ids?: string[];
  batch?: string;
}

/** How many records of the results stream the search for finished jobs reads at most. */
const FINISHED_LOOKBACK = 100_000;
const PAGE = 1000;

/** A job's place and the JSON of its entry. */
interface Seen {
  ref: string;
  id: string;
  batch: string;
  entry: string;
  value: Record<string, unknown>;
}

function parse(entry: string): Seen | undefined {
  try {
    const value = JSON.parse(entry);
    if (typeof value?.id !== "string") return undefined;
    const batch = typeof value.batch === "string" ? value.batch : "";
    return { ref: `${batch}/${value.id}`, id: value.id, batch, entry, value };
  } catch {
    return undefined;
  }
}

/**
 * Cancels jobs wherever they are, and says for each what it found.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param maxResults About how many records `results` keeps.
 * @param targets The ids and/or batch.
 * @param waitMs How long to wait for the outcomes of running jobs.
 * @param signal Ends the wait early.
 * @returns One report per job found, and per id found nowhere.
 */
export async function cancelJobs(
  client: RedisClient,
  keys: QueueKeys,
  maxResults: number,
  targets: CancelTargets,
  waitMs: number,
  signal?: AbortSignal,
): Promise<CancelReport[]> {
  const ids = targets.ids === undefined || targets.ids.length === 0
    ? undefined
    : new Set(targets.ids);
  const wanted = (seen: Seen | undefined): seen is Seen =>
    seen !== undefined && (ids === undefined || ids.has(seen.id)) &&
    (targets.batch === undefined || seen.batch === targets.batch);
  const reports = new Map<string, CancelReport>();
  const running = new Map<string, CancelReport>();
  // The last outcome before we asked: running jobs' outcomes come after it.
  const last = await client.send(["XREVRANGE", keys.results, "+", "-", "COUNT", 1]) as [string][];
  const from = last.length > 0 ? last[0][0] : "0-0";
  const cancel = async (
    place: "queue" | "priority" | "group" | "delayed" | "blocked",
    where: string,
    seen: Seen,
  ) => {
    if (reports.has(seen.ref)) return;
    const found = place === "queue" || place === "priority" || place === "group"
      ? "waiting"
      : place;
    const attempts = Math.max(0, Number(seen.value.attempt ?? 1) - 1);
    const error = `cancelled while ${found === "waiting" ? "waiting" : found}`;
    const data = JSON.stringify({
      id: seen.id,
      batch: seen.batch,
      status: "cancelled",
      attempts,
      error,
    });
    const schedule = typeof seen.value.schedule === "string" ? seen.value.schedule : "";
    const key = typeof seen.value.key === "string" ? seen.value.key : "";
    const done = await runScript(client, CANCEL, queueAckKeys(keys), [
      keys.prefix,
      maxResults,
      0,
      "0",
      place,
      where,
      seen.entry,
      seen.batch,
      seen.id,
      "cancelled",
      data,
      "",
      schedule,
      key,
    ]);
    if (done === 1) {
      reports.set(seen.ref, { id: seen.id, batch: seen.batch, found, status: "cancelled" });
    }
  };
  for (let pass = 0; pass < 3; pass++) {
    // Delayed and blocked first: a job moves from there to the queue, and on.
    for await (const [member] of pages(client, (a, b) => ["ZRANGE", keys.delayed, a, b])) {
      const cut = member.indexOf("|{");
      const seen = parse(cut < 0 ? member : member.slice(cut + 1));
      if (wanted(seen)) await cancel("delayed", member, seen);
    }
    const blocked = await client.send(["HGETALL", keys.blocked]) as string[];
    for (let i = 0; i + 1 < blocked.length; i += 2) {
      const seen = parse(blocked[i + 1]);
      if (wanted(seen)) await cancel("blocked", blocked[i], seen);
    }
    for await (const [member] of pages(client, (a, b) => ["ZRANGE", keys.priority, a, b])) {
      const seen = parse(member.slice(member.indexOf("|") + 1));
      if (wanted(seen)) await cancel("priority", member, seen);
    }
    // Jobs held back by their group (_group_lua.ts).
    for (const group of await client.send(["HKEYS", keys.groups]) as string[]) {
      const held = `${keys.prefix}group:${group}`;
      for await (const [member] of pages(client, (a, b) => ["ZRANGE", held, a, b])) {
        const seen = parse(member.slice(member.indexOf("|") + 1));
        if (wanted(seen)) await cancel("group", member, seen);
      }
    }
    for await (const [entry] of pages(client, (a, b) => ["LRANGE", keys.queue, a, b])) {
      const seen = parse(entry);
      if (wanted(seen)) await cancel("queue", entry, seen);
    }
    for (const consumer of await client.send(["SMEMBERS", keys.consumers]) as string[]) {
      const held = await client.send(["LRANGE", keys.processing(consumer), 0, -1]) as string[];
      for (const entry of held) {
        const seen = parse(entry);
        if (!wanted(seen) || reports.has(seen.ref)) continue;
        const asked = await runScript(client, CANCEL_RUNNING, [
          keys.processing(consumer),
          keys.cancel,
        ], [
          entry,
          seen.ref,
        ]);
        if (asked === 1) {
          const report: CancelReport = {
            id: seen.id,
            batch: seen.batch,
            found: "running",
            consumer,
          };
          reports.set(seen.ref, report);
          running.set(seen.ref, report);
        }
      }
    }
    // Finished ones, in the latest outcomes.
    await finished(client, keys, (id, batch, status) => {
      const seen = { ref: `${batch}/${id}`, id, batch, entry: "", value: {} };
      if (wanted(seen) && !reports.has(seen.ref)) {
        reports.set(seen.ref, { id, batch, found: "finished", status });
      }
    });
    const missing = ids === undefined
      ? []
      : [...ids].filter((id) => ![...reports.values()].some((r) => r.id === id));
    // Again for ids found nowhere, and for a whole batch: a job may have
    // moved back behind the search (a retry, a recovered consumer).
    if (ids !== undefined && missing.length === 0) break;
  }
  await outcomesOf(client, keys, running, from, waitMs, signal);
  const list = [...reports.values()];
  for (const id of ids ?? []) {
    if (!list.some((r) => r.id === id)) list.push({ id, found: "unknown" });
  }
  return list;
}

/** The ACK's keys with the queue in the caller's place (CANCEL takes entries out itself). */
function queueAckKeys(keys: QueueKeys): string[] {
  const list = ackKeys(keys, "");
  list[0] = keys.queue;
  list[11] = `${keys.prefix}progress:`; // nothing is removed from it (no ref is named)
  return list;
}

/** Reads a list or sorted set a page at a time, from the start: the elements, one by one. */
async function* pages(
  client: RedisClient,
  command: (start: number, stop: number) => (string | number)[],
): AsyncGenerator<[string]> {
  for (let start = 0;; start += PAGE) {
    const page = await client.send(command(start, start + PAGE - 1)) as string[];
    for (const element of page) yield [element];
    if (page.length < PAGE) return;
  }
}

/** Calls `found` for each outcome of the results stream, newest first, up to the lookback. */
async function finished(
  client: RedisClient,
  keys: QueueKeys,
  found: (id: string, batch: string, status: string) => void,
): Promise<void> {
  let end = "+";
  for (let read = 0; read < FINISHED_LOOKBACK; read += PAGE) {
    const reply = await client.send(["XREVRANGE", keys.results, end, "-", "COUNT", PAGE]);
    const records = [...streamRecords([[keys.results, reply]] as RedisReply)];
    // Newer outcomes too: a job that finished during the search finished
    // (the cancel's own outcomes are reported already, and skipped).
    for (const [, fields] of records) found(fields.id, fields.batch ?? "", fields.status);
    if (records.length < PAGE) return;
    end = `(${records[records.length - 1][0]}`;
  }
}

/** Waits for the outcomes of the running jobs asked to cancel, and notes their status. */
async function outcomesOf(
  client: RedisClient,
  keys: QueueKeys,
  running: Map<string, CancelReport>,
  from: string,
  waitMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const end = Date.now() + waitMs;
  let last = from;
  const open = new Set(running.keys());
  while (open.size > 0 && Date.now() < end && !signal?.aborted) {
    const reply = await client.send(["XRANGE", keys.results, `(${last}`, "+", "COUNT", PAGE]);
    const records = [...streamRecords([[keys.results, reply]] as RedisReply)];
    for (const [id, fields] of records) {
      last = id;
      const ref = `${fields.batch ?? ""}/${fields.id}`;
      if (open.delete(ref)) running.get(ref)!.status = fields.status;
    }
    if (records.length === 0) await delay(100, signal).catch(() => {});
  }
}
