/**
 * The PUSH script: a chunk of a pushed job file enqueued in one step (the
 * other scripts, and what keeps a job from being lost: `_scripts.ts`).
 *
 * @module
 */

import { ENQUEUE, EXPECT, type Script } from "./_scripts.ts";

/**
 * Enqueues a chunk of a pushed batch in one step: the jobs that wait for
 * others go to `blocked`/`pending`/`dependents`, the ready ones to the
 * queue in order, the ones with an `at` to `delayed`. (`push` sends every
 * waiting job before any other, so no dependency can finish before its
 * dependents are registered.) Each job's dependencies come without
 * duplicates (the count must match the set).
 *
 * - KEYS: 1 queue, 2 blocked, 3 pending, 4 delayed, 5 notbefore,
 *   6 schedules, 7 ticks, 8 unique.
 * - ARGV: 1 key prefix, 2 the chunk as JSON: `{ ready: [entry or keyed],
 *   later: [[at ms, member, ref?, key?]], blocked: [[ref, entry,
 *   [dependency refs], at ms or 0, key?]], schedules: [[id, definition,
 *   first tick ms]] }`, refs being `batch/id`. A keyed ready job is `[entry,
 *   ref, key, replace (0/1), head, tail]`: head and tail are the byte
 *   lengths of the entry's `{"id":…` start and `,"batch":…}` end, so that a
 *   replacement can keep the holder's id and batch around this entry's
 *   middle. `later` are one-off jobs with an `at` still to come (the member
 *   is `<ref>|<entry>`); a blocked job's `at` waits in `notbefore` for ACK;
 *   a recurring job's definition replaces any earlier one of its id.
 * - Unique keys: a job with a key that `unique` holds is not enqueued (a
 *   duplicate); with replace, a holder still waiting in the queue gets this
 *   job's entry with its own id and batch (LSET in place). Otherwise the job
 *   takes the key (`<ref>\n<entry>`), which ACK frees at its outcome.
 * - Returns `{ ready count, duplicates: [[id, holder ref, replaced 0/1]] }`.
 * - Called by `RedisQueue.prototype.push` (queue.ts).
 */
