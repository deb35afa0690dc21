/**
 * The last refusals and accepted messages of a process, for the status page: a ring of fixed
 * size (`admin_recent_verdicts`), so a flood of refusals costs no memory beyond it.
 */
import type { RecentVerdict } from '../session/session-metrics.ts'

export class RecentVerdicts {
  readonly #ring: (RecentVerdict | undefined)[]
  #next = 0

  constructor(size: number) {
    this.#ring = new Array(Math.max(0, size))
  }

  readonly add = (v: RecentVerdict): void => {
    if (this.#ring.length === 0) return
    this.#ring[this.#next] = v
    this.#next = (this.#next + 1) % this.#ring.length
  }

  /** Newest first. */
  list(): RecentVerdict[] {
    const n = this.#ring.length
    const out: RecentVerdict[] = []
    for (let i = 1; i <= n; i++) {
      const v = this.#ring[(this.#next - i + n) % n]
      if (v === undefined) break
      out.push(v)
    }
    return out
  }
}
