/**
 * Reloads run one after another, and the requests that arrive while one runs are served
 * together by the next: it reads the files once for all of them. A storm of SIGHUPs thus
 * costs at most two reloads, not one per signal (issue 18 saw 5,000 SIGHUPs take RSS from
 * 101 to 254 MiB: nothing was retained, but V8 grew its heap to keep up with the garbage).
 */

export interface ReloadOutcome {
  readonly ok: boolean
  readonly message: string
}

interface Batch {
  readonly reasons: Set<string>
  /** The primary's reload rounds this batch answers. */
  readonly rounds: number[]
}

export class ReloadQueue {
  readonly #reload: (why: string) => Promise<ReloadOutcome>
  readonly #done: (outcome: ReloadOutcome, rounds: readonly number[]) => void
  #chain: Promise<void> = Promise.resolve()
  #waiting: Batch | undefined

  /** `reload` must not throw: a refused configuration is an outcome. */
  constructor(
    reload: (why: string) => Promise<ReloadOutcome>,
    done: (outcome: ReloadOutcome, rounds: readonly number[]) => void,
  ) {
    this.#reload = reload
    this.#done = done
  }

  request(why: string, round?: number): void {
    let batch = this.#waiting
    if (batch === undefined) {
      const next: Batch = { reasons: new Set(), rounds: [] }
      this.#waiting = batch = next
      this.#chain = this.#chain.then(async () => {
        this.#waiting = undefined
        this.#done(await this.#reload([...next.reasons].join(', ')), next.rounds)
      })
    }
    batch.reasons.add(why)
    if (round !== undefined) batch.rounds.push(round)
  }

  /** Settles once no reload runs or waits. */
  async idle(): Promise<void> {
    let seen: Promise<void>
    do {
      seen = this.#chain
      await seen
    } while (seen !== this.#chain)
  }
}
