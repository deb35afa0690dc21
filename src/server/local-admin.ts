/**
 * The admin backend of one serving process: it answers from its own server and registry. A
 * worker of --workers uses the same report (processReport) to answer the primary instead.
 * Until `attach` (the configuration is loaded) the server reports `starting`.
 */
import type { AdminBackend, Collected, ServerFacts } from '../admin/backend.ts'
import type { ReportRequest } from '../admin/report.ts'
import { type AdminSettings, defaultAdminSettings } from '../admin/settings.ts'
import type { MetricSnapshot } from '../metrics/index.ts'
import { version } from '../version.ts'
import type { ConfigGenerations } from './admin-listeners.ts'
import { buildInfo } from './process-metrics.ts'
import { processReport, type ReportSource } from './process-report.ts'
import type { SmtpServer } from './smtp-server.ts'

export interface LocalServing {
  readonly server: SmtpServer
  readonly source: ReportSource
  readonly settings: AdminSettings
  readonly reload: () => Promise<{ ok: boolean; message: string }>
  readonly drain: () => void
  readonly draining: () => boolean
}

export class LocalAdmin implements AdminBackend {
  readonly #startedAt = Date.now()
  readonly #generations: ConfigGenerations
  #serving: LocalServing | undefined

  constructor(generations: ConfigGenerations) {
    this.#generations = generations
  }

  attach(serving: LocalServing): void {
    this.#serving = serving
  }

  get settings(): AdminSettings {
    return this.#serving?.settings ?? defaultAdminSettings
  }

  facts(): ServerFacts {
    const s = this.#serving
    return {
      mode: 'single',
      pid: process.pid,
      startedAt: this.#startedAt,
      version,
      draining: s?.draining() ?? false,
      workers: [{ id: 0, pid: process.pid, ready: s !== undefined, startedAt: this.#startedAt, restarts: 0 }],
      config: this.#generations.current,
      lastReload: this.#generations.lastReload,
    }
  }

  async collect(request: ReportRequest): Promise<Collected> {
    const s = this.#serving
    if (s === undefined) return { reports: [], unanswered: [0] }
    return { reports: [processReport(s.server, s.source, request)], unanswered: [] }
  }

  async metrics(): Promise<MetricSnapshot[]> {
    return [buildInfo(), ...(this.#serving?.source.metrics() ?? [])]
  }

  reload(): Promise<{ ok: boolean; message: string }> {
    const s = this.#serving
    if (s === undefined) return Promise.resolve({ ok: false, message: 'the server is still starting' })
    return s.reload()
  }

  drain(): void {
    this.#serving?.drain()
  }
}
