/**
 * Reading a queue as its users look at it, and the few repairs they make by
 * hand: its consumers (from their heartbeats), its running jobs (from the
 * progress hashes), its latest outcomes (from the results stream), and its
 * dead list, whose records can be sent back to the queue or deleted.
 * `RedisQueue` exposes these; the dashboard (`src/dashboard/`) shows them.
 *
 * A dead record is named by the SHA-1 of its text ({@linkcode DeadRecord.ref}):
 * an action names the record it means, and the entry it enqueues is read
 * from Redis, never taken from whoever asks.
 *
 * @module
 */

import type { RedisClient, RedisReply } from "./client.ts";
import type { QueueKeys } from "./_keys.ts";
import { DEAD_RETRY, runScript } from "./_scripts.ts";
import { parseResult, type QueueResult, streamRecords } from "./_records.ts";

/** A consumer registered in a queue, from {@linkcode RedisQueue.prototype.consumers}. */
export interface ConsumerInfo {
  /** Its id: `<host>:<pid>:<random>` unless it chose one. */
  id: string;
  /** Its heartbeat is current. A dead one keeps its jobs until another consumer recovers them. */
  alive: boolean;
  /** The host and process it runs in (absent when its heartbeat is gone). */
  host?: string;
  /** Its process id. */
  pid?: number;
  /** Ms since its last heartbeat (absent when gone). */
  lastBeat?: number;
  /** Jobs it holds (running, queued in its pool, or being recorded), as of its last beat. */
  held: number;
  /** The workers of its pool. */
  workers?: number;
  /** When it started, ms since the epoch. */
  since?: number;
  /** Jobs it finished: succeeded, failed for good, and attempts sent to retry, as of its last beat. */
  succeeded: number;
  /** Jobs it failed for good, as of its last beat. */
  failed: number;
  /** Failed attempts it sent to retry, as of its last beat. */
  retried: number;
  /** Jobs cancelled while it held them, as of its last beat. */
  cancelled: number;
}

/** A job running now, from {@linkcode RedisQueue.prototype.running}. */
export interface RunningJob {
  /** The job's id. */
  id: string;
  /** The push it came in ("" for an entry pushed by hand). */
  batch: string;
  /** The consumer that runs it. */
  consumer: string;
  /** Which attempt this is (1 for the first). */
  attempt: number;
  /** When its attempt started, ms since the epoch. */
  started: number;
  /** The latest progress its task reported, if any. */
  progress?: unknown;
}

/** An outcome of the results stream, with the record's id (its time, in ms, comes first). */
export interface OutcomeRecord extends QueueResult {
  /** The record's id in `<queue>:results`. */
  record: string;
}

/** A record of the dead list, from {@linkcode RedisQueue.prototype.dead}. */
export interface DeadRecord {
  /** SHA-1 of the record's text, hex: what `retryDead` and `deleteDead` take. */
  ref: string;
  /** The job's id, when the entry is JSON that has one. */
  id?: string;
  /** The job's batch, when the entry is JSON that has one. */
  batch?: string;
  /** The entry as it would run again. */
  entry: string;
  /** Why it failed. */
  error: string;
  /** The attempts it made (0 for a malformed entry). */
  attempts: number;
  /** The consumer that gave up on it. */
  consumer: string;
  /** When it died, ISO 8601. */
  at: string;
}

/** What happened to each dead record an action named. */
export interface DeadAction {
  /** The record's ref. */
  ref: string;
  /** `done`; `gone` (no such record now); `held` (its unique key is held: not retried); `malformed` (not retried). */
  status: "done" | "gone" | "held" | "malformed";
}

const encoder = new TextEncoder();

