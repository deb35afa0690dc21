/**
 * A bounded pool of outbound sessions, keyed by next hop. At most `size` sessions exist at
 * once (busy and idle together); a caller waits for a free slot up to its timeout. A session
 * comes back with `release(ok)`: after a clean message it is RSET and kept idle for `idleMs`;
 * after any error it is dropped, never reused (its dialogue state is unknown).
 */
import { OutboundError } from './errors.ts'
import type { SmtpClient } from './smtp-client.ts'

export interface PoolOptions {
  /** Most sessions open at once; 0 disables reuse but still bounds nothing (one per message). */
  readonly size: number
  readonly idleMs: number
  /** A session is closed after this many messages (0: no limit). */
  readonly maxMessages: number
}

interface Idle {
  readonly key: string
  readonly client: SmtpClient
  readonly timer: NodeJS.Timeout
}

export class SessionPool {
  readonly #opts: PoolOptions
  #open = 0
  #idle: Idle[] = []
  #waiters: (() => void)[] = []
  /** Sessions being RSET on their way back, per hop: a caller waits for one rather than opening another. */
  #returning = new Map<string, Set<Promise<void>>>()
  #closed = false
  /** Sessions opened over the pool's life, for tests and the status page. */
  opened = 0

  constructor(opts: PoolOptions) {
    this.#opts = opts
  }

  get openCount(): number {
    return this.#open
  }

  get idleCount(): number {
    return this.#idle.length
  }

  /** An idle session to `key` if one is alive, else a new one from `open`. */
  async acquire(key: string, open: () => Promise<SmtpClient>, waitMs: number): Promise<SmtpClient> {
    const deadline = Date.now() + waitMs
    for (;;) {
      if (this.#closed) throw new OutboundError('dropped', 'pool', 'shutting down')
      const i = this.#idle.findIndex((x) => x.key === key)
      if (i >= 0) {
        const [it] = this.#idle.splice(i, 1) as [Idle]
        clearTimeout(it.timer)
        if (it.client.usable) return it.client
        this.#open--
        continue
      }
      const back = this.#returning.get(key)
      if (back !== undefined && back.size > 0) {
        await Promise.race(back)
        continue
      }
      const limit = this.#opts.size
      if (limit <= 0 || this.#open < limit) return this.#create(open)
      // Full: make room by closing an idle session to another hop, or wait for a release.
      const other = this.#idle.shift()
      if (other !== undefined) {
        clearTimeout(other.timer)
        this.#open--
        void other.client.quit()
        continue
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new OutboundError('timeout', 'pool', `all ${limit} outbound sessions busy`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left)
        function done() {
          clearTimeout(t)
          resolve()
        }
        this.#waiters.push(done)
      })
    }
  }

  async #create(open: () => Promise<SmtpClient>): Promise<SmtpClient> {
    this.#open++
    try {
      const c = await open()
      this.opened++
      return c
    } catch (e) {
      this.#slotFreed()
      throw e
    }
  }

  /**
   * Gives a session back. `reusable` says the last exchange ended cleanly; the session is
   * then RSET (in the background) and parked, else closed.
   */
  release(key: string, client: SmtpClient, reusable: boolean): void {
    const max = this.#opts.maxMessages
    const keep =
      reusable && !this.#closed && this.#opts.size > 0 && client.usable && (max === 0 || client.messages < max)
    if (!keep) {
      void (client.usable ? client.quit() : Promise.resolve(client.destroy()))
      this.#slotFreed()
      return
    }
    const back = this.#returning.get(key) ?? new Set<Promise<void>>()
    this.#returning.set(key, back)
    const done = client
      .rset()
      .then(() => {
        if (this.#closed || !client.usable) throw new Error('gone')
        const timer = setTimeout(() => this.#expire(client), this.#opts.idleMs)
        timer.unref?.()
        this.#idle.push({ key, client, timer })
        this.#wakeOne()
      })
      .catch(() => {
        client.destroy()
        this.#slotFreed()
      })
      .finally(() => back.delete(done))
    back.add(done)
  }

  #expire(client: SmtpClient): void {
    const i = this.#idle.findIndex((x) => x.client === client)
    if (i < 0) return
    this.#idle.splice(i, 1)
    void client.quit()
    this.#slotFreed()
  }

  #slotFreed(): void {
    this.#open--
    this.#wakeOne()
  }

  #wakeOne(): void {
    this.#waiters.shift()?.()
  }

  async close(): Promise<void> {
    this.#closed = true
    const idle = this.#idle
    this.#idle = []
    for (const w of this.#waiters.splice(0)) w()
    await Promise.all(
      idle.map((x) => {
        clearTimeout(x.timer)
        this.#open--
        return x.client.quit()
      }),
    )
  }
}
