/**
 * What a consumer tells the queue about its running jobs: the latest
 * progress each task reported, and when each started, in the hash
 * `<queue>:progress:<consumer>` (field `batch/id`, value JSON: `id`,
 * `batch`, `attempt`, `started` in ms since the epoch, and `progress` when
 * the task reported one). The dashboard and `push --wait` read it.
 *
 * Who writes what:
 * - The consumer, every {@linkcode FLUSH_MS}, in one HSET: the jobs whose
 *   progress changed since, and the ones running for {@linkcode LONG_MS} or
 *   more that are not there yet. A job shorter than that which reports
 *   nothing never costs a write, so a queue running at full speed pays
 *   nothing for it.
 * - The ACK script removes a finished job's field with its outcome, in the
 *   same step (the consumer names the jobs it had written); a job whose
 *   attempt failed and waits for a retry is removed by the next flush.
 * - RECOVER deletes the hash of a consumer it recovers, RELEASE (leaving)
 *   the caller's own.
 *
 * Writes go on the consumer's one connection, in order, so a flush that
 * wrote a job is read by Redis before the ACK that removes it; a job the
 * consumer has let go is no longer written by any later flush.
 *
 * @module
 */

import type { RedisArg, RedisClient } from "./client.ts";

/** How often a consumer writes what changed, ms. */
export const FLUSH_MS = 500;
/** A running job is written once it has run this long, ms, even without progress. */
export const LONG_MS = 1000;
/** Progress longer than this as JSON is stored as its first characters, as a string. */
const MAX_PROGRESS_CHARS = 1024;

/** One running attempt, by the consumer's token. */
interface Running {
  ref: string;
  json: Record<string, unknown>;
  /** Changed since the last flush. */
  dirty: boolean;
  /** Written to Redis (so its outcome must remove it). */
  written: boolean;
}

/**
 * The running jobs of one consumer, and what of them Redis must learn.
 *
 * @example A job that reports progress is written at the next flush
 * ```ts
 * import { ProgressBoard } from "./_progress.ts";
 * import assert from "node:assert";
 *
 * const board = new ProgressBoard("q:progress:c1");
 * board.started(0, "b1", "a", 1, 1000);
 * board.progress(0, 0.5);
 * const [command] = board.flush(1100);
 * assert.strictEqual(command[0], "HSET");
 * assert.strictEqual(command[2], "b1/a");
 * assert.strictEqual(JSON.parse(String(command[3])).progress, 0.5);
 * assert.deepStrictEqual(board.flush(1200), []); // nothing changed
 * assert.strictEqual(board.ended(0), "b1/a"); // its outcome removes it
 * ```
 */
export class ProgressBoard {
  /** The hash this consumer writes. */
  readonly key: string;
  readonly #running: Array<Running | undefined> = [];
  /** Refs written whose attempt ended without an outcome (a retry): removed at the next flush. */
  readonly #drop = new Set<string>();

  constructor(key: string) {
    this.key = key;
  }

  /** An attempt started (`now`: ms since the epoch). */
  started(token: number, batch: string, id: string, attempt: number, now: number): void {
    const ref = `${batch}/${id}`;
    // A retry of an attempt that was written: its field is still there, so
    // this attempt owns it (its outcome removes it), and rewrites it now.
    const written = this.#drop.delete(ref);
    const json = { id, batch, attempt, started: now };
    this.#running[token] = { ref, json, dirty: written, written };
  }

  /** The task of `token` reported `value`. */
  progress(token: number, value: unknown): void {
    const running = this.#running[token];
    if (running === undefined) return;
    running.json.progress = bounded(value);
    running.dirty = true;
  }

  /**
   * The attempt of `token` ended with an outcome.
   *
   * @returns Its ref when it was written (the ACK removes it), else undefined.
   */
  ended(token: number): string | undefined {
    const running = this.#running[token];
    this.#running[token] = undefined;
    return running?.written ? running.ref : undefined;
  }

  /** The attempt of `token` failed and waits for a retry: its field goes at the next flush. */
  retried(token: number): void {
    const ref = this.ended(token);
    if (ref !== undefined) this.#drop.add(ref);
  }

  /**
   * Writes what changed ({@linkcode ProgressBoard.prototype.flush}). Lost, a
   * flush is not retried (the next one writes what changes), nor warned of
   * (the heartbeat warns of the connection).
   *
   * @param client The consumer's connection.
   */
  async send(client: RedisClient): Promise<void> {
    const commands = this.flush(Date.now());
    await Promise.all(commands.map((command) => client.send(command))).catch(() => {});
  }

  /**
   * What to write now: an HSET of the changed and long-running jobs and an
   * HDEL of the retried ones, each only when there is something to write.
   *
   * @param now Ms since the epoch.
   * @returns The commands, to send in this order.
   */
  flush(now: number): RedisArg[][] {
    const commands: RedisArg[][] = [];
    const set: RedisArg[] = ["HSET", this.key];
    for (const running of this.#running) {
      if (running === undefined) continue;
      const due = running.dirty ||
        (!running.written && now - (running.json.started as number) >= LONG_MS);
      if (!due) continue;
      set.push(running.ref, JSON.stringify(running.json));
      running.dirty = false;
      running.written = true;
    }
    if (set.length > 2) commands.push(set);
    if (this.#drop.size > 0) commands.push(["HDEL", this.key, ...this.#drop]);
    this.#drop.clear();
    return commands;
  }
}

/** A progress value as stored: JSON-safe and small. */
function bounded(value: unknown): unknown {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    return String(value).slice(0, MAX_PROGRESS_CHARS);
  }
  if (json === undefined) return null;
  return json.length <= MAX_PROGRESS_CHARS ? value : json.slice(0, MAX_PROGRESS_CHARS);
}

/**
 * A consumer's heartbeat value: who it is and what it did, as JSON (what
 * the dashboard reads: `_inspect.ts`'s `consumersOf`).
 *
 * @param stats Its counts.
 * @param held Jobs it holds now.
 * @param workers Its pool's workers.
 * @param ttl Its heartbeat's life, ms.
 * @param since When it started, ms since the epoch.
 */
export function beatInfo(
  stats: { succeeded: number; failed: number; retried: number; cancelled: number },
  held: number,
  workers: number,
  ttl: number,
  since: number,
): string {
  const { succeeded, failed, retried, cancelled } = stats;
  const host = Deno.hostname();
  return JSON.stringify({
    host,
    pid: Deno.pid,
    held,
    workers,
    ttl,
    since,
    succeeded,
    failed,
    retried,
    cancelled,
  });
}
