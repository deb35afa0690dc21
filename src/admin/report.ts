/**
 * What a serving process reports to the admin listener (directly, or through the primary over
 * the cluster channel): its metrics snapshot, and a summary of its sessions for the status page
 * and `qtsmtpd status`. Summaries, not every byte: counts by phase, the `limit` oldest or newest
 * sessions past `offset`, strings cut to 256 characters, the recent verdicts ring.
 */
import type { MetricSnapshot } from '../metrics/index.ts'
import type { RecentVerdict } from '../session/session-metrics.ts'

export type { RecentVerdict }

/** Offsets past this are not served: 1,000 sessions a worker × a few workers is the scale. */
export const maxStatusOffset = 100_000

export interface StatusQuery {
  readonly order: 'oldest' | 'newest'
  readonly offset: number
  readonly limit: number
}

/** What a report asks for: metrics (all families, or these), and the status. */
export interface ReportRequest {
  readonly metrics?: true | readonly string[]
  readonly status?: StatusQuery
}

export interface SessionSummary {
  readonly id: string
  readonly ip: string
  readonly port: number
  readonly listener: string
  /** The verified host name, when a plugin set one. */
  readonly host: string | undefined
  readonly helo: string | undefined
  readonly phase: string
  /** Milliseconds since the epoch. */
  readonly startedAt: number
  /** `TLSv1.3 TLS_AES_256_GCM_SHA384`, or undefined. */
  readonly tls: string | undefined
  readonly user: string | undefined
  readonly from: string | undefined
  readonly recipients: number
  readonly messages: number
  /** The worker serving it (0: a single process). */
  readonly worker: number
}

export interface ConfigGeneration {
  /** 1 at start, one more for each reload taken. */
  readonly generation: number
  /** The first 12 hex digits of a SHA-256 of the configuration files' contents as loaded. */
  readonly digest: string
  readonly loadedAt: number
}

export interface ProcessStatus {
  readonly worker: number
  readonly pid: number
  readonly startedAt: number
  readonly config: ConfigGeneration
  readonly draining: boolean
  /** Sessions open now. */
  readonly sessions: number
  /** --max-connections (0: unlimited). */
  readonly maxConnections: number
  readonly byPhase: Readonly<Record<string, number>>
  /** At most offset + limit, in the order asked. */
  readonly list: readonly SessionSummary[]
  /** Newest first. */
  readonly verdicts: readonly RecentVerdict[]
}

export interface ProcessReport {
  readonly worker: number
  readonly pid: number
  readonly metrics?: MetricSnapshot[]
  readonly status?: ProcessStatus
}