export const PUSH: Script = {
  name: "push",
  source: EXPECT + ENQUEUE + `
expect(1, 'list') expect(2, 'hash') expect(3, 'hash') expect(4, 'zset') expect(5, 'hash')
expect(6, 'hash') expect(7, 'zset') expect(8, 'hash') expect_priority(KEYS[1])
local batch = cjson.decode(ARGV[2])
local duplicates = {}
-- Takes the key for ref, or reports the job a duplicate: false then.
local function claim(key, ref, entry, id)
  if not key then return true end
  local holder = redis.call('HGET', KEYS[8], key)
  if not holder then
    redis.call('HSET', KEYS[8], key, ref .. '\\n' .. entry)
    return true
  end
  local cut = string.find(holder, '\\n[^\\n]*$') -- the last: an id may hold one
  duplicates[#duplicates + 1] = { id, string.sub(holder, 1, cut - 1), 0 }
  return false
end
-- A duplicate that replaces its holder's entry, if the holder still waits in the queue.
-- The member of a job held by its group g whose entry is old (a scan of
-- the group's held jobs: replaces only), or nil.
local function held_member(g, old)
  local pattern = '*|' .. string.gsub(old, '[%*%?%[%]\\\\]', '\\\\%0')
  local cursor = '0'
  repeat
    local page = redis.call('ZSCAN', KEYS[1] .. ':group:' .. g, cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = page[1]
    for i = 1, #page[2], 2 do
      if string.sub(page[2][i], -#old - 1) == '|' .. old then return page[2][i], page[2][i + 1] end
    end
  until cursor == '0'
  return nil
end
local function replace(key, entry, id, head, tail)
  local holder = redis.call('HGET', KEYS[8], key)
  local cut = string.find(holder, '\\n[^\\n]*$') -- the last: an id may hold one
  local ref, old = string.sub(holder, 1, cut - 1), string.sub(holder, cut + 1)
  local g = group_of(old)
  -- In another group, its slot would be freed in the wrong one: not replaced.
  local same = g == group_of(entry)
  local at = same and redis.call('LPOS', KEYS[1], old)
  local member, score
  if same and not at and g then member, score = held_member(g, old) end
  if at or member then
    local slash = string.find(ref, '/', 1, true)
    local new = '{"id":' .. cjson.encode(string.sub(ref, slash + 1)) ..
      string.sub(entry, head + 1, #entry - tail) ..
      ',"batch":' .. cjson.encode(string.sub(ref, 1, slash - 1)) .. '}'
    if at then
      redis.call('LSET', KEYS[1], at, new)
    else
      -- In its place among the group's held jobs: its score and sequence.
      -- Removed first: an identical entry makes the same member.
      redis.call('ZREM', KEYS[1] .. ':group:' .. g, member)
      redis.call('ZADD', KEYS[1] .. ':group:' .. g, score,
        string.sub(member, 1, #member - #old) .. new)
    end
    redis.call('HSET', KEYS[8], key, ref .. '\\n' .. new)
  end
  duplicates[#duplicates + 1] = { id, ref, (at or member) and 1 or 0 }
end
local function idOf(ref) return string.sub(ref, string.find(ref, '/', 1, true) + 1) end
for _, b in ipairs(batch.blocked) do
  if claim(b[5], b[1], b[2], idOf(b[1])) then
    redis.call('HSET', KEYS[2], b[1], b[2])
    redis.call('HSET', KEYS[3], b[1], #b[3])
    if b[4] > 0 then redis.call('HSET', KEYS[5], b[1], b[4]) end
    for _, dep in ipairs(b[3]) do redis.call('SADD', ARGV[1] .. 'dependents:' .. dep, b[1]) end
  end
end
for _, l in ipairs(batch.later) do
  if claim(l[4], l[3], string.sub(l[2], #(l[3] or '') + 2), l[3] and idOf(l[3])) then
    redis.call('ZADD', KEYS[4], l[1], l[2])
  end
end
for _, d in ipairs(batch.schedules) do
  redis.call('HSET', KEYS[6], d[1], d[2])
  redis.call('ZADD', KEYS[7], d[3], d[1])
end
local ready, n = {}, 0
local function flush()
  if #ready > 0 then redis.call('LPUSH', KEYS[1], unpack(ready)) end
  n = n + #ready
  ready = {}
end
if #batch.prioritized > 0 then
  -- One INCRBY for the sequence of all of them, one ZADD per 1000.
  local seq = redis.call('INCRBY', KEYS[1] .. ':priorityseq', #batch.prioritized) - #batch.prioritized
  local args = {}
  for i, p in ipairs(batch.prioritized) do
    args[#args + 1] = -p[1]
    args[#args + 1] = string.format('%016d', seq + i) .. '|' .. p[2]
    if #args >= 2000 then
      redis.call('ZADD', KEYS[1] .. ':priority', unpack(args))
      args = {}
    end
  end
  if #args > 0 then redis.call('ZADD', KEYS[1] .. ':priority', unpack(args)) end
  n = n + #batch.prioritized
  woken = woken + #batch.prioritized
end
for _, r in ipairs(batch.ready) do
  if type(r) == 'string' then
    ready[#ready + 1] = r
  else
    local entry, ref, key, again, head, tail, priority = r[1], r[2], r[3], r[4], r[5], r[6], r[7]
    local holder = redis.call('HGET', KEYS[8], key)
    if not holder and (priority ~= 0 or r[8]) then
      redis.call('HSET', KEYS[8], key, ref .. '\\n' .. entry)
      if r[8] then flush() end -- let in after the jobs listed before it
      enqueue(KEYS[1], entry, priority)
      n = n + 1
    elseif not holder then
      redis.call('HSET', KEYS[8], key, ref .. '\\n' .. entry)
      ready[#ready + 1] = entry
    elseif again == 1 then
      flush() -- the holder may be among the entries not pushed yet
      replace(key, entry, idOf(ref), head, tail)
    else
      claim(key, ref, entry, idOf(ref))
    end
  end
  if #ready >= 1000 then flush() end
end
flush()
-- After the push's other ready jobs: let in by their groups in order, none
-- goes before a job listed before it.
-- Grouped jobs: held in their groups, then each group released once.
-- One INCRBY for their sequence, one ZADD per group per 1000 jobs.
if #batch.grouped > 0 then
  local seq = redis.call('INCRBY', KEYS[1] .. ':priorityseq', #batch.grouped) - #batch.grouped
  local per = {}
  for i, h in ipairs(batch.grouped) do
    local args = per[h[3]]
    if not args then
      limits_of(KEYS[1], h[3]) -- names the group
      args = {}
      per[h[3]] = args
    end
    args[#args + 1] = -h[1]
    args[#args + 1] = string.format('%016d', seq + i) .. '|' .. h[2]
    if #args >= 2000 then
      redis.call('ZADD', KEYS[1] .. ':group:' .. h[3], unpack(args))
      per[h[3]] = {}
    end
  end
  for g, args in pairs(per) do
    if #args > 0 then redis.call('ZADD', KEYS[1] .. ':group:' .. g, unpack(args)) end
    release(KEYS[1], g)
  end
  n = n + #batch.grouped
end
wake(KEYS[1])
return { n, duplicates }`,
};
