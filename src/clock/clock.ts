/**
 * The clock service: what time it is, and waiting, for plugins whose behaviour depends on time
 * (greylisting windows, earlytalker delays, rate limits). Plugins ask it instead of Date.now()
 * and setTimeout, so that their tests move time by hand (fakeClock) instead of waiting.
 */

export interface Clock {
  /** Epoch milliseconds. */
  now(): number
  /**
   * Resolves after `ms`; rejects with the signal's reason as soon as it aborts (pass the hook's
   * `ctx.signal`, so a client that leaves does not keep the wait alive), as
   * `timers/promises.setTimeout` does.
   * @example
   *   await clock.sleep(5_000, ctx.signal) // earlytalker: wait, then see whether the client spoke
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason)
        return
      }
      const onAbort = () => {
        clearTimeout(timer)
        reject(signal?.reason)
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal?.addEventListener('abort', onAbort, { once: true })
    }),
}
