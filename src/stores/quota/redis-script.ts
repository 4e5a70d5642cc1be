/**
 * The Lua scripts of the Redis quota store. Their arithmetic mirrors
 * MemoryQuotaStore (src/stores/quota/memory.ts) operation for operation, so
 * both adapters give the same numbers; see that file for the semantics.
 *
 * Time: Redis `TIME` (Redis ≥ 5 replicates a script's effects, not the
 * script, so a non-deterministic clock is fine). ARGV[2] may carry a time in
 * ms instead — only the contract tests use it (RedisQuotaStore `now` option),
 * to step through exact boundaries like the memory store does.
 */

/**
 * KEYS[1] = reservation record, KEYS[1 + i] = the key of limit i.
 * ARGV[1] = request id, ARGV[2] = time override ('' = TIME), ARGV[3] = the
 * limits, one after the other, 5 space-separated words each (one argument
 * instead of 5 per limit: every argument costs the client a length
 * computation and RESP framing, issue #15): kind (r|w|d|m|c), p1, p2, p3,
 * settle class (0: none, 1: tokens, 2: cost):
 *   r: ratePerSec, burst          w: limit, windowMs, cost
 *   d: limit, utcOffsetMs, cost   m: limit, utcOffsetMs, cost
 *   c: limit, leaseMs
 * Reply, as one string of space-separated integers: admitted (1|0), now,
 * index of the first refusing limit (1-based, 0 when admitted), retryAfterMs,
 * then limit, remaining, resetMs per limit.
 *
 * Window sub-windows, day and month buckets are fields of one hash per limit
 * (field = sub-window, day or month index; month = year × 12 + month − 1 of
 * the local date, from days-since-epoch by civil-calendar arithmetic), so every key the script touches is declared in
 * KEYS. A window hash holds at most 61 live fields (60 sub-windows + the
 * current one); older ones are deleted whenever the limit is charged.
 *
 * TOTAL: a window hash also keeps its running total, so an admission reads
 * three fields instead of all 61 sub-windows (reading them was most of the
 * script's time, issue #15, `npm run bench:quota-redis`): field -1 = the
 * sum of the sub-windows from field -2 on, field -3 = the newest non-zero
 * sub-window ('' if none). Charges and settlements (SETTLE_LUA) keep them
 * right; the total is rebuilt from the sub-windows whenever the window has
 * moved on since it was written (once per sub-window, i.e. per second of a
 * minute window, under load), when a settlement empties the newest
 * sub-window, and when the fields are missing. Negative field names keep a
 * script of an earlier release working on the same hash during a rolling
 * upgrade: it takes them for expired sub-windows, ignores and deletes them,
 * so the next admission here rebuilds; its settlements, which do not follow
 * the total, are corrected at the next rebuild, at most one sub-window later.
 */