/** The SHA-1 of a text, hex (as Redis's `redis.sha1hex` gives it). */
export async function sha1(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The consumers of a queue, by id, from their heartbeats.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @returns Each registered consumer, alive or not.
 */
export async function consumersOf(client: RedisClient, keys: QueueKeys): Promise<ConsumerInfo[]> {
  const ids = (await client.send(["SMEMBERS", keys.consumers]) as string[]).sort();
  const replies = await Promise.all(ids.flatMap((id) => [
    client.send(["GET", keys.heartbeat(id)]),
    client.send(["PTTL", keys.heartbeat(id)]),
  ]));
  return ids.map((id, i) => {
    const text = replies[2 * i] as string | null;
    const ttlLeft = replies[2 * i + 1] as number;
    const info: ConsumerInfo = {
      id,
      alive: text !== null,
      held: 0,
      succeeded: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    };
    if (text === null) return info;
    let beat: Record<string, unknown> = {};
    try {
      beat = JSON.parse(text);
    } catch { /* a heartbeat of another version: alive, nothing more known */ }
    const number = (name: string) =>
      typeof beat[name] === "number" ? beat[name] as number : undefined;
    if (typeof beat.host === "string") info.host = beat.host;
    info.pid = number("pid");
    info.held = number("held") ?? 0;
    info.workers = number("workers");
    info.since = number("since");
    info.succeeded = number("succeeded") ?? 0;
    info.failed = number("failed") ?? 0;
    info.retried = number("retried") ?? 0;
    info.cancelled = number("cancelled") ?? 0;
    const ttl = number("ttl");
    if (ttl !== undefined && ttlLeft >= 0) info.lastBeat = Math.max(0, ttl - ttlLeft);
    return info;
  });
}

/**
 * The jobs running on a queue's consumers that their consumers wrote to
 * the progress hashes: those that reported progress or ran a second or
 * more (see `_progress.ts`), longest-running first.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param consumers The consumers' ids.
 * @returns The running jobs.
 */
export async function runningOf(
  client: RedisClient,
  keys: QueueKeys,
  consumers: string[],
): Promise<RunningJob[]> {
  const hashes = await Promise.all(
    consumers.map((id) => client.send(["HGETALL", keys.progress(id)]) as Promise<string[]>),
  );
  const jobs: RunningJob[] = [];
  hashes.forEach((flat, c) => {
    for (let i = 1; i < flat.length; i += 2) {
      try {
        const json = JSON.parse(flat[i]);
        const job: RunningJob = {
          id: String(json.id),
          batch: String(json.batch),
          consumer: consumers[c],
          attempt: Number(json.attempt),
          started: Number(json.started),
        };
        if ("progress" in json) job.progress = json.progress;
        jobs.push(job);
      } catch { /* a field of another version: not shown */ }
    }
  });
  return jobs.sort((a, b) => a.started - b.started);
}

/**
 * The latest outcomes of the results stream, newest first.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param count How many at most.
 * @param failedOnly Only failed ones (looks back through at most 10,000 records).
 * @returns The outcomes, each with its record id.
 */
export async function latestOutcomes(
  client: RedisClient,
  keys: QueueKeys,
  count: number,
  failedOnly = false,
): Promise<OutcomeRecord[]> {
  const found: OutcomeRecord[] = [];
  let end = "+";
  let scanned = 0;
  const page = failedOnly ? 1000 : count;
  while (found.length < count && scanned < (failedOnly ? 10_000 : count)) {
    const reply = await client.send(["XREVRANGE", keys.results, end, "-", "COUNT", page]);
    const records = [...streamRecords([[keys.results, reply]] as RedisReply)];
    for (const [record, fields] of records) {
      if (failedOnly && fields.status !== "failed") continue;
      found.push({ ...parseResult(fields), record });
      if (found.length === count) break;
    }
    scanned += records.length;
    if (records.length < page) break;
    end = `(${records[records.length - 1][0]}`;
  }
  return found;
}

/**
 * One outcome, by its record id.
 *
 * @returns The outcome, or undefined when the stream has no such record (trimmed, or never).
 */
export async function outcomeAt(
  client: RedisClient,
  keys: QueueKeys,
  record: string,
): Promise<OutcomeRecord | undefined> {
  const reply = await client.send(["XRANGE", keys.results, record, record]);
  for (const [id, fields] of streamRecords([[keys.results, reply]] as RedisReply)) {
    return { ...parseResult(fields), record: id };
  }
  return undefined;
}

/** Reads one dead record's text. */
async function deadRecordOf(text: string): Promise<DeadRecord> {
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch { /* written by hand: shown as its text */ }
  const record: DeadRecord = {
    ref: await sha1(text),
    entry: typeof json.entry === "string" ? json.entry : text,
    error: String(json.error ?? ""),
    attempts: Number(json.attempts ?? 0),
    consumer: String(json.consumer ?? ""),
    at: String(json.at ?? ""),
  };
  try {
    const entry = JSON.parse(record.entry);
    if (typeof entry?.id === "string") record.id = entry.id;
    if (typeof entry?.batch === "string") record.batch = entry.batch;
  } catch { /* a malformed entry */ }
  return record;
}

/**
 * The dead list's first records (newest first) and its length.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param count How many records at most.
 */
export async function deadOf(
  client: RedisClient,
  keys: QueueKeys,
  count: number,
): Promise<{ total: number; records: DeadRecord[] }> {
  const [total, texts] = await Promise.all([
    client.send(["LLEN", keys.dead]) as Promise<number>,
    client.send(["LRANGE", keys.dead, 0, count - 1]) as Promise<string[]>,
  ]);
  return { total, records: await Promise.all(texts.map(deadRecordOf)) };
}

/**
 * The newest dead record of job `id` of push `batch`, looked for through
 * the whole list a page at a time (a job that died twice: its latest).
 */
export async function deadRecordFor(
  client: RedisClient,
  keys: QueueKeys,
  id: string,
  batch: string,
): Promise<DeadRecord | undefined> {
  const page = 1000;
  for (let start = 0;; start += page) {
    const texts = await client.send(["LRANGE", keys.dead, start, start + page - 1]) as string[];
    for (const text of texts) {
      // Cheap first: the id must appear in the text at all.
      if (!text.includes(JSON.stringify(id).slice(1, -1))) continue;
      const record = await deadRecordOf(text);
      if (record.id === id && (record.batch ?? "") === batch) return record;
    }
    if (texts.length < page) return undefined;
  }
}

/** Finds dead records by ref (or every one, for "all"): ref → text. */
async function findDead(
  client: RedisClient,
  keys: QueueKeys,
  refs: string[] | "all",
): Promise<Map<string, string>> {
  const wanted = refs === "all" ? undefined : new Set(refs);
  const found = new Map<string, string>();
  const texts = await client.send(["LRANGE", keys.dead, 0, -1]) as string[];
  for (const text of texts) {
    const ref = await sha1(text);
    if (wanted === undefined || wanted.has(ref)) found.set(ref, text);
  }
  return found;
}

/**
 * Sends dead records back to the queue (each entry without its attempt
 * count, so it gets its retries again), each in one atomic step: the record
 * leaves the dead list only as its entry enters the queue, and a record
 * another hand already took is `gone`.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param refs The records' refs, or "all".
 * @returns What happened to each.
 */
export async function retryDead(
  client: RedisClient,
  keys: QueueKeys,
  refs: string[] | "all",
): Promise<DeadAction[]> {
  const found = await findDead(client, keys, refs);
  const actions: DeadAction[] = [];
  const named = refs === "all" ? [...found.keys()] : refs;
  for (const ref of named) {
    const text = found.get(ref);
    if (text === undefined) {
      actions.push({ ref, status: "gone" });
      continue;
    }
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(JSON.parse(text).entry);
      if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new Error();
    } catch {
      actions.push({ ref, status: "malformed" });
      continue;
    }
    delete entry.attempt;
    // A run of a recurring job comes back as a one-off: its schedule's count
    // of runs under way (overlap) no longer includes it.
    delete entry.schedule;
    const key = typeof entry.key === "string" ? entry.key : "";
    const id = `${entry.batch ?? ""}/${entry.id ?? ""}`;
    const reply = await runScript(client, DEAD_RETRY, [keys.dead, keys.queue, keys.unique], [
      text,
      JSON.stringify(entry),
      key,
      id,
    ]);
    actions.push({ ref, status: reply === 1 ? "done" : reply === 0 ? "gone" : "held" });
  }
  return actions;
}

