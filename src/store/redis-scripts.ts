/**
 * The Redis store's read-modify-write operations as Lua scripts: each runs atomically on the
 * server, touches one key (so it works on Redis Cluster), and treats a value it cannot read (a
 * non-number where a counter is expected, a list or hash written by someone else) as absent,
 * like values.ts does for the embedded stores.
 */
import { type CommandParser, defineScript } from '@redis/client'

// GET that answers nil for a key of another type instead of failing with WRONGTYPE.
const readString = `
local function read(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'string' then return v end
  return nil
end
`

/** KEYS[1], ARGV: by, ttl ms (0: none). Returns the new value. */
const incr = `${readString}
local by, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = read(KEYS[1])
local digits = v and string.match(v, '^%-?(%d+)$')
if digits and #digits <= 15 then
  local n = tonumber(v) + by
  redis.call('SET', KEYS[1], string.format('%d', n), 'KEEPTTL')
  return n
end
if ttl > 0 then
  redis.call('SET', KEYS[1], string.format('%d', by), 'PX', ttl)
else
  redis.call('SET', KEYS[1], string.format('%d', by))
end
return by
`

/** KEYS[1], ARGV: expected present (1/0), expected, value, ttl ms (0: none). Returns 1 when set. */
const compareAndSet = `${readString}
local v = read(KEYS[1])
if ARGV[1] == '1' then
  if v ~= ARGV[2] then return 0 end
elseif v then
  return 0
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
`

/** KEYS[1], ARGV: now ms, window ms. The sliding-window counter of values.ts recordHit. */
const hit = `${readString}
local now, w = tonumber(ARGV[1]), tonumber(ARGV[2])
local start = now - (now % w)
local current, previous = 0, 0
local v = read(KEYS[1])
if v then
  local s, c, p = string.match(v, '^(%d+) (%d+) (%d+)$')
  if s and #s <= 15 and #c <= 15 and #p <= 15 then
    s = tonumber(s)
    if s >= start then
      start, current, previous = s, tonumber(c), tonumber(p)
    elseif s == start - w then
      previous = tonumber(c)
    end
  end
end
current = current + 1
redis.call('SET', KEYS[1], string.format('%d %d %d', start, current, previous), 'PX', 2 * w)
local covered = math.min(1, math.max(0, (w - (now - start)) / w))
return current + math.floor(previous * covered)
`

/**
 * KEYS[1], ARGV: holder, now ms, ttl ms, limit (0: none), 'take' or 'drop'. The lease set of
 * values.ts takeLease/dropLease. Returns {held (1/0), live leases}.
 */
const lease = `${readString}
local holder, now, ttl, limit, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local function parse(v)
  local live, order = {}, {}
  if not v or v == '' or string.find(v, '[^!-~ ]') or string.find(v, '^ ') or string.find(v, ' $')
    or string.find(v, '  ') then
    return live, order
  end
  local words = {}
  for w in string.gmatch(v, '%S+') do words[#words + 1] = w end
  if #words % 2 ~= 0 then return live, order end
  for i = 1, #words, 2 do
    local e = words[i + 1]
    if #words[i] > 200 or #e > 15 or not string.match(e, '^%d+$') then return {}, {} end
  end
  for i = 1, #words, 2 do
    local h, e = words[i], tonumber(words[i + 1])
    if e > now then
      if not live[h] then order[#order + 1] = h end
      live[h] = e
    end
  end
  return live, order
end
local live, order = parse(read(KEYS[1]))
local held = 0
if mode == 'take' then
  if live[holder] or limit == 0 or #order < limit then
    if not live[holder] then order[#order + 1] = holder end
    live[holder] = now + ttl
    held = 1
  end
else
  live[holder] = nil
end
local parts, last, count = {}, 0, 0
for _, h in ipairs(order) do
  local e = live[h]
  if e then
    parts[#parts + 1] = h
    parts[#parts + 1] = string.format('%d', e)
    if e > last then last = e end
    count = count + 1
  end
end
if count == 0 then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], table.concat(parts, ' '), 'PX', string.format('%d', last - now))
end
return {held, count}
`

const keyAndArgs = (parser: CommandParser, key: string, ...args: string[]) => {
  parser.pushKey(key)
  for (const a of args) parser.push(a)
}

export const storeScripts = {
  storeIncr: defineScript({
    SCRIPT: incr,
    NUMBER_OF_KEYS: 1,
    parseCommand: keyAndArgs,
    transformReply: (reply: unknown) => Number(reply),
  }),
  storeCompareAndSet: defineScript({
    SCRIPT: compareAndSet,
    NUMBER_OF_KEYS: 1,
    parseCommand: keyAndArgs,
    transformReply: (reply: unknown) => Number(reply) === 1,
  }),
  storeLease: defineScript({
    SCRIPT: lease,
    NUMBER_OF_KEYS: 1,
    parseCommand: keyAndArgs,
    transformReply: (reply: unknown) => {
      const [held, count] = reply as [unknown, unknown]
      return { held: Number(held) === 1, count: Number(count) }
    },
  }),
  storeHit: defineScript({
    SCRIPT: hit,
    NUMBER_OF_KEYS: 1,
    parseCommand: keyAndArgs,
    transformReply: (reply: unknown) => Number(reply),
  }),
}
