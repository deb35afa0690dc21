/**
 * A small pool of connections (or any resource) to one service: at most `max` exist at once,
 * busy and idle together; a caller waits for one up to its deadline. A resource goes back to
 * the pool only after a call that succeeded; one whose call threw is destroyed (its protocol
 * state is unknown). Idle ones are closed after `idleMs`.
 *
 * @example
 *   const pool = net.pool({ max: 4, idleMs: 30_000,
 *     create: (signal) => net.connectLines({ host: '127.0.0.1', port: 10023 }, { timeoutMs: 2_000, signal }),
 *     destroy: (c) => c.destroy(), isUsable: (c) => c.isOpen })
 *   const answer = await pool.use((c) => c.request('ping', { timeoutMs: 1_000, signal: ctx.signal }),
 *     { timeoutMs: 2_000, signal: ctx.signal })
 */
import { NetError } from './connect.ts'

export interface PoolOptions<T> {
  /** Opens a resource; the signal aborts when the caller's deadline passes or its signal aborts. */
  create(signal: AbortSignal): Promise<T>
  destroy(resource: T): void | Promise<void>
  /** Checked before an idle resource is handed out again (a socket the peer closed is not). */
  isUsable?(resource: T): boolean
  /** Resources at once, busy and idle together. */
  readonly max: number
  /** An idle resource is destroyed after this long. */
  readonly idleMs: number
}

export interface UseOptions {
  /** For getting a resource: waiting for a free one and creating it. */
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
}

export interface PoolStats {
  readonly busy: number
  readonly idle: number
  /** Callers waiting for a resource. */
  readonly waiting: number
}

export interface Pool<T> {
  /** Runs `fn` with a resource; it is reused if `fn` succeeds and destroyed if it throws. */
  use<R>(fn: (resource: T) => Promise<R>, opts: UseOptions): Promise<R>
  stats(): PoolStats
  /** Destroys the idle resources, and the busy ones as they come back; later `use` calls reject. */
  close(): Promise<void>
}

interface Idle<T> {
  readonly resource: T
  readonly timer: NodeJS.Timeout
}

export function createPool<T>(opts: PoolOptions<T>): Pool<T> {
  if (!(opts.max >= 1)) throw new RangeError(`a pool needs max >= 1 (got ${opts.max})`)
  const idle: Idle<T>[] = []
  const waiters: (() => void)[] = []
  let busy = 0
  let creating = 0
  let closed = false

  const dispose = (resource: T): void => {
    void (async () => opts.destroy(resource))().catch(() => {})
  }
  const wakeOne = () => waiters.shift()?.()
  const takeIdle = (): T | undefined => {
    for (let entry = idle.pop(); entry !== undefined; entry = idle.pop()) {
      clearTimeout(entry.timer)
      if (opts.isUsable === undefined || opts.isUsable(entry.resource)) return entry.resource
      dispose(entry.resource)
    }
    return undefined
  }
  const giveBack = (resource: T) => {
    if (closed) return dispose(resource)
    const entry: Idle<T> = {
      resource,
      timer: setTimeout(() => {
        const i = idle.indexOf(entry)
        if (i >= 0) idle.splice(i, 1)
        dispose(resource)
      }, opts.idleMs),
    }
    entry.timer.unref?.()
    idle.push(entry)
  }

  async function acquire(o: UseOptions): Promise<T> {
    const deadline = AbortSignal.timeout(o.timeoutMs)
    const signal = o.signal === undefined ? deadline : AbortSignal.any([deadline, o.signal])
    const failure = () =>
      o.signal?.aborted
        ? o.signal.reason
        : new NetError('ETIMEDOUT', `no pooled connection within ${o.timeoutMs} ms (${opts.max} busy)`)
    for (;;) {
      if (closed) throw new NetError('ECANCELED', 'the pool is closed')
      if (signal.aborted) throw failure()
      const ready = takeIdle()
      if (ready !== undefined) return ready
      if (busy + idle.length + creating < opts.max) {
        creating++
        try {
          return await opts.create(signal)
        } catch (e) {
          wakeOne()
          throw signal.aborted ? failure() : e
        } finally {
          creating--
        }
      }
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          const i = waiters.indexOf(wake)
          if (i >= 0) waiters.splice(i, 1)
          resolve()
        }
        const wake = () => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        }
        waiters.push(wake)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
  }

  return {
    async use(fn, o) {
      const resource = await acquire(o)
      busy++
      let ok = false
      try {
        const result = await fn(resource)
        ok = true
        return result
      } finally {
        busy--
        if (ok) giveBack(resource)
        else dispose(resource)
        wakeOne()
      }
    },
    stats: () => ({ busy, idle: idle.length, waiting: waiters.length }),
    async close() {
      closed = true
      for (const entry of idle.splice(0)) {
        clearTimeout(entry.timer)
        await opts.destroy(entry.resource)
      }
      for (const w of waiters.splice(0)) w()
    },
  }
}
