/**
 * What the admin listener needs from the server it watches: a single process answers from
 * itself, the primary of --workers asks its workers over the cluster channel (server/). The
 * admin side (this folder) renders, checks tokens and computes health; it never sees a session.
 */
import type { MetricSnapshot } from '../metrics/index.ts'
import type { ConfigGeneration, ProcessReport, ReportRequest } from './report.ts'
import type { AdminSettings } from './settings.ts'

export interface WorkerFact {
  readonly id: number
  readonly pid: number | undefined
  /** Serving (it said ready and has not exited). */
  readonly ready: boolean
  readonly startedAt: number | undefined
  /** Times this worker slot was started again after its process exited. */
  readonly restarts: number
}

export interface ReloadFact {
  readonly at: number
  readonly ok: boolean
  readonly message: string
}

/** The server as a whole, known without asking anyone. */
export interface ServerFacts {
  readonly mode: 'single' | 'workers'
  /** The process in the pid file: the primary, or the one process. */
  readonly pid: number
  readonly startedAt: number
  readonly version: string
  /** Stopping: SIGTERM, `qtsmtpd drain`, an uncaught exception. */
  readonly draining: boolean
  /** A single process is its own only worker, with id 0. */
  readonly workers: readonly WorkerFact[]
  /** The configuration in force: generation (reloads taken) and digest. */
  readonly config: ConfigGeneration | undefined
  readonly lastReload: ReloadFact | undefined
}

export interface Collected {
  readonly reports: readonly ProcessReport[]
  /** Workers that did not answer within admin_scrape_timeout. */
  readonly unanswered: readonly number[]
}

export interface AdminBackend {
  readonly settings: AdminSettings
  facts(): ServerFacts
  /** Every serving process's report; concurrent identical requests share one round. */
  collect(request: ReportRequest): Promise<Collected>
  /**
   * Every metric, summed over the processes: a worker that did not answer counts with its last
   * snapshot, and the counters of workers that exited stay in the sums (they never go down).
   */
  metrics(): Promise<MetricSnapshot[]>
  /** Reloads every process; resolves with the outcome `qtsmtpd reload` prints. */
  reload(): Promise<{ readonly ok: boolean; readonly message: string }>
  /** Starts the drain (as SIGTERM): not accepting, open sessions finish, then exit. */
  drain(): void
}
