/**
 * The records a queue keeps of finished jobs: outcomes in the
 * `<queue>:results` stream (written by the ACK script for the consumer,
 * read by `RedisQueue.prototype.wait`) and failures in the `<queue>:dead`
 * list.
 *
 * @module
 */

import type { JobResult } from "../run/types.ts";
import type { RedisReply } from "./client.ts";

/** One job's outcome as recorded in `<queue>:results`. */
export interface QueueResult extends JobResult {
  /** The push it came in ("" for an entry pushed by hand). */
  batch: string;
  /** The consumer that ran it (absent for a job skipped because a dependency failed). */
  consumer?: string;
}

/**
 * The `data` field of an outcome's record: the outcome as JSON. A result
 * that JSON cannot hold (a BigInt, a cycle) is recorded as its string form.
 *
 * @param result The outcome.
 * @returns Its JSON.
 *
 * @example A result JSON cannot hold
 * ```ts
 * import { toJson } from "./_records.ts";
 * import assert from "node:assert";
 *
 * const json = toJson({ id: "a", batch: "b", status: "succeeded", attempts: 1, result: 10n });
 * assert.strictEqual(JSON.parse(json).result, "10");
 * ```
 */
export function toJson(result: QueueResult): string {
  try {
    return JSON.stringify(result);
  } catch {
    return JSON.stringify({ ...result, result: String(result.result) });
  }
}

/**
 * The outcome in a record's fields: its `data`, or, when that is not JSON,
 * what the other fields say (with 0 attempts).
 *
 * @param fields The record's fields: batch, id, status, data.
 * @returns The outcome.
 *
 * @example A record with unreadable data
 * ```ts
 * import { parseResult } from "./_records.ts";
 * import assert from "node:assert";
 *
 * assert.deepStrictEqual(
 *   parseResult({ batch: "b", id: "a", status: "failed", data: "{" }),
 *   { id: "a", batch: "b", status: "failed", attempts: 0 },
 * );
 * ```
 */
export function parseResult(fields: Record<string, string>): QueueResult {
  try {
    return JSON.parse(fields.data) as QueueResult;
  } catch {
    return {
      id: fields.id,
      batch: fields.batch,
      status: fields.status as QueueResult["status"],
      attempts: 0,
    };
  }
}

/**
 * The records of an XREAD reply, oldest first, each as its id and its
 * fields; nothing for a nil reply (the read timed out).
 *
 * @param reply The reply to `XREAD ... STREAMS <key> <id>`.
 * @returns `[id, fields]` per record.
 *
 * @example Read a reply
 * ```ts
 * import { streamRecords } from "./_records.ts";
 * import assert from "node:assert";
 *
 * const reply = [["q:results", [["1-0", ["id", "a", "status", "succeeded"]]]]];
 * assert.deepStrictEqual([...streamRecords(reply)], [["1-0", { id: "a", status: "succeeded" }]]);
 * assert.deepStrictEqual([...streamRecords(null)], []);
 * ```
 */
export function* streamRecords(reply: RedisReply): Generator<[string, Record<string, string>]> {
  if (!Array.isArray(reply)) return;
  for (const stream of reply) {
    const records = (stream as RedisReply[])[1] as RedisReply[];
    for (const record of records) {
      const [id, list] = record as [string, string[]];
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]] = list[i + 1];
      yield [id, fields];
    }
  }
}

/**
 * A record of `<queue>:dead`: the entry, why, who, when.
 *
 * @param entry The entry as it was in the queue (or as it would run next).
 * @param error Why it failed.
 * @param consumer The consumer that gave up on it.
 * @param attempts The attempts made (0 for a malformed entry).
 * @returns The record as JSON.
 *
 * @example A malformed entry
 * ```ts
 * import { deadRecord } from "./_records.ts";
 * import assert from "node:assert";
 *
 * const record = JSON.parse(deadRecord("{", "malformed entry: not JSON", "host:1:ab", 0));
 * assert.strictEqual(record.entry, "{");
 * assert.strictEqual(record.attempts, 0);
 * ```
 */
export function deadRecord(
  entry: string | Uint8Array,
  error: string,
  consumer: string,
  attempts: number,
): string {
  const at = new Date().toISOString();
  if (typeof entry === "string") return JSON.stringify({ entry, error, attempts, consumer, at });
  // Bytes that are not UTF-8: as text with U+FFFD to read, and exactly, in base64.
  const text = new TextDecoder().decode(entry);
  const base64 = btoa(String.fromCharCode(...entry));
  return JSON.stringify({ entry: text, entryBase64: base64, error, attempts, consumer, at });
}
