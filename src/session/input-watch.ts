/**
 * Waiting for a client to speak without reading what it says: earlytalker asks at connect
 * whether the client talks before the greeting, and at DATA whether it sends before the 354.
 * The session notifies on every chunk it receives; the bytes stay in the codec for the
 * session to read. A wait is a timer, so it never holds up other sessions.
 */
export class InputWatch {
  readonly #waiters = new Set<() => void>()

  /** Called by the session whenever bytes arrive, and when the input ends. */
  notify(): void {
    for (const w of [...this.#waiters]) w()
  }

  /** True at once when `pending()` says so, or as soon as bytes arrive; false after `ms` or on abort. */
  wait(ms: number, signal: AbortSignal, pending: () => boolean): Promise<boolean> {
    if (pending()) return Promise.resolve(true)
    if (signal.aborted) return Promise.resolve(false)
    return new Promise((resolve) => {
      const finish = (spoke: boolean) => {
        clearTimeout(timer)
        this.#waiters.delete(onInput)
        signal.removeEventListener('abort', onAbort)
        resolve(spoke)
      }
      const onInput = () => finish(true)
      const onAbort = () => finish(false)
      const timer = setTimeout(() => finish(false), ms)
      this.#waiters.add(onInput)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }
}
