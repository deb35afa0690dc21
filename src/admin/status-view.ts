/**
 * The status the page, `/api/status` and `qtsmtpd status` show, merged from the processes'
 * reports: session counts by phase, one page of sessions (oldest or newest first), the recent
 * verdicts of all workers, each plugin's hook latency and verdicts, and the queue outcomes.
 * Bounded whatever the load: one page of sessions, one ring of verdicts, one row per plugin
 * and hook.
 */
import { sumSnapshots } from '../metrics/exposition.ts'
import type { HistogramSeries, MetricSnapshot } from '../metrics/index.ts'
import type { AdminBackend, ServerFacts } from './backend.ts'
import { type Health, healthFrom } from './health.ts'
import type { ProcessStatus, RecentVerdict, SessionSummary, StatusQuery } from './report.ts'

export interface PluginRow {
  readonly plugin: string
  readonly hook: string
  readonly calls: number
  readonly meanMs: number
  /** The bucket bound at or under which 95% of the calls ended (an upper estimate), in ms. */
  readonly p95Ms: number | undefined
  /** Calls by how they ended (pass, accept, reject, defer, ok, error, timeout, ...). */
  readonly outcomes: Readonly<Record<string, number>>
}

export interface QueueRow {
  readonly plugin: string
  readonly outcomes: Readonly<Record<string, number>>
  readonly meanMs: number
}

export interface WorkerRow {
  readonly id: number
  readonly pid: number | undefined
  readonly ready: boolean
  readonly startedAt: number | undefined
  readonly restarts: number
  readonly sessions: number | undefined
  readonly config: string | undefined
  readonly answered: boolean
}

export interface StatusView {
  readonly at: number
  readonly server: Omit<ServerFacts, 'workers'>
  readonly health: Health
  readonly workers: readonly WorkerRow[]
  readonly sessions: number
  readonly byPhase: Readonly<Record<string, number>>
  readonly order: StatusQuery['order']
  readonly offset: number
  /** Sessions per page (admin_page_size, or fewer when asked). */
  readonly pageSize: number
  readonly list: readonly SessionSummary[]
  readonly verdicts: readonly RecentVerdict[]
  readonly plugins: readonly PluginRow[]
  readonly queues: readonly QueueRow[]
}

export const statusFamilies = [
  'qtsmtpd_hook_duration_seconds',
  'qtsmtpd_hook_verdicts_total',
  'qtsmtpd_queue_handoffs_total',
  'qtsmtpd_queue_handoff_seconds',
]

export async function statusView(backend: AdminBackend, query: StatusQuery): Promise<StatusView> {
  const collected = await backend.collect({ status: query, metrics: statusFamilies })
  const facts = backend.facts()
  const health = healthFrom(facts, collected.reports, backend.settings)
  const statuses = collected.reports.flatMap((r) => (r.status === undefined ? [] : [r.status]))
  const byWorker = new Map(statuses.map((s) => [s.worker, s]))
  const byPhase: Record<string, number> = {}
  for (const s of statuses)
    for (const [phase, n] of Object.entries(s.byPhase)) byPhase[phase] = (byPhase[phase] ?? 0) + n
  const { workers, ...server } = facts
  const families = sumSnapshots(collected.reports.map((r) => r.metrics ?? []))
  return {
    at: Date.now(),
    server,
    health,
    workers: workers.map((w) => workerRow(w, byWorker.get(w.id), !collected.unanswered.includes(w.id))),
    sessions: statuses.reduce((n, s) => n + s.sessions, 0),
    byPhase,
    order: query.order,
    offset: query.offset,
    pageSize: query.limit,
    list: pageOf(statuses, query),
    verdicts: statuses
      .flatMap((s) => s.verdicts)
      .sort((a, b) => b.at - a.at)
      .slice(0, backend.settings.recentVerdicts),
    plugins: pluginRows(families),
    queues: queueRows(families),
  }
}

function workerRow(w: ServerFacts['workers'][number], status: ProcessStatus | undefined, answered: boolean): WorkerRow {
  return {
    id: w.id,
    pid: w.pid,
    ready: w.ready,
    startedAt: w.startedAt,
    restarts: w.restarts,
    sessions: status?.sessions,
    config: status === undefined ? undefined : `${status.config.generation} ${status.config.digest}`,
    answered,
  }
}

function pageOf(statuses: readonly ProcessStatus[], q: StatusQuery): SessionSummary[] {
  const all = statuses.flatMap((s) => s.list)
  all.sort((a, b) => (q.order === 'oldest' ? a.startedAt - b.startedAt : b.startedAt - a.startedAt))
  return all.slice(q.offset, q.offset + q.limit)
}

const family = (families: readonly MetricSnapshot[], name: string) => families.find((f) => f.name === name)

function pluginRows(families: readonly MetricSnapshot[]): PluginRow[] {
  const durations = family(families, 'qtsmtpd_hook_duration_seconds')
  const verdicts = family(families, 'qtsmtpd_hook_verdicts_total')
  const outcomes = new Map<string, Record<string, number>>()
  if (verdicts !== undefined && verdicts.kind !== 'histogram')
    for (const s of verdicts.series) {
      const key = `${s.labels.plugin}\u0000${s.labels.hook}`
      const o = outcomes.get(key) ?? {}
      o[s.labels.verdict ?? '?'] = (o[s.labels.verdict ?? '?'] ?? 0) + s.value
      outcomes.set(key, o)
    }
  if (durations === undefined || durations.kind !== 'histogram') return []
  return durations.series
    .filter((s) => s.count > 0)
    .map((s) => ({
      plugin: s.labels.plugin ?? '?',
      hook: s.labels.hook ?? '?',
      calls: s.count,
      meanMs: (s.sum / s.count) * 1000,
      p95Ms: percentileMs(s, durations.bounds, 0.95),
      outcomes: outcomes.get(`${s.labels.plugin}\u0000${s.labels.hook}`) ?? {},
    }))
}

function percentileMs(s: HistogramSeries, bounds: readonly number[], q: number): number | undefined {
  const i = s.buckets.findIndex((n) => n >= q * s.count)
  return i < 0 ? undefined : (bounds[i] as number) * 1000
}

function queueRows(families: readonly MetricSnapshot[]): QueueRow[] {
  const handoffs = family(families, 'qtsmtpd_queue_handoffs_total')
  const seconds = family(families, 'qtsmtpd_queue_handoff_seconds')
  const rows = new Map<string, { outcomes: Record<string, number>; meanMs: number }>()
  if (handoffs !== undefined && handoffs.kind !== 'histogram')
    for (const s of handoffs.series) {
      const plugin = s.labels.plugin ?? '?'
      const row = rows.get(plugin) ?? { outcomes: {}, meanMs: 0 }
      row.outcomes[s.labels.outcome ?? '?'] = s.value
      rows.set(plugin, row)
    }
  if (seconds !== undefined && seconds.kind === 'histogram')
    for (const s of seconds.series) {
      const row = rows.get(s.labels.plugin ?? '?')
      if (row !== undefined && s.count > 0) row.meanMs = (s.sum / s.count) * 1000
    }
  return [...rows].map(([plugin, row]) => ({ plugin, ...row }))
}
