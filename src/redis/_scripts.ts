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
 * (Keys as in `_keys.ts`'s table, for a queue named `q`.) A consumer takes an entry with BLMOVE, or
 * a script that moves it (from `q`, or from `q:priority` for a priority
 * other than 0), into its own processing list in one step, so at every
 * instant the entry is in `q` or `q:priority`, in a processing list, in
 * `q:delayed` or `q:blocked`, or finished (its outcome in `q:results` and
 * the entry gone), never in none. {@linkcode ACK} records
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
import { GROUP_FUNCTIONS } from "./_group_lua.ts";
import type { QueueKeys } from "./_keys.ts";

/**
 * Lua that refuses keys of the wrong type before the script writes
 * anything: a script's writes are not undone when a later command fails, so
 * a WRONGTYPE halfway would lose the entry it had already removed.
 * `expect(index, type)` checks `KEYS[index]`. (The CLI puts its --queue
 * flag in the place of "another queue name".)
 */
/** The entry that wakes a blocked consumer to look at `<queue>:priority` (see ENQUEUE); never run. */
export const WAKE = "taskpool:wake";

export const EXPECT = `
local function expect(i, want)
  local kind = redis.call('TYPE', KEYS[i]).ok
  if kind ~= want and kind ~= 'none' then
    error({ err = 'WRONGTYPE the key "' .. KEYS[i] .. '" holds a ' .. kind .. ', not a ' .. want ..
      ': choose another queue name, or delete the key' })
  end
end
`;

/**
 * Checks, in one round trip, that each key has its type or does not exist;
 * the error `EXPECT` would give for the first that does not. The consumer
 * runs it when it starts and when a script answers WRONGTYPE, in place of a
 * TYPE check of every key in every ACK (see {@linkcode ACK}).
 *
 * @param client The connection to check on.
 * @param expected `[key, type]` pairs, types as `TYPE` names them.
 * @throws {RedisError} For the first key of another type, naming it.
 *
 * @example A queue's results must be a stream
 * ```ts
 * import { RedisClient } from "@taskpool/taskpool";
 * import { checkKeyTypes } from "./_scripts.ts";
 * import assert from "node:assert";
 *
 * const url = Deno.env.get("TASKPOOL_REDIS_URL"); // runs where a server is set
 * if (url) {
 *   await using redis = await RedisClient.connect(url);
 *   const key = `doc:${crypto.randomUUID()}:results`;
 *   await checkKeyTypes(redis, [[key, "stream"]]); // absent: fine
 *   await redis.send(["SET", key, "x"]);
 *   await assert.rejects(checkKeyTypes(redis, [[key, "stream"]]), /holds a string, not a stream/);
 *   await redis.send(["DEL", key]);
 * }
 * ```
 */
export async function checkKeyTypes(
  client: RedisClient,
  expected: ReadonlyArray<readonly [string, string]>,
): Promise<void> {
  const kinds = await Promise.all(expected.map(([key]) => client.send(["TYPE", key])));
  for (let i = 0; i < expected.length; i++) {
    const [key, want] = expected[i];
    const kind = String(kinds[i]);
    if (kind !== want && kind !== "none") {
      throw new RedisError(
        "the queue's keys",
        `WRONGTYPE the key "${key}" holds a ${kind}, not a ${want}: choose another queue name, or delete the key`,
      );
    }
  }
}

/** A Lua script (its SHA-1 is computed once, for EVALSHA). */
export interface Script {
  /** What error messages call it: "the <name> script". */
  name: string;
  /** The Lua text. */
  source: string;
}

/**
 * Lua that queues an entry by its priority (see `_keys.ts`): priority 0 at
 * the head of the list (`LPUSH`, first in first out, as a plain `LPUSH` by
 * any program does), any other in `<queue>:priority`, scored by minus the
 * priority, the member `<16-digit sequence>|<entry>` (equal scores sort by
 * member: first in, first out). `wake(queue)` then pushes one wake marker
 * per prioritized entry queued (at most one per registered consumer) at
 * the list's tail, unless a marker is there already: consumers block on
 * the list alone (BLMOVE takes the tail), and a marker ends the block, or
 * comes before the list's older entries, so that they look in
 * `<queue>:priority` first. A marker is never run: every take drops it.
 * `expect_priority(queue)` checks the two keys' types before a script
 * removes anything it will queue (a WRONGTYPE after the removal would
 * lose the entry).
 */
export const ENQUEUE = `
local woken = 0
local function priority_of(entry)
  if not string.find(entry, '"priority":', 1, true) then return 0 end
  local ok, value = pcall(cjson.decode, entry)
  local p = ok and type(value) == 'table' and value.priority
  -- NaN and infinities (cjson reads them) are no priority: ZADD would refuse them.
  if type(p) ~= 'number' or p ~= p or p == math.huge or p == -math.huge then return 0 end
  return p
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Queues an entry where consumers take it (no group check).
local function lane(queue, entry, priority)
  if priority == 0 then
    redis.call('LPUSH', queue, entry)
    return
  end
  local seq = redis.call('INCR', queue .. ':priorityseq')
  redis.call('ZADD', queue .. ':priority', -priority, string.format('%016d', seq) .. '|' .. entry)
  woken = woken + 1
end
local function wake(queue)
  if woken > 0 and redis.call('LINDEX', queue, -1) ~= '${WAKE}' then
    for _ = 1, math.min(woken, redis.call('SCARD', queue .. ':consumers')) do
      redis.call('RPUSH', queue, '${WAKE}')
    end
  end
  woken = 0
end
` + GROUP_FUNCTIONS + `
-- Queues an entry: a grouped one is held back in its group until its
-- limits let it in (_group_lua.ts), any other goes where consumers take it.
local function enqueue(queue, entry, priority)
  local g = group_of(entry)
  if g then
    hold(queue, g, entry, priority)
    release(queue, g)
  else
    lane(queue, entry, priority)
  end
end
-- Puts entries taken from a processing list back (recovery, a stopping
-- consumer), taken next: priority 0 at the list's tail (RPUSH, in the order
-- given), any other by its priority; wake markers are dropped. A job of a
-- group keeps its slot, and with a rate is pending again: its next start
-- counts (pending_again, _group_lua.ts).
local function give_back(queue, entries)
  local moved = 0
  for _, entry in ipairs(entries) do
    pending_again(queue, entry)
    if entry ~= '${WAKE}' then
      local priority = priority_of(entry)
      if priority == 0 then redis.call('RPUSH', queue, entry) else lane(queue, entry, priority) end
      moved = moved + 1
    end
  end
  wake(queue)
  return moved
end
local function expect_priority(queue)
  for key, want in pairs({ [queue .. ':priority'] = 'zset', [queue .. ':priorityseq'] = 'string',
      [queue .. ':groups'] = 'hash', [queue .. ':groupticks'] = 'zset' }) do
    local kind = redis.call('TYPE', key).ok
    if kind ~= want and kind ~= 'none' then
      error({ err = 'WRONGTYPE the key "' .. key .. '" holds a ' .. kind .. ', not a ' .. want ..
        ': choose another queue name, or delete the key' })
    end
  end
  local seq = redis.call('GET', queue .. ':priorityseq')
  if seq and not string.match(seq, '^%d+$') then
    error({ err = 'WRONGTYPE the key "' .. queue .. ':priorityseq" holds "' .. seq ..
      '", not a count: delete the key' })
  end
end
`;

/**
 * Lua that takes up to n entries into a processing list, the highest
 * priority first: those above 0 in `<queue>:priority` (one ZRANGE, one
 * ZREM, one LPUSH for all of them), then the list (an LMOVE each, wake
 * markers dropped), then those below 0. `<queue>:priority` is looked at
 * only when it exists: a queue without priorities takes as before, one
 * LMOVE per entry. Returns the entries, in the order taken.
 */
const TAKE_MANY = `
local function from_priority(pkey, members, processing, taken)
  if #members == 0 then return end
  redis.call('ZREM', pkey, unpack(members))
  local entries = {}
  for i, member in ipairs(members) do
    local entry = string.sub(member, string.find(member, '|', 1, true) + 1)
    entries[i] = entry
    taken[#taken + 1] = entry
  end
  redis.call('LPUSH', processing, unpack(entries))
end
local function take_many(queue, processing, n)
  local taken = {}
  if n <= 0 then return taken end
  local pkey = queue .. ':priority'
  local prioritized = redis.call('EXISTS', pkey) == 1
  if prioritized then
    -- Scores below 0: priorities above 0.
    from_priority(pkey, redis.call('ZRANGE', pkey, '-inf', '(0', 'BYSCORE', 'LIMIT', 0, n),
      processing, taken)
  end
  while #taken < n do
    local entry = redis.call('LMOVE', queue, processing, 'RIGHT', 'LEFT')
    if not entry then break end
    if entry == '${WAKE}' then
      redis.call('LREM', processing, 1, entry)
    else
      taken[#taken + 1] = entry
    end
  end
  if prioritized and #taken < n then
    from_priority(pkey, redis.call('ZRANGE', pkey, 0, n - #taken - 1), processing, taken)
  end
  return taken
end
`;

/**
 * The functions of ACK, shared with CANCEL (`_cancel.ts`): recording one
 * job's outcome with everything that follows from it (its dependents
 * released or skipped, its unique key freed, its schedule's bookkeeping, a
 * cancel request for it dropped). KEYS and ARGV 1 and 4 as in ACK's header;
 * KEYS[13] is the set of refs whose cancel was asked for.
 */
export const ACK_FUNCTIONS = ENQUEUE + `
local prefix, keep = ARGV[1], ARGV[2]
local cancelling = redis.call('EXISTS', KEYS[13]) == 1
-- Frees a unique key if job ref holds it.
local function free(key, ref)
  local holder = redis.call('HGET', KEYS[11], key)
  if holder and string.sub(holder, 1, #ref + 1) == ref .. '\\n' then redis.call('HDEL', KEYS[11], key) end
end
local function skip_dependents(batch, key, dependents)
  local stack = { key }
  while #stack > 0 do
    local k = table.remove(stack)
    local kdeps = prefix .. 'dependents:' .. k
    local why = 'skipped: "' .. string.sub(k, #batch + 2) .. '" ' ..
      (k == key and 'failed' or 'was skipped')
    local members = k == key and dependents or redis.call('SMEMBERS', kdeps)
    for _, d in ipairs(members) do
      local blocked = redis.call('HGET', KEYS[5], d)
      if blocked then
        redis.call('HDEL', KEYS[5], d)
        local ukey = cjson.decode(blocked).key
        if type(ukey) == 'string' then free(ukey, d) end
        redis.call('HDEL', KEYS[6], d)
        local id = string.sub(d, #batch + 2)
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', keep, '*',
          'batch', batch, 'id', id, 'status', 'skipped',
          'data', cjson.encode({ id = id, batch = batch, status = 'skipped', attempts = 0, error = why }))
        stack[#stack + 1] = d
      end
    end
    redis.call('DEL', kdeps)
  end
end
local function release_dependents(dependents)
  for _, d in ipairs(dependents) do
    if redis.call('HINCRBY', KEYS[6], d, -1) <= 0 then
      local entry = redis.call('HGET', KEYS[5], d)
      redis.call('HDEL', KEYS[5], d)
      redis.call('HDEL', KEYS[6], d)
      local at = redis.call('HGET', KEYS[10], d)
      if at then redis.call('HDEL', KEYS[10], d) end
      if entry and at and tonumber(at) > now_ms() then
        redis.call('ZADD', KEYS[9], at, 'dep|' .. entry)
      elseif entry then
        enqueue(KEYS[2], entry, priority_of(entry))
      end
    end
  end
end
local function ack(entry, batch, id, status, data, dead, sid, key, taken)
  -- Sent again after a lost reply: found nowhere, the first run did it all.
  if not taken and ARGV[4] == '1' and not redis.call('LPOS', KEYS[1], entry) and
      not redis.call('LPOS', KEYS[2], entry) then
    return 0
  end
  local key_ref = batch .. '/' .. id
  local deps = prefix .. 'dependents:' .. key_ref
  -- Who waits for this job: read before any write (a wrong type fails here).
  local dependents = {}
  if batch ~= '' then dependents = redis.call('SMEMBERS', deps) end
  if #dependents > 0 then
    expect(2, 'list') expect(5, 'hash') expect(6, 'hash') expect(9, 'zset') expect(10, 'hash')
    expect(11, 'hash') -- a skipped dependent frees its key
    expect_priority(KEYS[2]) -- a released one may go to <queue>:priority
  elseif key ~= '' then
    expect(11, 'hash')
  end
  if sid ~= '' then expect(7, 'hash') expect(8, 'hash') expect_priority(KEYS[2]) end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', keep, '*',
    'batch', batch, 'id', id, 'status', status, 'data', data)
  if dead ~= '' then redis.call('LPUSH', KEYS[4], dead) end
  local removed = 1
  if not taken then
    removed = redis.call('LREM', KEYS[1], 1, entry)
    if removed == 0 then removed = -redis.call('LREM', KEYS[2], 1, entry) end
  end
  -- A cancel asked for it (see CANCEL_RUNNING): it has its outcome now.
  if cancelling then redis.call('SREM', KEYS[13], key_ref) end
  if key ~= '' then free(key, key_ref) end
  -- Its group's slot, unless another consumer still holds a copy (removed 0).
  if removed ~= 0 then unslot(KEYS[2], entry, not taken) end
  if sid ~= '' then
    redis.call('HSET', KEYS[8], sid, cjson.encode({ id = id, status = status }))
    if redis.call('HINCRBY', KEYS[7], sid, -1) <= 0 then redis.call('HDEL', KEYS[7], sid) end
    local waiting = redis.call('LPOP', prefix .. 'waiting:' .. sid)
    if waiting then
      enqueue(KEYS[2], waiting, priority_of(waiting))
      redis.call('HINCRBY', KEYS[7], sid, 1)
    end
  end
  if #dependents > 0 then
    if status == 'succeeded' then
      release_dependents(dependents)
      redis.call('DEL', deps)
    else
      skip_dependents(batch, key_ref, dependents)
    end
  end
  return removed
end
`;

/**
 * Finishes jobs, several in one call: for each, records its outcome and
 * removes its entry, then either releases the jobs waiting for it (success)
 * or marks them skipped, transitively (failure); then takes as many next
 * entries into the processing list as asked. One round trip for all the
 * outcomes a consumer has at one moment, and the takes that refill it.
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 results, 4 dead,
 *   5 blocked, 6 pending, 7 active, 8 lastrun, 9 delayed, 10 notbefore,
 *   11 unique, 12 the caller's progress hash, 13 cancel (refs whose
 *   cancel was asked for: a job's outcome drops its ref).
 * - ARGV: 1 key prefix, 2 about how many records `results` keeps, 3 how
 *   many next entries to take (0 while stopping), 4 again ("1" when sent
 *   again after a lost reply: then an entry found nowhere means the first
 *   run recorded it, and nothing is written twice), 5 how many refs
 *   (`batch/id`) follow to remove from the progress hash (the jobs of this
 *   call the consumer had written there: see `_progress.ts`), then those
 *   refs; then 8 per job: entry,
 *   batch ("" for an entry pushed by hand), job id, status, data (the
 *   outcome as JSON), dead record or "", the recurring job this entry is a
 *   run of or "", and its unique key or "".
 * - A job's unique key is freed if this job holds it (a skipped dependent's
 *   too: it has an outcome as well).
 * - A run of a recurring job counts one run fewer in `active`, records
 *   itself in `lastrun`, and lets the run waiting for it (`overlap:
 *   "queue"`) into the queue. A released dependent that has an `at` still in
 *   the future goes to `delayed` instead of the queue.
 * - Returns `{ removed, next }`: removed has, per job, 1 if the entry was in
 *   the processing list, -1 if it had been moved back to the queue (and was
 *   taken out again), 0 if neither (another consumer holds the copy, or the
 *   first run of a resent call did it all); next lists the entries taken.
 * - No TYPE check of every key for every job (they were 7 of a job's 12
 *   Redis calls): the consumer checks the queue's keys when it starts and
 *   when a script answers WRONGTYPE ({@linkcode checkKeyTypes}). What keeps
 *   a key of the wrong type from losing an entry is the order, per job:
 *   reads and checks first, then the writes that a wrong type can fail
 *   (XADD, LPUSH), and the entry leaves the processing list only after
 *   them. A write that fails ends the script: the jobs before it are done,
 *   its own entry and the later ones stay where they were (at worst a job
 *   runs again and is recorded twice, never lost). The rarer paths (a job
 *   others wait for, a run of a schedule) check their keys before writing.
 * - Called by `RedisConsumer` (consumer.ts) with the jobs it finished in one
 *   turn: succeeded, failed for good, or malformed.
 */
export const ACK: Script = {
  name: "ack",
  source: EXPECT + TAKE_MANY + ACK_FUNCTIONS + `
local written = tonumber(ARGV[5])
if written > 0 then redis.call('HDEL', KEYS[12], unpack(ARGV, 6, 5 + written)) end
local removed = {}
for i = 6 + written, #ARGV, 8 do
  removed[#removed + 1] = ack(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4],
    ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
end
release_freed(KEYS[2])
wake(KEYS[2])
return { removed, take_many(KEYS[2], KEYS[1], tonumber(ARGV[3])) }`,
};

/**
 * Takes up to N entries from the queue into the caller's processing list,
 * each moved as BLMOVE/LMOVE would (RIGHT of the queue, LEFT of the list):
 * one command for many, where pipelined LMOVEs cost one each.
 *
 * - KEYS: 1 queue, 2 the caller's processing list.
 * - ARGV: 1 how many at most, 2 "1" when the caller's last BLMOVE moved a
 *   wake marker into its list (removed here first).
 * - Takes the highest priority first (TAKE_MANY); returns the entries in
 *   the order taken (possibly none).
 * - Called by `RedisConsumer` (consumer.ts) after a blocking take, to fill
 *   the rest of its room in one round trip.
 */
export const TAKE: Script = {
  name: "take",
  source: TAKE_MANY + `
if ARGV[2] == '1' then redis.call('LREM', KEYS[2], 1, '${WAKE}') end
return take_many(KEYS[1], KEYS[2], tonumber(ARGV[1]))`,
};

/**
 * Schedules a job's next attempt: removes the entry (as ACK does) and adds
 * the next attempt's entry to `delayed`, due `delay` ms from the server's
 * clock. A member of `delayed` is `<token>|<entry>`: two identical entries
 * that fail stay two retries (a sorted set holds a member once).
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 delayed, 4 cancel.
 * - ARGV: 1 entry, 2 `<token>|<next attempt's entry>`, 3 delay in ms, 4
 *   the job's ref (`batch/id`).
 * - Returns 1 when scheduled; 0, scheduling nothing, if the entry was in
 *   neither list (another consumer holds the copy); -1, scheduling
 *   nothing, if the job's cancel was asked for (`<queue>:cancel`): the
 *   consumer then records it `cancelled` with ACK instead.
 * - Called by `RedisConsumer` (consumer.ts) when a failed attempt has
 *   retries left.
 */
export const RETRY: Script = {
  name: "retry",
  source: EXPECT + ENQUEUE + `
expect(1, 'list') expect(2, 'list') expect(3, 'zset')
if not redis.call('LPOS', KEYS[1], ARGV[1]) and not redis.call('LPOS', KEYS[2], ARGV[1]) then
  return 0
end
-- Its cancel was asked for (the consumer has not read it yet): no retry;
-- the caller records it cancelled (ACK), the entry stays where it is.
if ARGV[4] and redis.call('SISMEMBER', KEYS[4], ARGV[4]) == 1 then return -1 end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then redis.call('LREM', KEYS[2], 1, ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
-- Its group's slot is free until the next attempt is released (PROMOTE, enqueue).
unslot(KEYS[2], ARGV[1], true)
release_freed(KEYS[2])
wake(KEYS[2])
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
  source: EXPECT + ENQUEUE + `
expect(1, 'zset') expect(2, 'list') expect_priority(KEYS[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  -- A member is <token>|<entry> (or <batch/id>|, dep|); one without (an
  -- older version's) is the entry itself. The entry starts with '{', so the
  -- first '|{' ends the prefix even when a job id holds a '|'.
  local bar = string.sub(member, 1, 1) ~= '{' and string.find(member, '|{', 1, true)
  local entry = bar and string.sub(member, bar + 1) or member
  redis.call('ZREM', KEYS[1], member)
  enqueue(KEYS[2], entry, priority_of(entry))
end
-- Groups whose rate lets another job start now (_group_lua.ts).
local ticks = KEYS[2] .. ':groupticks'
for _, g in ipairs(redis.call('ZRANGEBYSCORE', ticks, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', ticks, g)
  release(KEYS[2], g)
end
wake(KEYS[2])
local soonest = -1
for _, key in ipairs({ KEYS[1], ticks }) do
  local next = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if next[2] ~= nil then
    local wait = math.max(0, tonumber(next[2]) - now)
    if soonest < 0 or wait < soonest then soonest = wait end
  end
end
return { #due, soonest }`,
};

/**
 * Moves the processing list of every registered consumer whose heartbeat
 * has expired back to the queue, to be taken next (priority 0 at the
 * list's tail, any other by its priority: `give_back`), and forgets that
 * consumer (and the progress of the jobs it ran: they run again).
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
  source: EXPECT + ENQUEUE + `
expect(1, 'set') expect(2, 'list') expect_priority(KEYS[2])
local moved = 0
local gone = {}
for _, c in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if c ~= ARGV[2] and redis.call('EXISTS', ARGV[1] .. 'heartbeat:' .. c) == 0 then
    local list = ARGV[1] .. 'processing:' .. c
    moved = moved + give_back(KEYS[2], redis.call('LRANGE', list, 0, -1))
    redis.call('DEL', list)
    redis.call('DEL', ARGV[1] .. 'progress:' .. c)
    redis.call('SREM', KEYS[1], c)
    gone[#gone + 1] = c
  end
end
return { moved, gone }`,
};

/**
 * Gives entries of the caller's processing list back to the queue, to be
 * taken next (priority 0 at the list's tail, any other by its priority):
 * the ones named in ARGV (one copy each), or all of them when none is
 * named, and then, if `leave` is "1", deregisters the caller.
 *
 * - KEYS: 1 the caller's processing list, 2 queue, 3 consumers, 4 the
 *   caller's heartbeat, 5 the caller's progress hash.
 * - ARGV: 1 the caller's id, 2 leave ("1" to deregister), 3… the entries
 *   to give back (none: all).
 * - Returns how many entries moved.
 * - Called by `RedisConsumer` (consumer.ts) for entries it took but never
 *   got (their replies were lost; leave "0"), and when it stops (all of
 *   them; leave "1").
 */
export const RELEASE: Script = {
  name: "release",
  source: EXPECT + ENQUEUE + `
expect(1, 'list') expect(2, 'list') expect(3, 'set') expect_priority(KEYS[2])
local moved = 0
if #ARGV == 2 then
  moved = give_back(KEYS[2], redis.call('LRANGE', KEYS[1], 0, -1))
  redis.call('DEL', KEYS[1])
else
  local named = {}
  for i = 3, #ARGV do
    if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then named[#named + 1] = ARGV[i] end
  end
  moved = give_back(KEYS[2], named)
end
if ARGV[2] == '1' then
  redis.call('SREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[4], KEYS[5])
end
return moved`,
};

/**
 * Runs {@linkcode PROMOTE} for a queue.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @returns The ms until the next retry or group tick is due; -1 when none is.
 */
export async function promote(client: RedisClient, keys: QueueKeys): Promise<number> {
  const reply = await runScript(client, PROMOTE, [keys.delayed, keys.queue], [1000]);
  return Number((reply as RedisReply[])[1]);
}

/**
 * Runs {@linkcode RECOVER} for a consumer.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param consumer The caller's id (never recovered).
 * @returns The entries moved, and the ids of the consumers forgotten.
 */
export async function recover(
  client: RedisClient,
  keys: QueueKeys,
  consumer: string,
): Promise<[number, string[]]> {
  return await runScript(client, RECOVER, [keys.consumers, keys.queue], [
    keys.prefix,
    consumer,
  ]) as [number, string[]];
}

/**
 * Runs {@linkcode RELEASE} for a consumer.
 *
 * @param client The connection.
 * @param keys The queue's keys.
 * @param consumer The consumer's id.
 * @param entries The entries to give back (none: all).
 * @param leave Whether the consumer deregisters.
 * @param timeout For the call, in ms.
 * @returns How many entries moved.
 */
export function releaseHeld(
  client: RedisClient,
  keys: QueueKeys,
  consumer: string,
  entries: RedisArg[],
  leave: boolean,
  timeout?: number,
): Promise<RedisReply> {
  return runScript(
    client,
    RELEASE,
    [
      keys.processing(consumer),
      keys.queue,
      keys.consumers,
      keys.heartbeat(consumer),
      keys.progress(consumer),
    ],
    [consumer, leave ? "1" : "0", ...entries],
    { timeout },
  );
}

/**
 * Sends one dead record's job back to the queue: removes the record and
 * enqueues the entry in one step, so a record is retried once however many
 * hands (dashboards) click at once; the second finds it gone. A job with a
 * unique key takes the key again, and is not enqueued while another job
 * holds it.
 *
 * - KEYS: 1 dead, 2 queue, 3 unique.
 * - ARGV: 1 the dead record's text (as read from the list), 2 the entry to
 *   enqueue (the record's, without its attempt count), 3 its unique key or
 *   "", 4 its ref (`batch/id`).
 * - Returns 1 enqueued, 0 no such record (already retried or deleted), -1
 *   not enqueued: its key is held (the record stays).
 * - Called by `retryDead` (`_inspect.ts`), for `RedisQueue.prototype.retryDead`.
 */
export const DEAD_RETRY: Script = {
  name: "dead-retry",
  source: EXPECT + ENQUEUE + `
expect(1, 'list') expect(2, 'list') expect(3, 'hash') expect_priority(KEYS[2])
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
if ARGV[3] ~= '' then
  if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 1 then return -1 end
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[4] .. '\\n' .. ARGV[2])
end
redis.call('LREM', KEYS[1], 1, ARGV[1])
enqueue(KEYS[2], ARGV[2], priority_of(ARGV[2]))
wake(KEYS[2])
return 1`,
};

/**
 * Fires one tick of a recurring job, exactly once however many consumers
 * race for it: a compare-and-set on its stored tick. Only the caller that
 * finds `ticks` still holding the tick it read fires it, and moves the
 * stored tick on in the same step; any other finds the next tick there and
 * does nothing.
 *
 * - KEYS: 1 ticks, 2 schedules, 3 queue, 4 active, 5 results.
 * - ARGV: 1 the recurring job's id, 2 the tick the caller read (ms), 3 the
 *   tick after it (ms), 4 the run's entry, or "" to fire nothing (ticks
 *   missed with `catchUp: "skip"`), 5 overlap (`skip`, `queue`, `allow`),
 *   6 the run's id, 7 key prefix, 8 about how many records `results` keeps.
 * - With `overlap: "skip"` and a run of the job still queued or running,
 *   the tick is recorded `skipped` in `results`; with `"queue"` its entry
 *   waits in `waiting:<id>` for ACK to let it in; else it is queued and
 *   counted in `active`.
 * - Returns 0 (not fired: another consumer did, or the job is gone), 1
 *   (queued, or nothing to run), 2 (skipped), 3 (waiting).
 * - Called by the consumers' ticker (`_ticker.ts`) for each due tick.
 */
export const FIRE: Script = {
  name: "fire",
  source: EXPECT + ENQUEUE + `
expect(1, 'zset') expect(2, 'hash') expect(3, 'list') expect(4, 'hash') expect(5, 'stream')
expect_priority(KEYS[3])
local stored = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not stored or tonumber(stored) ~= tonumber(ARGV[2]) then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if ARGV[4] == '' then return 1 end
local active = tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0')
if active > 0 and ARGV[5] == 'skip' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*',
    'batch', '', 'id', ARGV[6], 'status', 'skipped',
    'data', cjson.encode({ id = ARGV[6], batch = '', status = 'skipped', attempts = 0,
      error = 'skipped: the run of "' .. ARGV[1] .. '" before it was still running' }))
  return 2
end
if active > 0 and ARGV[5] == 'queue' then
  redis.call('RPUSH', ARGV[7] .. 'waiting:' .. ARGV[1], ARGV[4])
  return 3
end
redis.call('HINCRBY', KEYS[4], ARGV[1], 1)
enqueue(KEYS[3], ARGV[4], priority_of(ARGV[4]))
wake(KEYS[3])
return 1`,
};

/**
 * Removes recurring jobs: their definitions, next ticks, counts and waiting
 * runs (runs already queued or running go on).
 *
 * - KEYS: 1 schedules, 2 ticks, 3 active, 4 lastrun.
 * - ARGV: 1 key prefix, 2… the ids.
 * - Returns how many of the ids were defined.
 * - Called by `RedisQueue.prototype.unschedule` (queue.ts).
 */
export const UNSCHEDULE: Script = {
  name: "unschedule",
  source: EXPECT + `
expect(1, 'hash') expect(2, 'zset') expect(3, 'hash') expect(4, 'hash')
local removed = 0
for i = 2, #ARGV do
  removed = removed + redis.call('HDEL', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  redis.call('DEL', ARGV[1] .. 'waiting:' .. ARGV[i])
end
return removed`,
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