export const ADMIT_LUA = `
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local rid = ARGV[1]
local spec = {}
for w in string.gmatch(ARGV[3], '%S+') do spec[#spec + 1] = w end
local n = #KEYS - 1
local DAY = 86400000
local GC = 1000
local RETRY_C = 1000
local RES_DEFAULT = 600000
local RES_SLACK = 60000
local SUB = 60

local function fmt(x) return string.format('%d', x) end
-- The reply as one string of integers (one bulk string for the client to read instead of 4 + 3n integers).
local function packed(t)
  local w = {}
  for i = 1, #t do w[i] = fmt(t[i]) end
  return table.concat(w, ' ')
end
-- Days since 1970-01-01 → (year, month 1..12) and back (proleptic Gregorian calendar, integer arithmetic).
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function daysFrom(y, m)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5)
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function nextToken(tokens, burst, rate)
  if tokens >= burst then return 0 end
  return math.ceil(((math.floor(tokens) + 1 - tokens) * 1000) / rate)
end
local function leaves(i, w, b) return (i + 1) * b + w - 1 end
local function windowRetry(limit, w, b, cost, counted, sum)
  local need = limit - cost
  if need < 0 then return w end
  local left = sum
  for _, e in ipairs(counted) do
    left = left - e[2]
    if left <= need then return math.max(1, leaves(e[1], w, b) - now) end
  end
  return w
end

local checks = {}
for i = 1, n do
  local key = KEYS[i + 1]
  local b = 1 + (i - 1) * 5
  local kind = spec[b]
  local p1 = tonumber(spec[b + 1])
  local p2 = tonumber(spec[b + 2])
  local p3 = tonumber(spec[b + 3])
  local c = { kind = kind, key = key, cls = spec[b + 4] }
  if kind == 'r' then
    local rate, burst = p1, p2
    local tokens, ts = burst, now
    local h = redis.call('HMGET', key, 'tokens', 'ts')
    if h[1] and h[2] then
      tokens = tonumber(h[1])
      ts = tonumber(h[2])
      local el = now - ts
      if el > 0 then tokens = math.min(burst, tokens + (el * rate) / 1000) end
    end
    local after = tokens - 1
    c.ok = tokens >= 1
    c.limit = burst
    c.remC = math.max(0, math.floor(after))
    c.resetC = nextToken(after, burst, rate)
    c.remU = math.floor(tokens)
    c.resetU = nextToken(tokens, burst, rate)
    c.retry = c.resetU
    c.after = after
    c.ts = math.max(now, ts)
    c.ttl = math.ceil((burst * 1000) / rate) + GC
  elseif kind == 'w' then
    local limit, w, cost = p1, p2, p3
    local b = math.ceil(w / SUB)
    local idx = math.floor(now / b)
    local oldest = math.floor((now - w + 1) / b)
    local sum = 0
    local newest = nil
    -- The window's running total (see TOTAL above): trusted while it covers exactly the sub-windows from 'oldest' on;
    -- otherwise (the window moved on, a settlement emptied the newest sub-window, an older script charged the hash,
    -- a new key) every sub-window is read once and the total rebuilt when the limit is charged.
    -- The current sub-window's count comes along, so that the charge is one HSET with the new total.
    local m = redis.call('HMGET', key, '-1', '-2', '-3', fmt(idx))
    c.cur = tonumber(m[4]) or 0
    c.fresh = not m[4]
    if m[1] and m[2] and tonumber(m[2]) == oldest then
      sum = tonumber(m[1])
      newest = tonumber(m[3])
    else
      local h = redis.call('HGETALL', key)
      -- Sub-windows that have left the window: deleted when the limit is charged.
      local stale = {}
      for j = 1, #h, 2 do
        local si = tonumber(h[j])
        if si >= oldest then
          local cnt = tonumber(h[j + 1])
          if cnt ~= 0 then
            sum = sum + cnt
            if newest == nil or si > newest then newest = si end
          end
        elseif si >= 0 then
          stale[#stale + 1] = h[j]
        end
      end
      c.stale = stale
    end
    c.ok = sum + cost <= limit
    c.limit = limit
    c.remC = math.max(0, math.floor(limit - sum - cost))
    local nc = idx
    if newest and newest > nc then nc = newest end
    c.resetC = leaves(nc, w, b) - now
    c.remU = math.max(0, math.floor(limit - sum))
    if newest then c.resetU = leaves(newest, w, b) - now else c.resetU = 0 end
    if c.ok then
      c.retry = 0
    else
      -- The counted sub-windows oldest first, only for a refusal: building and sorting them on every admission (up to
      -- 61 of them per window) cost Redis more than the rest of the decision.
      local h = redis.call('HGETALL', key)
      local counted = {}
      for j = 1, #h, 2 do
        local si = tonumber(h[j])
        local cnt = tonumber(h[j + 1])
        if si >= oldest and cnt ~= 0 then counted[#counted + 1] = { si, cnt } end
      end
      table.sort(counted, function(x, y) return x[1] < y[1] end)
      c.retry = windowRetry(limit, w, b, cost, counted, sum)
    end
    c.idx = idx
    c.keep = oldest
    c.cost = cost
    c.sum = sum
    c.newest = newest
    c.ttl = leaves(idx, w, b) - now + GC
  elseif kind == 'd' or kind == 'm' then
    local limit, off, cost = p1, p2, p3
    local idx, reset
    if kind == 'd' then
      idx = math.floor((now + off) / DAY)
      reset = (idx + 1) * DAY - off - now
    else
      local y, m = civil(math.floor((now + off) / DAY))
      idx = y * 12 + m - 1
      local ny, nm = y, m + 1
      if nm > 12 then ny, nm = y + 1, 1 end
      reset = daysFrom(ny, nm) * DAY - off - now
    end
    local found = tonumber(redis.call('HGET', key, fmt(idx)))
    local count = found or 0
    c.fresh = found == nil
    c.ok = count + cost <= limit
    c.limit = limit
    c.remC = math.max(0, math.floor(limit - count - cost))
    c.resetC = reset
    c.remU = math.max(0, math.floor(limit - count))
    c.resetU = reset
    c.retry = reset
    c.idx = idx
    c.keep = idx - 1
    c.cost = cost
    c.ttl = reset + DAY + GC
  else
    local limit, lease = p1, p2
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    local count = redis.call('ZCARD', key)
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local earliest = nil
    if first[2] then earliest = tonumber(first[2]) end
    c.ok = count < limit
    c.limit = limit
    c.remC = math.max(0, math.floor(limit - count - 1))
    local ec = now + lease
    if earliest and earliest < ec then ec = earliest end
    if limit - count - 1 > 0 then c.resetC = 0 else c.resetC = ec - now end
    c.remU = math.max(0, math.floor(limit - count))
    if count < limit or earliest == nil then c.resetU = 0 else c.resetU = earliest - now end
    if earliest == nil then c.retry = RETRY_C else c.retry = math.max(1, math.min(RETRY_C, earliest - now)) end
    c.lease = lease
  end
  checks[i] = c
end

local denied = 0
local retry = 0
for i = 1, n do
  if not checks[i].ok then
    if denied == 0 then denied = i end
    if checks[i].retry > retry then retry = checks[i].retry end
  end
end
local out = { 0, now, denied, retry }
if denied > 0 then
  for i = 1, n do
    local c = checks[i]
    out[#out + 1] = c.limit
    if c.ok then out[#out + 1] = c.remU else out[#out + 1] = 0 end
    out[#out + 1] = c.resetU
  end
  return packed(out)
end

local res = {}
local maxLease = 0
for i = 1, n do
  local c = checks[i]
  if c.kind == 'r' then
    redis.call('HSET', c.key, 'tokens', string.format('%.17g', c.after), 'ts', fmt(c.ts))
    redis.call('PEXPIRE', c.key, c.ttl)
  elseif c.kind == 'w' or c.kind == 'd' or c.kind == 'm' then
    local field = fmt(c.idx)
    if c.kind == 'w' then
      local newest = c.newest
      if c.cost ~= 0 and (newest == nil or c.idx > newest) then newest = c.idx end
      redis.call('HSET', c.key, field, fmt(c.cur + c.cost), '-1', fmt(c.sum + c.cost), '-2', fmt(c.keep), '-3', newest and fmt(newest) or '')
    else
      redis.call('HINCRBY', c.key, field, c.cost)
    end
    -- Expired buckets, deleted in one call: a window's found while rebuilding its total (none otherwise: the charge
    -- only adds idx ≥ oldest), a day's or month's (a few fields at most) read here.
    local stale = c.stale
    -- A day's or month's expired buckets can only be there when its current bucket is new (charged before, it was
    -- cleaned then): only then are its fields read.
    if stale == nil and (c.kind == 'w' or not c.fresh) then stale = {} end
    if stale == nil then
      stale = {}
      for _, f in ipairs(redis.call('HKEYS', c.key)) do
        if tonumber(f) < c.keep then stale[#stale + 1] = f end
      end
    end
    if #stale > 0 then redis.call('HDEL', c.key, unpack(stale)) end
    -- The key must outlive this bucket by GC: the expiry that needs is the same for every charge of the bucket, so it
    -- was set (or a later one kept) when the bucket was first charged; only a new bucket can need it moved.
    if c.fresh and redis.call('PTTL', c.key) < c.ttl then redis.call('PEXPIRE', c.key, c.ttl) end
    if c.cls == '1' then
      res[#res + 1] = 't:' .. c.key
      res[#res + 1] = field
    elseif c.cls == '2' then
      res[#res + 1] = 'b:' .. c.key
      res[#res + 1] = field
    end
  else
    redis.call('ZADD', c.key, now + c.lease, rid)
    if redis.call('PTTL', c.key) < c.lease + GC then redis.call('PEXPIRE', c.key, c.lease + GC) end
    res[#res + 1] = 'l:' .. c.key
    res[#res + 1] = '1'
    if c.lease > maxLease then maxLease = c.lease end
  end
end
redis.call('DEL', KEYS[1])
if #res > 0 then
  redis.call('HSET', KEYS[1], unpack(res))
  if maxLease == 0 then maxLease = RES_DEFAULT end
  redis.call('PEXPIRE', KEYS[1], maxLease + RES_SLACK)
end
out[1] = 1
for i = 1, n do
  local c = checks[i]
  out[#out + 1] = c.limit
  out[#out + 1] = c.remC
  out[#out + 1] = c.resetC
end
return packed(out)
`;

