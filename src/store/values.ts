/**
 * How counters and sliding windows are kept as strings, shared by the memory and SQLite
 * stores. The Redis store does the same in Lua (redis-scripts.ts); keep them in step.
 */

/** A counter value, or undefined for anything else (garbage is absent, never a crash). */
export function parseCounter(text: string | undefined): number | undefined {
  // 15 digits stay exact in a double; a longer "number" is garbage.
  return text !== undefined && /^-?\d{1,15}$/.test(text) ? Number(text) : undefined
}

/**
 * A sliding-window counter kept as `"<window start> <hits in it> <hits in the one before>"`.
 * Windows are aligned on multiples of the window length since the epoch.
 */
export interface WindowHit {
  /** The new stored value. */
  readonly state: string
  /** Hits in the sliding window, this one included. */
  readonly count: number
}

export function recordHit(state: string | undefined, now: number, windowMs: number): WindowHit {
  let start = now - (now % windowMs)
  let current = 0
  let previous = 0
  const m = state === undefined ? null : /^(\d{1,15}) (\d{1,15}) (\d{1,15})$/.exec(state)
  if (m) {
    const storedStart = Number(m[1])
    // A later start than ours comes from a node whose clock runs ahead: keep its counts.
    if (storedStart >= start) {
      start = storedStart
      current = Number(m[2])
      previous = Number(m[3])
    } else if (storedStart === start - windowMs) {
      previous = Number(m[2])
    }
  }
  current += 1
  const covered = Math.min(1, Math.max(0, (windowMs - (now - start)) / windowMs))
  return { state: `${start} ${current} ${previous}`, count: current + Math.floor(previous * covered) }
}

/** How long a window state stays useful: the current window and the one after it. */
export const windowTtl = (windowMs: number): number => 2 * windowMs

/**
 * A lease set kept as `"<holder> <expires at> <holder> <expires at> ..."`: who holds a lease
 * (an open connection) until when. A value in any other shape is an empty set.
 */
export interface LeaseUpdate {
  /** The new stored value; undefined when no live lease is left (delete the key). */
  readonly state: string | undefined
  /** When the last lease of the set expires (the key's expiry). */
  readonly expiresAt: number
  readonly held: boolean
  readonly count: number
}

const leaseSetShape = /^[!-~]{1,200} \d{1,15}(?: [!-~]{1,200} \d{1,15})*$/

function liveLeases(state: string | undefined, now: number): Map<string, number> {
  const live = new Map<string, number>()
  if (state === undefined || !leaseSetShape.test(state)) return live
  const words = state.split(' ')
  for (let i = 0; i + 1 < words.length; i += 2) {
    const expiresAt = Number(words[i + 1])
    if (expiresAt > now) live.set(words[i] as string, expiresAt)
  }
  return live
}

function leaseState(live: Map<string, number>): { state: string | undefined; expiresAt: number } {
  let expiresAt = 0
  const words: string[] = []
  for (const [holder, at] of live) {
    words.push(holder, String(at))
    if (at > expiresAt) expiresAt = at
  }
  return { state: words.length === 0 ? undefined : words.join(' '), expiresAt }
}

/** Takes or renews `holder`'s lease until now + ttlMs, unless `limit` other live leases fill the set. */
export function takeLease(
  state: string | undefined,
  holder: string,
  now: number,
  ttlMs: number,
  limit: number | undefined,
): LeaseUpdate {
  const live = liveLeases(state, now)
  if (!live.has(holder) && limit !== undefined && live.size >= limit) {
    return { ...leaseState(live), held: false, count: live.size }
  }
  live.set(holder, now + ttlMs)
  return { ...leaseState(live), held: true, count: live.size }
}

export function dropLease(state: string | undefined, holder: string, now: number): LeaseUpdate {
  const live = liveLeases(state, now)
  live.delete(holder)
  return { ...leaseState(live), held: false, count: live.size }
}
