/**
 * The Lua scripts that move a queue's jobs between its keys (named in
 * `_keys.ts`), and {@linkcode runScript}, which runs them. Every step that
 * touches more than one key is one script, so Redis runs it atomically: a
 * job is always in exactly one place. Each script's header lists its KEYS,
 * its ARGV, what it returns and who calls it; KEYS and ARGV are 1-based, as
 * in Lua.
 *
 * ## Why a job is never lost
 *
 * (Keys as in `_keys.ts`'s table, for a queue named `q`.) A consumer takes an entry with BLMOVE, which moves it from `q` into its
 * own processing list in one step, so at every instant the entry is in `q`,
 * in a processing list, in `q:delayed`, or finished (its outcome in
 * `q:results` and the entry gone), never in none. {@linkcode ACK} records
 * the outcome and removes the entry in one script; {@linkcode RETRY}
 * removes it and schedules the next attempt in one script. A consumer that
 * dies leaves its list behind with its heartbeat expiring; {@linkcode RECOVER}
 * (run by any consumer) checks the heartbeat and moves the list back to `q`
 * in the same script, so two recovering consumers cannot both move it.
 *
 * A consumer presumed dead (say, paused past its TTL) may still finish a job
 * that was moved back: then ACK finds the entry no longer in its processing
 * list, takes the copy back out of `q` if it is still waiting there, and
 * records the outcome. If another consumer already took that copy, the job
 * runs twice: delivery is at least once, and readers keep the first outcome
 * per job.
 *
 * @module
 */

import { RedisError } from "../errors.ts";
import type { RedisArg, RedisClient, RedisReply, RedisSendOptions } from "./client.ts";

/**
 * Lua that refuses keys of the wrong type before the script writes
 * anything: a script's writes are not undone when a later command fails, so
 * a WRONGTYPE halfway would lose the entry it had already removed.
 * `expect(index, type)` checks `KEYS[index]`. (The CLI puts its --queue
 * flag in the place of "another queue name".)
 */
const EXPECT = `
local function expect(i, want)
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= want and kind ~= 'none' then
    error({ err = 'WRONGTYPE the key "' .. KEYS[i] .. '" holds a ' .. kind .. ', not a ' .. want ..
      ': choose another queue name, or delete the key' })
  end
end
`;

/** A Lua script (its SHA-1 is computed once, for EVALSHA). */
export interface Script {
  /** What error messages call it: "the <name> script". */
  name: string;
  /** The Lua text. */
  source: string;
}

/**
 * Finishes a job: records its outcome and removes its entry, then either
 * releases the jobs waiting for it (success) or marks them skipped,
 * transitively (failure), and, when asked, takes the next entry into the
 * processing list: one round trip per job instead of two.
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 results, 4 dead,
 *   5 blocked, 6 pending.
 * - ARGV: 1 entry, 2 batch ("" for an entry pushed by hand), 3 job id,
 *   4 status, 5 data (the outcome as JSON), 6 dead record or "", 7 key
 *   prefix, 8 about how many records `results` keeps, 9 take ("1" to take
 *   the next entry), 10 again ("1" when sent again after a lost reply: then
 *   an entry found nowhere means the first run recorded it, and nothing is
 *   written twice).
 * - Returns `{ removed, next }`: removed is 1 if the entry was in the
 *   processing list, -1 if it had been moved back to the queue (and was
 *   taken out again), 0 if neither (another consumer holds the copy, or the
 *   first run of a resent ACK did it all); next is the entry taken, or nil.
 * - Called by `RedisConsumer` (consumer.ts) once per job it finishes:
 *   succeeded, failed for good, or malformed.
 */