/**
 * Deletes dead records (one LREM each; "all": each record read now).
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param refs The records' refs, or "all".
 * @returns What happened to each (for "all": one action per record deleted).
 */
export async function deleteDead(
  client: RedisClient,
  keys: QueueKeys,
  refs: string[] | "all",
): Promise<DeadAction[]> {
  const found = await findDead(client, keys, refs);
  // For "all", only what was read: a record that died since is not deleted unseen.
  const named = refs === "all" ? [...found.keys()] : refs;
  const actions: DeadAction[] = [];
  for (const ref of named) {
    const text = found.get(ref);
    const removed = text === undefined ? 0 : await client.send(["LREM", keys.dead, 1, text]);
    actions.push({ ref, status: removed === 1 ? "done" : "gone" });
  }
  return actions;
}

/** Where the results stream was at one read: its last record, and how many it ever had. */
export interface OutcomeMark {
  /** The id of its last record ("0-0" when empty). */
  record: string;
  /** How many records it ever had (trimmed ones too). */
  added: number;
}

/** The outcomes since a mark, from {@linkcode RedisQueue.prototype.outcomeCounts}. */
export interface OutcomeCounts {
  /** Where the stream is now: the mark of the next call. */
  mark: OutcomeMark;
  /** Outcomes recorded since the mark given (exact). */
  total: number;
  /**
   * By status: exact up to `SAMPLE` new outcomes, else the status split of
   * the newest `SAMPLE` scaled to the total.
   */
  byStatus: Record<string, number>;
}

