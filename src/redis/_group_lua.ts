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
 * | `q:grouppending:<g>` | set    | refs of `g`'s jobs let in, not started yet (a rate)   |
 * | `q:grouprate:<g>`    | zset   | `g`'s starts in the last window: `<ms>:<seq>:<ref>`   |
 * | `q:groupticks`       | zset   | groups held back by their rate, by when one may start |
 *
 * ## How a grouped job moves
 *
 * 1. `enqueue` of an entry with a `"group"` adds it to `q:group:<g>` (by
 *    priority, then first in first out: the sequence of `q:priorityseq`),
 *    names the group in `q:groups`, then calls `release(g)`.
 * 2. `release(g)` lets the first of `g`'s held jobs into the queue (by
 *    `lane`, as any ready job), as many as its limits allow: `concurrency`
 *    minus the members of `q:groupactive:<g>`, and `rate.limit` minus the
 *    starts of the last `rate.window` ms in `q:grouprate:<g>` (a sliding
 *    window) and minus the jobs let in and not started yet
 *    (`q:grouppending:<g>`). Each one let in joins `q:groupactive:<g>` (its
 *    slot) and, with a rate, `q:grouppending:<g>`. When the rate stops it,
 *    the group goes into `q:groupticks` at the instant the oldest start
 *    leaves the window, and PROMOTE calls `release(g)` then.
 * 2b. A consumer starts a job of a group with a rate only on a free worker,
 *    and tells STARTED (`_groups.ts`), which calls `started(g, ref)`: the
 *    job leaves `pending` and its start enters the log at the server's time
 *    (after the real start). So at any instant, starts in the last window
 *    plus jobs pending is at most `rate.limit`, and every start in a window
 *    is one or the other: at most `rate.limit` start in any window, however
 *    long jobs wait in the queue or a consumer for a worker. A consumer that
 *    does not tell (it does not know of the rate yet, the
 *    call was lost) leaves the job pending until its outcome, and `unslot`
 *    logs the start then: later than it was, so the limit still holds.
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
 * The group functions: `group_of(entry)`, `limits_of(queue, g)` (read once
 * per script call), `has_rate(limits)`, `hold(queue, g, entry, priority)`,
 * `release(queue, g)`, `unslot(queue, entry, ran)`, `started(queue, g,
 * ref)`, `pending_again(queue, entry)` and `release_freed(queue)`, which
 * every script that calls `unslot` or `started` calls before it ends. They
 * use ENQUEUE's `lane`, `priority_of` and `now_ms`, defined before them.
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
-- Per script call: each group's limits once (nothing in a call changes
-- them after reading), and the groups whose slots were freed.
local limits_read, freed = {}, {}
local function limits_of(queue, g)
  local limits = limits_read[g]
  if limits then return limits end
  local raw = redis.call('HGET', queue .. ':groups', g)
  limits = {}
  if raw then
    local ok, value = pcall(cjson.decode, raw)
    if ok and type(value) == 'table' then limits = value end
  else
    redis.call('HSET', queue .. ':groups', g, '{}') -- named, for groups() and cancel
  end
  limits_read[g] = limits
  return limits
end
local function has_rate(limits)
  local rate = limits.rate
  return type(rate) == 'table' and type(rate.window) == 'number' and type(rate.limit) == 'number'
end
local function hold(queue, g, entry, priority)
  limits_of(queue, g)
  local seq = redis.call('INCR', queue .. ':priorityseq')
  redis.call('ZADD', queue .. ':group:' .. g, -priority, string.format('%016d', seq) .. '|' .. entry)
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
  local rate, log, pending = limits.rate, nil, nil
  if has_rate(limits) then
    log = queue .. ':grouprate:' .. g
    pending = queue .. ':grouppending:' .. g
    -- A start at ms s is in the window until now >= s + window.
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now_ms() - rate.window)
    room = math.min(room, rate.limit - redis.call('ZCARD', log) - redis.call('SCARD', pending))
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
      lane(queue, entry, priority_of(entry))
      local _, ref = group_of(entry)
      redis.call('SADD', active, ref or member)
      if rate then redis.call('SADD', pending, ref or member) end
    end
    redis.call('ZREM', held, unpack(members))
    waiting = waiting - #members
    room = room - #members
  end
  if rate and waiting > 0 then
    -- The rate holds the rest: a tick when the oldest start leaves the window
    -- (with no start in it, the next start calls release: see started).
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    if oldest[2] then
      redis.call('ZADD', queue .. ':groupticks', 'LT', tonumber(oldest[2]) + rate.window, g)
    end
  end
end
-- With a rate, the start of job ref enters the window's log, at the
-- server's time (after the start itself: the log errs towards fewer starts).
local function log_start(queue, g, ref)
  local now = now_ms()
  local seq = redis.call('INCR', queue .. ':priorityseq')
  redis.call('ZADD', queue .. ':grouprate:' .. g, now, now .. ':' .. seq .. ':' .. ref)
end
-- A job let in is done with its slot: an outcome or a retry (ran: true; a
-- start not told yet is logged now), a cancel while it waited (false). Its
-- group lets the next in at release_freed(), once per group per call.
local function unslot(queue, entry, ran)
  local g, ref = group_of(entry)
  if not g then return end
  redis.call('SREM', queue .. ':groupactive:' .. g, ref)
  if has_rate(limits_of(queue, g)) and
      redis.call('SREM', queue .. ':grouppending:' .. g, ref) == 1 and ran then
    log_start(queue, g, ref)
  end
  freed[g] = true
end
-- A consumer started job ref of group g (STARTED): it leaves the pending
-- set and its start enters the log, once (its outcome may have come first).
local function started(queue, g, ref)
  if redis.call('SREM', queue .. ':grouppending:' .. g, ref) == 0 then return end
  if has_rate(limits_of(queue, g)) then log_start(queue, g, ref) end
  freed[g] = true
end
-- A job given back to the queue (recovery, a stopping consumer) that a
-- group with a rate let in: pending again, so that its next start counts.
local function pending_again(queue, entry)
  local g, ref = group_of(entry)
  if g and has_rate(limits_of(queue, g)) then
    redis.call('SADD', queue .. ':grouppending:' .. g, ref)
  end
end
-- Lets in what the freed slots and starts allow: every script that calls
-- unslot or started calls this before it ends.
local function release_freed(queue)
  for g in pairs(freed) do release(queue, g) end
  freed = {}
end
`;
