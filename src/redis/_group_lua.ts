/**
 * The Lua of groups, part of `_scripts.ts`'s ENQUEUE: every script that
 * queues a job queues it through `enqueue`, which holds a grouped job back
 * in its group until the group's limits let it run.
 *
 * ## Keys (for a queue named `q` and a group `g`)
 *
 * | key                  | type   | holds                                                 |
 * | -------------------- | ------ | ----------------------------------------------------- |
 * | `q:groups`           | hash   | group name → its limits as JSON (`{}`: none)          |
 * | `q:group:<g>`        | zset   | jobs of `g` held back: `<seq>|<entry>`, scored −prio  |
 * | `q:groupactive:<g>`  | set    | refs (`batch/id`) of `g`'s jobs released and not done |
 * | `q:grouprate:<g>`    | zset   | `g`'s releases in the last window: `<ms>:<ref>`, ms   |
 * | `q:groupticks`       | zset   | groups held back by their rate, by when one may start |
 *
 * ## How a grouped job moves
 *
 * 1. `enqueue` of an entry with a `"group"` adds it to `q:group:<g>` (by
 *    priority, then first in first out: the sequence of `q:priorityseq`),
 *    names the group in `q:groups`, then calls `release(g)`.
 * 2. `release(g)` moves the first of `g`'s held jobs into the queue, as many
 *    as its limits allow: `concurrency` minus the members of
 *    `q:groupactive:<g>`, and `rate.limit` minus the releases of the last
 *    `rate.window` ms in `q:grouprate:<g>` (a sliding window). Each one
 *    released joins `q:groupactive:<g>` (its slot) and the rate's log, and
 *    goes to the queue's tail (taken next; by its priority when it has one),
 *    so that a release is a start as nearly as may be. When the rate stops
 *    it, the group goes into `q:groupticks` at the instant the oldest release
 *    leaves the window, and PROMOTE calls `release(g)` then.
 * 3. A released job is an entry like any other: consumers take it, a dead
 *    consumer's recovery puts it back in the queue still holding its slot
 *    (it runs again and frees the slot then: a SIGKILLed consumer's slot
 *    comes back through the recovery of its jobs, never leaked).
 * 4. `unslot(entry)` frees the slot and releases the next: ACK (its
 *    outcome, whatever it is, when the entry was still held), RETRY (the
 *    next attempt goes to `delayed`, and from there through `enqueue`
 *    again), CANCEL (a released job waiting in the queue). Removing a ref
 *    from a set twice is harmless: a job recorded twice frees its slot once.
 *
 * So a job held back by its group is in no list a consumer takes from: it
 * never blocks another group's or an ungrouped job, and no consumer holds it
 * while it waits. An entry pushed by hand (`LPUSH`) is not held back by its
 * group: it never went through `enqueue`.
 *
 * @module
 */

/**
 * The group functions: `group_of(entry)`, `hold(queue, g, entry, priority)`,
 * `release(queue, g)`, `unslot(queue, entry)`. They use ENQUEUE's `lane`
 * and `priority_of`, and `now_ms`, defined before them.
 */
export const GROUP_FUNCTIONS = `
-- The group and ref (batch/id) of an entry; nil when it has no group.
local function group_of(entry)
  if not string.find(entry, '"group":', 1, true) then return nil end
  local ok, value = pcall(cjson.decode, entry)
  if not ok or type(value) ~= 'table' or type(value.group) ~= 'string' or value.group == '' then
    return nil
  end
  local batch = type(value.batch) == 'string' and value.batch or ''
  return value.group, batch .. '/' .. tostring(value.id)
end
local function hold(queue, g, entry, priority)
  redis.call('HSETNX', queue .. ':groups', g, '{}')
  local seq = redis.call('INCR', queue .. ':priorityseq')
  redis.call('ZADD', queue .. ':group:' .. g, -priority, string.format('%016d', seq) .. '|' .. entry)
end
local function limits_of(queue, g)
  local raw = redis.call('HGET', queue .. ':groups', g)
  if not raw then return {} end
  local ok, limits = pcall(cjson.decode, raw)
  if not ok or type(limits) ~= 'table' then return {} end
  return limits
end
local function release(queue, g)
  local held = queue .. ':group:' .. g
  local waiting = redis.call('ZCARD', held)
  if waiting == 0 then return end
  local limits = limits_of(queue, g)
  local active = queue .. ':groupactive:' .. g
  local room = waiting
  if type(limits.concurrency) == 'number' then
    room = math.min(room, limits.concurrency - redis.call('SCARD', active))
  end
  local rate, log, now = limits.rate, nil, nil
  if type(rate) == 'table' and type(rate.limit) == 'number' and type(rate.window) == 'number' then
    log = queue .. ':grouprate:' .. g
    now = now_ms()
    -- A release at ms s is in the window until now >= s + window.
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - rate.window)
    room = math.min(room, rate.limit - redis.call('ZCARD', log))
  else
    rate = nil
  end
  while room > 0 and waiting > 0 do
    -- At most 1000 at a time: unpack() has a limit on its values.
    local members = redis.call('ZRANGE', held, 0, math.min(room, 1000) - 1)
    -- Queued before they leave the held set: a write that fails (a key of
    -- the wrong type) leaves a job twice, never nowhere.
    for _, member in ipairs(members) do
      local entry = string.sub(member, string.find(member, '|', 1, true) + 1)
      local priority = priority_of(entry)
      if priority == 0 then redis.call('RPUSH', queue, entry) else lane(queue, entry, priority) end
      local _, ref = group_of(entry)
      redis.call('SADD', active, ref or member)
      if rate then redis.call('ZADD', log, now, now .. ':' .. (ref or member)) end
    end
    redis.call('ZREM', held, unpack(members))
    waiting = waiting - #members
    room = room - #members
  end
  if rate and waiting > 0 and redis.call('ZCARD', log) >= rate.limit then
    -- The rate holds the rest: a tick when the oldest release leaves the window.
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    redis.call('ZADD', queue .. ':groupticks', 'LT', tonumber(oldest[2]) + rate.window, g)
  end
end
-- A released job is done with its slot (an outcome, a retry, a cancel).
local function unslot(queue, entry)
  local g, ref = group_of(entry)
  if not g then return end
  redis.call('SREM', queue .. ':groupactive:' .. g, ref)
  release(queue, g)
end
`;
