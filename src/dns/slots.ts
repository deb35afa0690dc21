/**
 * A bound on lookups on the wire at once: each holds a socket (a file descriptor the listeners
 * also need), and a burst larger than the server's receive buffer is dropped by the kernel and
 * comes back as timeouts. Lookups past the bound wait their turn, in order, within their own
 * deadline; a caller's signal takes it out of the queue.
 */

export interface Slots {
  /** True with a slot held (call release), false when `timeoutMs` passed first; rejects on abort. */
  acquire(timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean>
  release(): void
  /** Lookups that had to wait for a slot. */
  readonly waited: number
}

export function createSlots(limit: number): Slots {
  let busy = 0
  let waited = 0
  const queue: ((granted: boolean) => void)[] = []
  return {
    get waited() {
      return waited
    },
    acquire(timeoutMs, signal) {
      signal?.throwIfAborted()
      if (busy < limit) {
        busy++
        return Promise.resolve(true)
      }
      waited++
      return new Promise((resolve, reject) => {
        const leave = () => {
          const at = queue.indexOf(grant)
          if (at >= 0) queue.splice(at, 1)
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
        }
        const grant = (granted: boolean) => {
          leave()
          resolve(granted)
        }
        const onAbort = () => {
          leave()
          reject(signal?.reason)
        }
        const timer = setTimeout(() => grant(false), Math.max(0, timeoutMs))
        signal?.addEventListener('abort', onAbort, { once: true })
        queue.push(grant)
      })
    },
    release() {
      // The slot passes straight to the next in line, so `busy` stays as it is.
      const next = queue.shift()
      if (next === undefined) busy--
      else next(true)
    },
  }
}
