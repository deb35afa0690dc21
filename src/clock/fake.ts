/**
 * A clock for tests: time stands still until the test moves it. `advance()` wakes the sleepers
 * whose time has come in the order of their deadlines, letting each one's continuation run
 * before the next, so a plugin that sleeps twice in a row sees both wakes in one advance.
 *
 * @example
 *   const clock = fakeClock()
 *   const srv = await startTestServer({ clock, plugins: [earlytalker({ wait: 5 })] })
 *   ... ; await clock.sleeping()          // the plugin is waiting now
 *   await clock.advance(5_000)            // and its five seconds are over
 */
import type { Clock } from './clock.ts'

export interface FakeClock extends Clock {
  /** Moves the time forward by `ms`, waking every sleeper due by then. */
  advance(ms: number): Promise<void>
  /** Sleepers waiting now. */
  readonly sleepers: number
  /** Resolves once at least `count` sleepers wait (at once if they do). */
  sleeping(count?: number): Promise<void>
}

interface Sleeper {
  readonly due: number
  readonly seq: number
  readonly wake: () => void
}

/** @param start epoch milliseconds the clock shows at first (default 2026-01-01T00:00:00Z). */
export function fakeClock(start = Date.UTC(2026, 0, 1)): FakeClock {
  let now = start
  let seq = 0
  const sleepers = new Set<Sleeper>()
  const watchers = new Set<{ readonly count: number; readonly resolve: () => void }>()

  const notify = () => {
    for (const w of watchers)
      if (sleepers.size >= w.count) {
        watchers.delete(w)
        w.resolve()
      }
  }
  const next = (until: number): Sleeper | undefined => {
    let first: Sleeper | undefined
    for (const s of sleepers)
      if (s.due <= until && (first === undefined || s.due < first.due || (s.due === first.due && s.seq < first.seq)))
        first = s
    return first
  }
  // setImmediate, not a microtask: a woken continuation may await promises of its own first.
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

  return {
    now: () => now,
    sleep(ms, signal) {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason)
          return
        }
        const onAbort = () => {
          sleepers.delete(sleeper)
          reject(signal?.reason)
        }
        const sleeper: Sleeper = {
          due: now + Math.max(0, ms),
          seq: seq++,
          wake: () => {
            signal?.removeEventListener('abort', onAbort)
            resolve()
          },
        }
        signal?.addEventListener('abort', onAbort, { once: true })
        sleepers.add(sleeper)
        notify()
      })
    },
    async advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`a fake clock only goes forward (advance ${ms})`)
      const until = now + ms
      for (let s = next(until); s !== undefined; s = next(until)) {
        sleepers.delete(s)
        now = Math.max(now, s.due)
        s.wake()
        await settle()
      }
      now = until
    },
    get sleepers() {
      return sleepers.size
    },
    sleeping(count = 1) {
      return new Promise<void>((resolve) => {
        watchers.add({ count, resolve })
        notify()
      })
    },
  }
}
