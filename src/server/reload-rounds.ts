/**
 * The primary's reloads (--workers): each SIGHUP asks every live worker to reload, and its
 * outcome is known once all of them answered, died, or let the deadline pass. The outcome
 * is what `qtsmtpd --reload` prints: reloaded only if every worker took the configuration.
 */

interface Round {
  readonly waiting: Set<number>
  readonly refusals: string[]
  reloaded: number
  readonly timer: NodeJS.Timeout
}

export type OutcomeReport = (ok: boolean, message: string, round: number) => void

export class ReloadRounds {
  readonly #report: OutcomeReport
  readonly #answerMs: number
  readonly #open = new Map<number, Round>()
  #last = 0

  constructor(report: OutcomeReport, answerMs: number) {
    this.#report = report
    this.#answerMs = answerMs
  }

  /** A new round for these workers; returns its number, to send along with `reload`. */
  start(workers: readonly number[]): number {
    const id = ++this.#last
    const round: Round = {
      waiting: new Set(workers),
      refusals: [],
      reloaded: 0,
      timer: setTimeout(() => this.#expire(id), this.#answerMs).unref(),
    }
    this.#open.set(id, round)
    this.#settle(id, round)
    return id
  }

  answer(worker: number, id: number, ok: boolean, message: string): void {
    const round = this.#open.get(id)
    if (round === undefined || !round.waiting.delete(worker)) return
    if (ok) round.reloaded++
    else round.refusals.push(message)
    this.#settle(id, round)
  }

  /** A worker exited: it will not answer (its replacement loads what the others run). */
  gone(worker: number): void {
    for (const [id, round] of this.#open) if (round.waiting.delete(worker)) this.#settle(id, round)
  }

  #expire(id: number): void {
    const round = this.#open.get(id)
    if (round === undefined) return
    for (const w of round.waiting)
      round.refusals.push(`worker ${w} did not answer within ${Math.round(this.#answerMs / 1000)}s`)
    round.waiting.clear()
    this.#settle(id, round)
  }

  #settle(id: number, round: Round): void {
    if (round.waiting.size > 0) return
    clearTimeout(round.timer)
    this.#open.delete(id)
    // Workers read the same files: one message per distinct refusal, not one per worker.
    const refusals = [...new Set(round.refusals)]
    if (refusals.length > 0) this.#report(false, refusals.join('\n'), id)
    else if (round.reloaded === 0) this.#report(false, 'no worker answered (none was running, or they exited)', id)
    else this.#report(true, `configuration reloaded by ${round.reloaded} workers`, id)
  }
}
