/**
 * The primary's side of the admin listener with --workers: it asks every ready worker for its
 * report over the cluster channel when a scrape or a status update comes (nothing is sent
 * while nobody asks), and waits at most admin_scrape_timeout. Identical requests made while
 * one is under way share it, so a burst of scrapes costs one round.
 *
 * Metrics are summed over the workers. A worker that does not answer in time counts with the
 * last full snapshot it gave, and a worker that exits leaves its last counters in the sums
 * (RetiredCounts), so the server's counters never go down when a worker is slow or replaced;
 * what a worker counted after its last scrape and before it died is lost.
 */
import type { Collected } from '../admin/backend.ts'
import type { ProcessReport, ReportRequest } from '../admin/report.ts'
import { RetiredCounts, sumSnapshots } from '../metrics/exposition.ts'
import type { MetricSnapshot } from '../metrics/index.ts'

/** A worker the primary can ask. */
export interface Askable {
  readonly id: number
  readonly send: (m: { qtsmtpd: 'report?'; id: number; request: ReportRequest }) => void
}

interface Round {
  readonly waiting: Set<number>
  readonly reports: ProcessReport[]
  /** Asked every family (`metrics: true`): the answers are full snapshots. */
  readonly full: boolean
  readonly done: (c: Collected) => void
  readonly timer: NodeJS.Timeout
}

export class WorkerReports {
  readonly #timeoutMs: number
  readonly #rounds = new Map<number, Round>()
  readonly #inFlight = new Map<string, Promise<Collected>>()
  /** Each live worker's last full metrics snapshot. */
  readonly #last = new Map<number, MetricSnapshot[]>()
  readonly #retired = new RetiredCounts()
  #next = 0

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs
  }

  /** Asks these workers; resolves with every answer, and the ids of those that did not answer in time. */
  ask(workers: readonly Askable[], request: ReportRequest): Promise<Collected> {
    const key = JSON.stringify(request)
    const running = this.#inFlight.get(key)
    if (running !== undefined) return running
    const asked = this.#round(workers, request).finally(() => this.#inFlight.delete(key))
    this.#inFlight.set(key, asked)
    return asked
  }

  #round(workers: readonly Askable[], request: ReportRequest): Promise<Collected> {
    if (workers.length === 0) return Promise.resolve({ reports: [], unanswered: [] })
    const id = ++this.#next
    return new Promise((done) => {
      const round: Round = {
        waiting: new Set(workers.map((w) => w.id)),
        reports: [],
        full: request.metrics === true,
        done,
        timer: setTimeout(() => this.#settle(id), this.#timeoutMs),
      }
      this.#rounds.set(id, round)
      for (const w of workers) {
        try {
          w.send({ qtsmtpd: 'report?', id, request })
        } catch {
          round.waiting.delete(w.id)
        }
      }
      if (round.waiting.size === 0) this.#settle(id)
    })
  }

  /** A worker's answer (its `report` message). */
  answer(worker: number, id: number, report: ProcessReport): void {
    const round = this.#rounds.get(id)
    if (round === undefined || !round.waiting.delete(worker)) return
    round.reports.push(report)
    if (round.full && report.metrics !== undefined) this.#last.set(worker, report.metrics)
    if (round.waiting.size === 0) this.#settle(id)
  }

  /** A worker exited: it will not answer, and its counts are kept. */
  gone(worker: number): void {
    const last = this.#last.get(worker)
    if (last !== undefined) this.#retired.retire(last)
    this.#last.delete(worker)
    for (const [id, round] of this.#rounds)
      if (round.waiting.delete(worker) && round.waiting.size === 0) this.#settle(id)
  }

  /** Full snapshots summed: the answers, the last snapshot of those that did not answer, the exited workers'. */
  summed(collected: Collected, own: readonly MetricSnapshot[]): MetricSnapshot[] {
    const stale = collected.unanswered.flatMap((id) => {
      const last = this.#last.get(id)
      return last === undefined ? [] : [last]
    })
    return sumSnapshots([own, ...collected.reports.map((r) => r.metrics ?? []), ...stale, this.#retired.snapshot])
  }

  #settle(id: number): void {
    const round = this.#rounds.get(id)
    if (round === undefined) return
    this.#rounds.delete(id)
    clearTimeout(round.timer)
    round.done({ reports: round.reports, unanswered: [...round.waiting] })
  }
}