/**
 * Settles the reservations of several requests of one tag at once (the
 * settlements handed in during one turn of the sidecar's event loop):
 * KEYS[k] = reservation record of request k, ARGV[3k - 2] = its request id,
 * ARGV[3k - 1] = its token delta, ARGV[3k] = its cost delta. Each record
 * names the token bucket hashes (field `t:<key>` = bucket index), budget
 * bucket hashes (`b:<key>`) and lease sets (`l:<key>`) its admission charged. Those keys are not in KEYS (settle() only knows the request), but
 * they were built from the same `{tag}` as the records, so they live in the
 * same cluster slot. Reply: how many records were settled (a missing record,
 * already settled or expired, counts 0).
 */
export const SETTLE_LUA = `
local settled = 0
for k = 1, #KEYS do
  local rec = redis.call('HGETALL', KEYS[k])
  if #rec > 0 then
    local rid = ARGV[3 * k - 2]
    local tokenDelta = tonumber(ARGV[3 * k - 1])
    local costDelta = tonumber(ARGV[3 * k])
    for i = 1, #rec, 2 do
      local f = rec[i]
      local v = rec[i + 1]
      local t = string.sub(f, 1, 2)
      local key = string.sub(f, 3)
      if t == 't:' or t == 'b:' then
        local delta = tokenDelta
        if t == 'b:' then delta = costDelta end
        if delta ~= 0 then
          -- The bucket with a window's running total (ADMIT_LUA, TOTAL; absent from day and month buckets).
          local m = redis.call('HMGET', key, v, '-1', '-2', '-3')
          local cur = m[1]
          if cur then
            local nv = tonumber(cur) + delta
            if nv < 0 then nv = 0 end
            local vi = tonumber(v)
            if m[2] and m[3] and vi >= tonumber(m[3]) then
              -- The total follows a sub-window it covers; emptying its newest sub-window drops the total, to be
              -- rebuilt by the next admission.
              local newest = tonumber(m[4])
              if nv == 0 and newest == vi then
                redis.call('HDEL', key, '-1', '-2', '-3')
                redis.call('HSET', key, v, '0')
              else
                local total = string.format('%d', tonumber(m[2]) + nv - tonumber(cur))
                if nv ~= 0 and (newest == nil or vi > newest) then
                  redis.call('HSET', key, v, string.format('%d', nv), '-1', total, '-3', v)
                else
                  redis.call('HSET', key, v, string.format('%d', nv), '-1', total)
                end
              end
            else
              redis.call('HSET', key, v, string.format('%d', nv))
            end
          end
        end
      elseif t == 'l:' then
        redis.call('ZREM', key, rid)
      end
    end
    redis.call('DEL', KEYS[k])
    settled = settled + 1
  end
end
return settled
`;

