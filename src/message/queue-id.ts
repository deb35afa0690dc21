/**
 * Queue ids: 22 characters of lowercase Crockford base32, e.g. `01m89t005k00ajd6jnmj3z`.
 *
 * Layout: 10 chars of Unix time in ms (sortable until the year 10889), 5 of pid, 3 of a
 * per-process counter, 4 random. Fixed width, so string order is time order. Unique across
 * processes on one host (pid), within a process (counter), across restarts (time) and
 * hosts (random, 20 bits). Only [0-9a-z]: safe in file names and headers.
 */
import { randomInt } from 'node:crypto'

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz' // ascending ASCII order: sorting is preserved

function base32(n: number, width: number): string {
  let out = ''
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 32] + out
    n = Math.floor(n / 32)
  }
  return out
}

// Process-wide on purpose: two server instances in one process must not hand out the same id.
let counter = randomInt(32 ** 3)

export function newQueueId(now: number = Date.now()): string {
  counter = (counter + 1) % 32 ** 3
  return base32(now, 10) + base32(process.pid % 32 ** 5, 5) + base32(counter, 3) + base32(randomInt(32 ** 4), 4)
}

/** Extracts the timestamp (ms) from a queue id. */
export function queueIdTime(id: string): number {
  let n = 0
  for (const c of id.slice(0, 10)) n = n * 32 + ALPHABET.indexOf(c)
  return n
}