/** Newest records read per call of `outcomeCounts`, at most. */
const SAMPLE = 200;

/**
 * Counts the outcomes recorded since `since`: the total from the stream's
 * own count (`XINFO STREAM` entries-added, so trimming and any number of
 * producers or consumers do not matter), the split by status from at most
 * the newest 200 records. Without `since`, only the mark.
 */
export async function outcomeCounts(
  client: RedisClient,
  keys: QueueKeys,
  since?: OutcomeMark,
): Promise<OutcomeCounts> {
  let info: RedisReply[];
  try {
    info = await client.send(["XINFO", "STREAM", keys.results]) as RedisReply[];
  } catch (error) {
    if (!/no such key/i.test((error as Error).message)) throw error;
    return { mark: { record: "0-0", added: 0 }, total: 0, byStatus: {} };
  }
  const field = (name: string) => info[info.indexOf(name) + 1];
  const record = String(field("last-generated-id"));
  // Redis 6.2 has no entries-added: the length, which trimming lowers.
  const added = Number(info.includes("entries-added") ? field("entries-added") : field("length"));
  const mark = { record, added };
  const total = since === undefined ? 0 : Math.max(0, added - since.added);
  if (total === 0) return { mark, total, byStatus: {} };
  const reply = await client.send([
    "XREVRANGE",
    keys.results,
    "+",
    `(${since!.record}`,
    "COUNT",
    SAMPLE,
  ]);
  const byStatus: Record<string, number> = {};
  let sampled = 0;
  for (const [, fields] of streamRecords([[keys.results, reply]] as RedisReply)) {
    byStatus[fields.status] = (byStatus[fields.status] ?? 0) + 1;
    sampled++;
  }
  if (sampled > 0 && total > sampled) {
    for (const status in byStatus) {
      byStatus[status] = Math.round(byStatus[status] * total / sampled);
    }
  }
  return { mark, total, byStatus };
}