/**
 * The lease heartbeat. KEYS = reservation records of requests of one tag
 * (one slot). ARGV[1] = time override ('' = TIME), ARGV[2] = leaseMs, then
 * one request id per key. For each record, every lease it names that is
 * still live (expiry > now) moves to now + leaseMs (never earlier); the
 * record then lives at least leaseMs + 60 s. An expired lease is left alone:
 * its slot may already be someone else's. Reply: 1 per request that still
 * holds a live lease, else 0.
 */
export const RENEW_LUA = `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local lease = tonumber(ARGV[2])
local GC = 1000
local RES_SLACK = 60000
local out = {}
for k = 1, #KEYS do
  local rid = ARGV[k + 2]
  local rec = redis.call('HGETALL', KEYS[k])
  local renewed = 0
  for i = 1, #rec, 2 do
    local f = rec[i]
    if string.sub(f, 1, 2) == 'l:' then
      local key = string.sub(f, 3)
      local exp = tonumber(redis.call('ZSCORE', key, rid))
      if exp and exp > now then
        if now + lease > exp then redis.call('ZADD', key, 'XX', now + lease, rid) end
        if redis.call('PTTL', key) < lease + GC then redis.call('PEXPIRE', key, lease + GC) end
        renewed = 1
      end
    end
  end
  if renewed == 1 and redis.call('PTTL', KEYS[k]) < lease + RES_SLACK then redis.call('PEXPIRE', KEYS[k], lease + RES_SLACK) end
  out[k] = renewed
end
return out
`;
