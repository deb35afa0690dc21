/**
 * The admin backend of the primary (--workers): facts from its worker slots, reports and
 * metrics from the workers (worker-reports.ts), plus the primary's own counts: workers ready,
 * worker exits, workers late to the last scrape.
 */
import type { AdminBackend, Collected, ServerFacts, WorkerFact } from '../admin/backend.ts'
import type { ReportRequest } from '../admin/report.ts'
import type { AdminSettings } from '../admin/settings.ts'
import type { MetricSnapshot } from '../metrics/index.ts'
import { version } from '../version.ts'
import type { ConfigGenerations } from './admin-listeners.ts'
import { buildInfo } from './process-metrics.ts'
import { type Askable, WorkerReports } from './worker-reports.ts'

export interface PrimaryView {
  readonly workers: () => readonly WorkerFact[]
  /** The workers to ask: ready, and their channel open. */
  readonly askable: () => readonly Askable[]
  readonly draining: () => boolean
  readonly exits: () => number
  readonly reload: () => Promise<{ ok: boolean; message: string }>
  readonly drain: () => void
}

export class PrimaryAdmin implements AdminBackend {
  readonly settings: AdminSettings
  readonly reports: WorkerReports
  readonly #view: PrimaryView
  readonly #generations: ConfigGenerations
  readonly #startedAt = Date.now()
  #lastUnanswered = 0

  constructor(settings: AdminSettings, view: PrimaryView, generations: ConfigGenerations) {
    this.settings = settings
    this.reports = new WorkerReports(settings.scrapeTimeoutMs)
    this.#view = view
    this.#generations = generations
  }

  facts(): ServerFacts {
    return {
      mode: 'workers',
      pid: process.pid,
      startedAt: this.#startedAt,
      version,
      draining: this.#view.draining(),
      workers: this.#view.workers(),
      config: this.#generations.current,
      lastReload: this.#generations.lastReload,
    }
  }

  collect(request: ReportRequest): Promise<Collected> {
    return this.reports.ask(this.#view.askable(), request)
  }

  async metrics(): Promise<MetricSnapshot[]> {
    const collected = await this.collect({ metrics: true })
    this.#lastUnanswered = collected.unanswered.length
    const gauge = (name: string, help: string, value: number): MetricSnapshot => ({
      kind: 'gauge',
      name,
      help,
      labelNames: [],
      series: [{ labels: {}, value }],
    })
    const own: MetricSnapshot[] = [
      buildInfo(),
      gauge('qtsmtpd_workers_ready', 'Worker processes serving', this.#view.workers().filter((w) => w.ready).length),
      {
        kind: 'counter',
        name: 'qtsmtpd_worker_exits_total',
        help: 'Worker processes that exited while the server ran (each was replaced)',
        labelNames: [],
        series: [{ labels: {}, value: this.#view.exits() }],
      },
      gauge(
        'qtsmtpd_scrape_workers_late',
        'Workers that did not answer this scrape within admin_scrape_timeout (their last counts are used)',
        this.#lastUnanswered,
      ),
    ]
    return this.reports.summed(collected, own)
  }

  reload(): Promise<{ ok: boolean; message: string }> {
    return this.#view.reload()
  }

  drain(): void {
    this.#view.drain()
  }
}