export const ACK: Script = {
  name: "ack",
  source: EXPECT + `
expect(1, 'list') expect(2, 'list') expect(3, 'stream') expect(4, 'list')
expect(5, 'hash') expect(6, 'hash')
if ARGV[2] ~= '' then
  local deps = ARGV[7] .. 'dependents:' .. ARGV[2] .. '/' .. ARGV[3]
  local kind = redis.call('TYPE', deps).ok
  if kind ~= 'set' and kind ~= 'none' then
    error({ err = 'WRONGTYPE the key "' .. deps .. '" holds a ' .. kind .. ', not a set' })
  end
end
local function next_entry()
  if ARGV[9] ~= '1' then return false end
  return redis.call('LMOVE', KEYS[2], KEYS[1], 'RIGHT', 'LEFT')
end
local removed = redis.call('LREM', KEYS[1], 1, ARGV[1])
if removed == 0 then removed = -redis.call('LREM', KEYS[2], 1, ARGV[1]) end
-- Sent again after a lost reply: the first run did it all, or another consumer holds the job.
if removed == 0 and ARGV[10] == '1' then return { 0, next_entry() } end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
  'batch', ARGV[2], 'id', ARGV[3], 'status', ARGV[4], 'data', ARGV[5])
if ARGV[6] ~= '' then redis.call('LPUSH', KEYS[4], ARGV[6]) end
if ARGV[2] == '' then return { removed, next_entry() } end
local key = ARGV[2] .. '/' .. ARGV[3]
if ARGV[4] == 'succeeded' then
  local deps = ARGV[7] .. 'dependents:' .. key
  for _, d in ipairs(redis.call('SMEMBERS', deps)) do
    if redis.call('HINCRBY', KEYS[6], d, -1) <= 0 then
      local entry = redis.call('HGET', KEYS[5], d)
      redis.call('HDEL', KEYS[5], d)
      redis.call('HDEL', KEYS[6], d)
      if entry then redis.call('LPUSH', KEYS[2], entry) end
    end
  end
  redis.call('DEL', deps)
  return { removed, next_entry() }
end
local stack = { key }
while #stack > 0 do
  local k = table.remove(stack)
  local deps = ARGV[7] .. 'dependents:' .. k
  local why = 'skipped: "' .. string.sub(k, #ARGV[2] + 2) .. '" ' ..
    (k == key and 'failed' or 'was skipped')
  for _, d in ipairs(redis.call('SMEMBERS', deps)) do
    if redis.call('HDEL', KEYS[5], d) == 1 then
      redis.call('HDEL', KEYS[6], d)
      local id = string.sub(d, #ARGV[2] + 2)
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*',
        'batch', ARGV[2], 'id', id, 'status', 'skipped',
        'data', cjson.encode({ id = id, batch = ARGV[2], status = 'skipped', attempts = 0, error = why }))
      stack[#stack + 1] = d
    end
  end
  redis.call('DEL', deps)
end
return { removed, next_entry() }`,
};

/**
 * Schedules a job's next attempt: removes the entry (as ACK does) and adds
 * the next attempt's entry to `delayed`, due `delay` ms from the server's
 * clock. A member of `delayed` is `<token>|<entry>`: two identical entries
 * that fail stay two retries (a sorted set holds a member once).
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 delayed.
 * - ARGV: 1 entry, 2 `<token>|<next attempt's entry>`, 3 delay in ms.
 * - Returns 1 when scheduled; 0, scheduling nothing, if the entry was in
 *   neither list (another consumer holds the copy).
 * - Called by `RedisConsumer` (consumer.ts) when a failed attempt has
 *   retries left.
 */
export const RETRY: Script = {
  name: "retry",
  source: EXPECT + `
expect(1, 'list') expect(2, 'list') expect(3, 'zset')
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 and redis.call('LREM', KEYS[2], 1, ARGV[1]) == 0 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
return 1`,
};

/**
 * Moves retries that are due into the queue.
 *
 * - KEYS: 1 delayed, 2 queue.
 * - ARGV: 1 the most entries to move.
 * - Returns `{ moved, next }`: how many moved, and the ms until the next
 *   one is due (-1 if none is left).
 * - Called by `RedisConsumer` (consumer.ts) every second, and at the due
 *   time of each retry it scheduled; it does not use the reply.
 */
export const PROMOTE: Script = {
  name: "promote",
  source: EXPECT + `
expect(1, 'zset') expect(2, 'list')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  -- A member without a token (an older version's) is the entry itself.
  local bar = string.find(member, '|', 1, true)
  local entry = bar and string.sub(member, bar + 1) or member
  redis.call('ZREM', KEYS[1], member)
  redis.call('LPUSH', KEYS[2], entry)
end
local next = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if next[2] == nil then return { #due, -1 } end
return { #due, math.max(0, tonumber(next[2]) - now) }`,
};

/**
 * Moves the processing list of every registered consumer whose heartbeat
 * has expired back to the head of the queue (taken next), and forgets that
 * consumer.
 *
 * - KEYS: 1 consumers, 2 queue.
 * - ARGV: 1 key prefix, 2 the caller's id (never recovered).
 * - Returns `{ moved, gone }`: the number of entries moved, and the ids of
 *   the consumers forgotten.
 * - Called by `RedisConsumer` (consumer.ts) when it starts, then every half
 *   heartbeat.
 */
export const RECOVER: Script = {
  name: "recover",
  source: EXPECT + `
expect(1, 'set') expect(2, 'list')
local moved = 0
local gone = {}
for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if c ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'heartbeat:' .. c) == 0 then
    local list = ARGV[1] .. 'processing:' .. c
    while redis.call('LMOVE', list, KEYS[2], 'LEFT', 'RIGHT') do moved = moved + 1 end
    redis.call('SREM', KEYS[1], c)
    gone[#gone + 1] = c
  end
end
return { moved, gone }`,
};

