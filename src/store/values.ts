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
