/**
 * Prometheus' text exposition format (version 0.0.4) from registry snapshots, and the sum of
 * several processes' snapshots (the workers of one server): what `/metrics` serves.
 *
 * Written here rather than with prom-client: its children hash their label values on every
 * `inc()`/`observe()` (about 40 times our bound children's cost, measured in
 * docs/dependencies.md), and its cluster aggregation fails a scrape when one worker is slow
 * and forgets the counts of a worker that exited. Prometheus' own parser (`promtool check
 * metrics`) checks this output in test/admin/metrics.test.ts.
 */
import type { HistogramSeries, MetricSnapshot, ValueSeries } from './metrics.ts'

export const expositionContentType = 'text/plain; version=0.0.4; charset=utf-8'

/** The text format: HELP and TYPE once per family, then a line per series (histograms: buckets, sum, count). */
export function renderExposition(families: readonly MetricSnapshot[]): string {
  const out: string[] = []
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`)
    if (f.kind !== 'histogram') {
      for (const s of f.series) out.push(`${f.name}${labelText(s.labels)} ${number(s.value)}`)
      continue
    }
    for (const s of f.series) {
      f.bounds.forEach((bound, i) => {
        out.push(`${f.name}_bucket${labelText(s.labels, number(bound))} ${number(s.buckets[i] ?? 0)}`)
      })
      out.push(`${f.name}_bucket${labelText(s.labels, '+Inf')} ${number(s.count)}`)
      out.push(`${f.name}_sum${labelText(s.labels)} ${number(s.sum)}`)
      out.push(`${f.name}_count${labelText(s.labels)} ${number(s.count)}`)
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`
}

function labelText(labels: Readonly<Record<string, string>>, le?: string): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`)
  if (le !== undefined) parts.push(`le="${le}"`)
  return parts.length === 0 ? '' : `{${parts.join(',')}}`
}

const escapeHelp = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')

function number(n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Number.POSITIVE_INFINITY) return '+Inf'
  if (n === Number.NEGATIVE_INFINITY) return '-Inf'
  return String(n)
}

/**
 * Sums snapshots series by series (counters, gauges and histograms alike: open connections
 * of two workers add up too). Families keep the order they first appear in; a family declared
 * differently by two processes (a different kind, labels or buckets: two versions of a plugin
 * during an upgrade) keeps the first declaration and drops the others' series.
 */
export function sumSnapshots(lists: readonly (readonly MetricSnapshot[])[]): MetricSnapshot[] {
  const families = new Map<string, Accumulator>()
  for (const list of lists)
    for (const f of list) {
      let acc = families.get(f.name)
      if (acc === undefined) families.set(f.name, (acc = new Accumulator(f)))
      acc.add(f)
    }
  return [...families.values()].map((a) => a.snapshot())
}

const seriesKey = (labelNames: readonly string[], labels: Readonly<Record<string, string>>): string =>
  labelNames.map((n) => labels[n] ?? '').join('\u0000')

class Accumulator {
  readonly #first: MetricSnapshot
  readonly #values = new Map<string, ValueSeries>()
  readonly #histograms = new Map<string, HistogramSeries>()

  constructor(first: MetricSnapshot) {
    this.#first = first
  }

  add(f: MetricSnapshot): void {
    const first = this.#first
    if (f.kind !== first.kind || f.labelNames.join() !== first.labelNames.join()) return
    if (f.kind === 'histogram') {
      if (first.kind !== 'histogram' || f.bounds.join() !== first.bounds.join()) return
      for (const s of f.series) {
        const key = seriesKey(f.labelNames, s.labels)
        const had = this.#histograms.get(key)
        this.#histograms.set(
          key,
          had === undefined
            ? s
            : {
                labels: had.labels,
                count: had.count + s.count,
                sum: had.sum + s.sum,
                buckets: had.buckets.map((b, i) => b + (s.buckets[i] ?? 0)),
              },
        )
      }
      return
    }
    for (const s of f.series) {
      const key = seriesKey(f.labelNames, s.labels)
      const had = this.#values.get(key)
      this.#values.set(key, had === undefined ? s : { labels: had.labels, value: had.value + s.value })
    }
  }

  snapshot(): MetricSnapshot {
    const f = this.#first
    if (f.kind === 'histogram') return { ...f, series: [...this.#histograms.values()] }
    return { ...f, series: [...this.#values.values()] }
  }
}

/**
 * What the workers that exited had counted, so that a server's counters never go down when a
 * worker is replaced (Prometheus would read that as a reset). Gauges are left out: an exited
 * worker holds no connections.
 */
export class RetiredCounts {
  #kept: MetricSnapshot[] = []

  /** Adds an exited worker's last snapshot. */
  retire(last: readonly MetricSnapshot[]): void {
    this.#kept = sumSnapshots([this.#kept, last.filter((f) => f.kind !== 'gauge')])
  }

  get snapshot(): readonly MetricSnapshot[] {
    return this.#kept
  }
}
