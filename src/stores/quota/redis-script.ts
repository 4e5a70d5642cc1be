/**
 * The two Lua scripts of the Redis quota store. Their arithmetic mirrors
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
 * ARGV[1] = request id, ARGV[2] = time override ('' = TIME), ARGV[3] = number
 * of limits, then 5 per limit: kind (r|w|d|c), p1, p2, p3, token flag (1|0):
 *   r: ratePerSec, burst          w: limit, windowMs, cost
 *   d: limit, utcOffsetMs, cost   c: limit, leaseMs
 * Reply: admitted (1|0), now, index of the first refusing limit (1-based, 0
 * when admitted), retryAfterMs, then limit, remaining, resetMs per limit.
 *
 * Window and day buckets are fields of one hash per limit (field = bucket
 * index), so every key the script touches is declared in KEYS.
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
local n = tonumber(ARGV[3])
local DAY = 86400000
local GC = 1000
local RETRY_C = 1000
local RES_DEFAULT = 600000
local RES_SLACK = 60000

local function fmt(x) return string.format('%d', x) end
local function nextToken(tokens, burst, rate)
  if tokens >= burst then return 0 end
  return math.ceil(((math.floor(tokens) + 1 - tokens) * 1000) / rate)
end
local function windowRetry(limit, w, cost, prev, cur, elapsed)
  local need = limit - cost
  if need < 0 then return w - elapsed end
  if cur <= need then
    local e = math.ceil(w * (1 - (need - cur) / prev))
    return math.max(1, e - elapsed)
  end
  local e2 = math.ceil(w * (1 - need / cur))
  return w - elapsed + e2
end

local checks = {}
for i = 1, n do
  local key = KEYS[i + 1]
  local b = 4 + (i - 1) * 5
  local kind = ARGV[b]
  local p1 = tonumber(ARGV[b + 1])
  local p2 = tonumber(ARGV[b + 2])
  local p3 = tonumber(ARGV[b + 3])
  local c = { kind = kind, key = key, tok = (ARGV[b + 4] == '1') }
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
    local idx = math.floor(now / w)
    local start = idx * w
    local elapsed = now - start
    local h = redis.call('HMGET', key, fmt(idx), fmt(idx - 1))
    local cur = tonumber(h[1]) or 0
    local prev = tonumber(h[2]) or 0
    local est = prev * ((w - elapsed) / w) + cur
    c.ok = est + cost <= limit
    c.limit = limit
    c.remC = math.max(0, math.floor(limit - est - cost))
    c.resetC = start + w - now
    c.remU = math.max(0, math.floor(limit - est))
    c.resetU = c.resetC
    if c.ok then c.retry = 0 else c.retry = windowRetry(limit, w, cost, prev, cur, elapsed) end
    c.idx = idx
    c.cost = cost
    c.ttl = start + 2 * w - now + GC
  elseif kind == 'd' then
    local limit, off, cost = p1, p2, p3
    local idx = math.floor((now + off) / DAY)
    local reset = (idx + 1) * DAY - off - now
    local count = tonumber(redis.call('HGET', key, fmt(idx))) or 0
    c.ok = count + cost <= limit
    c.limit = limit
    c.remC = math.max(0, math.floor(limit - count - cost))
    c.resetC = reset
    c.remU = math.max(0, math.floor(limit - count))
    c.resetU = reset
    c.retry = reset
    c.idx = idx
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
  return out
end

local res = {}
local maxLease = 0
for i = 1, n do
  local c = checks[i]
  if c.kind == 'r' then
    redis.call('HSET', c.key, 'tokens', string.format('%.17g', c.after), 'ts', fmt(c.ts))
    redis.call('PEXPIRE', c.key, c.ttl)
  elseif c.kind == 'w' or c.kind == 'd' then
    local field = fmt(c.idx)
    redis.call('HINCRBY', c.key, field, c.cost)
    local fields = redis.call('HKEYS', c.key)
    for _, f in ipairs(fields) do
      if tonumber(f) < c.idx - 1 then redis.call('HDEL', c.key, f) end
    end
    redis.call('PEXPIRE', c.key, c.ttl)
    if c.tok then
      res[#res + 1] = 't:' .. c.key
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
return out
`;

/**
 * KEYS[1] = reservation record. ARGV[1] = request id, ARGV[2] = token delta.
 * The record names the bucket hashes (field `t:<key>` = bucket index) and
 * lease sets (field `l:<key>`) the admission charged. Those keys are not in
 * KEYS (settle() only knows the request), but they were built from the same
 * `{tag}` as KEYS[1], so they live in the same cluster slot. Reply: 1 when a
 * record was settled, 0 when there was none.
 */
export const SETTLE_LUA = `
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then return 0 end
local rid = ARGV[1]
local delta = tonumber(ARGV[2])
for i = 1, #rec, 2 do
  local f = rec[i]
  local v = rec[i + 1]
  local t = string.sub(f, 1, 2)
  local key = string.sub(f, 3)
  if t == 't:' then
    if delta ~= 0 then
      local cur = redis.call('HGET', key, v)
      if cur then
        local nv = tonumber(cur) + delta
        if nv < 0 then nv = 0 end
        redis.call('HSET', key, v, string.format('%d', nv))
      end
    end
  elseif t == 'l:' then
    redis.call('ZREM', key, rid)
  end
end
redis.call('DEL', KEYS[1])
return 1
`;