/**
 * Gives entries of the caller's processing list back to the head of the
 * queue: the ones named in ARGV (one copy each), or all of them when none
 * is named, and then, if `leave` is "1", deregisters the caller.
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 consumers, 4 the
 *   caller's heartbeat.
 * - ARGV: 1 the caller's id, 2 leave ("1" to deregister), 3… the entries
 *   to give back (none: all).
 * - Returns how many entries moved.
 * - Called by `RedisConsumer` (consumer.ts) for entries it took but never
 *   got (their replies were lost; leave "0"), and when it stops (all of
 *   them; leave "1").
 */
export const RELEASE: Script = {
  name: "release",
  source: EXPECT + `
expect(1, 'list') expect(2, 'list') expect(3, 'set')
local moved = 0
if #ARGV == 2 then
  while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do moved = moved + 1 end
else
  for i = 3, #ARGV do
    if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
      redis.call('RPUSH', KEYS[2], ARGV[i])
      moved = moved + 1
    end
  end
end
if ARGV[2] == '1' then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[4])
end
return moved`,
};

/**
 * Enqueues a pushed batch in one step: the jobs that wait for others go to
 * `blocked`/`pending`/`dependents` before any ready job is queued, so no
 * dependency can finish before its dependents are registered. Each job's
 * dependencies come without duplicates (the count must match the set).
 *
 * - KEYS: 1 queue, 2 blocked, 3 pending.
 * - ARGV: 1 key prefix, 2 the batch as JSON: `{ ready: [entry], blocked:
 *   [[key, entry, [dependency keys]]] }`, keys being `batch/id`.
 * - Returns how many entries were queued ready.
 * - Called by `RedisQueue.prototype.push` (queue.ts).
 */
export const PUSH: Script = {
  name: "push",
  source: EXPECT + `
expect(1, 'list') expect(2, 'hash') expect(3, 'hash')
local batch = cjson.decode(ARGV[2])
for _, b in ipairs(batch.blocked) do
  redis.call('HSET', KEYS[2], b[1], b[2])
  redis.call('HSET', KEYS[3], b[1], #b[3])
  for _, dep in ipairs(b[3]) do redis.call('SADD', ARGV[1] .. 'dependents:' .. dep, b[1]) end
end
local ready = batch.ready
for i = 1, #ready, 1000 do
  redis.call('LPUSH', KEYS[1], unpack(ready, i, math.min(i + 999, #ready)))
end
return #ready`,
};

const shas = new Map<Script, Promise<string>>();

/**
 * Runs a script by its SHA-1 (EVALSHA), sending its text (EVAL) when the
 * server does not know it, say after a restart; the server then keeps it
 * for the next EVALSHA.
 *
 * @param client The connection to run it on.
 * @param script One of this file's scripts.
 * @param keys Its KEYS, in the order of its header.
 * @param args Its ARGV, in the order of its header.
 * @returns The script's reply.
 * @throws {RedisError} When the script fails, its command named "the <name> script".
 * @throws {RedisConnectionError} As {@linkcode RedisClient.send} does.
 *
 * @example Move the due retries of an empty queue
 * ```ts
 * import { RedisClient } from "@taskpool/taskpool";
 * import { queueKeys } from "./_keys.ts";
 * import { PROMOTE, runScript } from "./_scripts.ts";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using redis = await RedisClient.connect(url);
 *   const keys = queueKeys(`doc:${crypto.randomUUID()}`);
 *   assert.deepStrictEqual(await runScript(redis, PROMOTE, [keys.delayed, keys.queue], [1000]), [0, -1]);
 * }
 * ```
 */
export async function runScript(
  client: RedisClient,
  script: Script,
  keys: string[],
  args: RedisArg[],
  options: RedisSendOptions = {},
): Promise<RedisReply> {
  let sha = shas.get(script);
  if (sha === undefined) {
    sha = crypto.subtle.digest("SHA-1", new TextEncoder().encode(script.source)).then((hash) =>
      Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, "0")).join("")
    );
    shas.set(script, sha);
  }
  try {
    try {
      return await client.send(["EVALSHA", await sha, keys.length, ...keys, ...args], options);
    } catch (error) {
      if (!(error instanceof RedisError) || !error.message.includes("NOSCRIPT")) throw error;
      return await client.send(["EVAL", script.source, keys.length, ...keys, ...args], options);
    }
  } catch (error) {
    if (!(error instanceof RedisError)) throw error;
    // Name the script, not EVALSHA, and drop the server's "script: <sha>" tail.
    const reply = error.message.replace(/^Redis error for \w+: /, "")
      .replace(/ script: [0-9a-f]{40}.*$/, "");
    throw new RedisError(`the ${script.name} script`, reply);
  }
}
