/**
 * What one serving process tells the admin listener (directly, or through the primary over the
 * cluster channel): its metrics snapshot, and a summary of its sessions (admin/report.ts).
 */
import { createHash } from 'node:crypto'
import {
  type ConfigGeneration,
  maxStatusOffset,
  type ProcessReport,
  type ProcessStatus,
  type ReportRequest,
  type SessionSummary,
  type StatusQuery,
} from '../admin/report.ts'
import type { MetricSnapshot } from '../metrics/index.ts'
import { formatAddress } from '../protocol/envelope.ts'
import type { SmtpServer } from './smtp-server.ts'

/** The process-wide facts a report needs beside the server. */
export interface ReportSource {
  readonly worker: number
  readonly startedAt: number
  readonly config: () => ConfigGeneration
  readonly metrics: () => MetricSnapshot[]
}

export function processReport(server: SmtpServer, source: ReportSource, request: ReportRequest): ProcessReport {
  const wanted = request.metrics
  const metrics =
    wanted === undefined
      ? undefined
      : wanted === true
        ? source.metrics()
        : source.metrics().filter((f) => wanted.includes(f.name))
  return {
    worker: source.worker,
    pid: process.pid,
    ...(metrics === undefined ? {} : { metrics }),
    ...(request.status === undefined ? {} : { status: processStatus(server, source, request.status) }),
  }
}

function processStatus(server: SmtpServer, source: ReportSource, q: StatusQuery): ProcessStatus {
  const byPhase: Record<string, number> = {}
  const all = [...server.sessions()]
  for (const s of all) byPhase[s.phase.name] = (byPhase[s.phase.name] ?? 0) + 1
  const want = Math.min(q.offset, maxStatusOffset) + Math.max(0, q.limit)
  const picked = q.order === 'oldest' ? all.slice(0, want) : all.slice(-want || all.length).reverse()
  return {
    worker: source.worker,
    pid: process.pid,
    startedAt: source.startedAt,
    config: source.config(),
    draining: server.draining,
    sessions: all.length,
    maxConnections: server.limits.maxConnections,
    byPhase,
    list: want === 0 ? [] : picked.map((s) => summary(s, source.worker)),
    verdicts: server.recentVerdicts.list(),
  }
}

type Session = ReturnType<SmtpServer['sessions']> extends IterableIterator<infer S> ? S : never

const cut = (s: string | undefined): string | undefined => (s === undefined ? undefined : s.slice(0, 256))

function summary(s: Session, worker: number): SessionSummary {
  const c = s.connection
  const txn = 'txn' in s.phase ? s.phase.txn : undefined
  return {
    id: c.id,
    ip: c.remote.ip,
    port: c.remote.port,
    listener: c.listener.name,
    host: cut(c.remoteHost),
    helo: cut(c.helo?.host),
    phase: s.phase.name,
    startedAt: c.startedAt.getTime(),
    tls: c.tls === undefined ? undefined : `${c.tls.version} ${c.tls.cipher}`,
    user: cut(c.auth?.user),
    from: txn === undefined ? undefined : cut(formatAddress(txn.mailFrom.address)),
    recipients: txn?.recipients.length ?? 0,
    messages: c.messageCount,
    worker,
  }
}

/** The generation's digest of a configuration snapshot (or of nothing, for a runtime built in code). */
export function configDigest(snapshot: unknown): string {
  return createHash('sha256')
    .update(JSON.stringify(snapshot ?? null))
    .digest('hex')
    .slice(0, 12)
}
