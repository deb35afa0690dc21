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
  storeHit: defineScript({
    SCRIPT: hit,
    NUMBER_OF_KEYS: 1,
    parseCommand: keyAndArgs,
    transformReply: (reply: unknown) => Number(reply),
  }),
}
