/**
 * The in-memory metrics registry: the process's one registry (an exporter prints its
 * snapshot), and the one tests read. Children are plain objects with a number in them; the
 * label-value lookup happens once, in `labels()`.
 *
 * A metric keeps at most `maxSeries` label-value combinations: a plugin that labels by client
 * IP would otherwise grow without bound. Past it, new combinations are counted nowhere and one
 * warning says which metric overflowed.
 */
import {
  type Counter,
  defaultSecondsBuckets,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type HistogramSeries,
  type MetricKind,
  type MetricOptions,
  type MetricSnapshot,
  type Metrics,
  type ValueSeries,
} from './metrics.ts'

export interface MemoryMetricsOptions {
  /** Label-value combinations one metric keeps (default 10,000). */
  readonly maxSeries?: number
  /** Told once per metric that overflows `maxSeries`. */
  readonly onWarning?: (message: string) => void
}

export interface MemoryMetrics extends Metrics {
  /** Every metric and series, in the order they were declared and first bound. */
  snapshot(): MetricSnapshot[]
  /**
   * A counter's or gauge's value, or a histogram's count, for exactly these labels; undefined
   * when that series was never bound (tests).
   */
  value(name: string, labels?: Readonly<Record<string, string>>): number | undefined
}

export const defaultMaxSeries = 10_000

class CounterChild implements Counter {
  value = 0
  inc(by = 1): void {
    if (!(by >= 0)) throw new RangeError(`a counter only goes up (inc by ${by})`)
    this.value += by
  }
}

class GaugeChild implements Gauge {
  value = 0
  set(value: number): void {
    this.value = value
  }
  inc(by = 1): void {
    this.value += by
  }
  dec(by = 1): void {
    this.value -= by
  }
}

class HistogramChild implements Histogram {
  readonly #bounds: readonly number[]
  /** Per bucket, not cumulative; the last one is +Inf. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(bounds: readonly number[]) {
    this.#bounds = bounds
    this.counts = new Float64Array(bounds.length + 1)
  }
  observe(value: number): void {
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && value > (bounds[i] as number)) i++
    this.counts[i] = (this.counts[i] as number) + 1
    this.sum += value
    this.count++
  }
}

type Child = CounterChild | GaugeChild | HistogramChild

interface Family {
  readonly kind: MetricKind
  readonly name: string
  readonly help: string
  readonly labelNames: readonly string[]
  readonly bounds: readonly number[]
  readonly series: Map<string, { readonly labels: Readonly<Record<string, string>>; readonly child: Child }>
  /** What counter()/gauge()/histogram() returned, returned again for the same declaration. */
  handle: unknown
  overflowed: boolean
}

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function memoryMetrics(opts: MemoryMetricsOptions = {}): MemoryMetrics {
  const maxSeries = opts.maxSeries ?? defaultMaxSeries
  const families = new Map<string, Family>()

  const newChild = (f: Family): Child =>
    f.kind === 'counter' ? new CounterChild() : f.kind === 'gauge' ? new GaugeChild() : new HistogramChild(f.bounds)

  const bind = (f: Family, values: Readonly<Record<string, unknown>>): Child => {
    const parts: string[] = []
    for (const n of f.labelNames) {
      const v = values[n]
      if (typeof v !== 'string') throw new TypeError(`metric ${f.name}: label ${n} needs a string value`)
      parts.push(v)
    }
    const extra = Object.keys(values).find((k) => !f.labelNames.includes(k))
    if (extra !== undefined) throw new TypeError(`metric ${f.name} has no label ${extra}`)
    const key = parts.join('\u0000')
    const found = f.series.get(key)
    if (found !== undefined) return found.child
    const child = newChild(f)
    if (f.series.size >= maxSeries) {
      if (!f.overflowed)
        opts.onWarning?.(`metric ${f.name}: more than ${maxSeries} label combinations; new ones are not recorded`)
      f.overflowed = true
      return child
    }
    const labels = Object.fromEntries(f.labelNames.map((n, i) => [n, parts[i] as string]))
    f.series.set(key, { labels, child })
    return child
  }

  const declare = (kind: MetricKind, o: MetricOptions<string>, buckets?: readonly number[]): unknown => {
    const labelNames = o.labelNames ?? []
    const bounds = kind === 'histogram' ? (buckets ?? defaultSecondsBuckets) : []
    const existing = families.get(o.name)
    if (existing !== undefined) {
      const same =
        existing.kind === kind &&
        existing.labelNames.join() === labelNames.join() &&
        existing.bounds.join() === bounds.join()
      if (!same)
        throw new Error(
          `metric ${o.name} is already declared as a ${existing.kind} with labels [${existing.labelNames.join(', ')}]`,
        )
      return existing.handle
    }
    check(kind, o.name, labelNames, bounds)
    const f: Family = {
      kind,
      name: o.name,
      help: o.help,
      labelNames: [...labelNames],
      bounds: [...bounds],
      series: new Map(),
      handle: undefined,
      overflowed: false,
    }
    f.handle = labelNames.length === 0 ? bind(f, {}) : { labels: (values: Record<string, unknown>) => bind(f, values) }
    families.set(o.name, f)
    return f.handle
  }

  return {
    counter: (o) => declare('counter', o) as never,
    gauge: (o) => declare('gauge', o) as never,
    histogram: (o: HistogramOptions<string>) => declare('histogram', o, o.buckets) as never,
    snapshot: () => [...families.values()].map(snapshotOf),
    value(name, labels = {}) {
      const f = families.get(name)
      if (f === undefined) return undefined
      const key = f.labelNames.map((n) => labels[n]).join('\u0000')
      const child = f.series.get(key)?.child
      if (child === undefined || f.labelNames.length !== Object.keys(labels).length) return undefined
      return child instanceof HistogramChild ? child.count : child.value
    },
  }
}

function check(kind: MetricKind, name: string, labelNames: readonly string[], bounds: readonly number[]): void {
  if (!metricName.test(name)) throw new Error(`metric name ${JSON.stringify(name)} is not [a-zA-Z_:][a-zA-Z0-9_:]*`)
  for (const n of labelNames)
    if (!labelName.test(n) || n.startsWith('__') || (kind === 'histogram' && n === 'le'))
      throw new Error(`metric ${name}: ${JSON.stringify(n)} cannot be a label name`)
  if (new Set(labelNames).size !== labelNames.length) throw new Error(`metric ${name}: a label name is repeated`)
  if (
    kind === 'histogram' &&
    (bounds.length === 0 || bounds.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))))
  )
    throw new Error(`metric ${name}: buckets must be finite and increasing`)
}

function snapshotOf(f: Family): MetricSnapshot {
  const base = { name: f.name, help: f.help, labelNames: f.labelNames }
  if (f.kind === 'histogram') {
    const series: HistogramSeries[] = [...f.series.values()].map(({ labels, child }) => {
      const h = child as HistogramChild
      let running = 0
      const buckets = f.bounds.map((_, i) => (running += h.counts[i] as number))
      return { labels, count: h.count, sum: h.sum, buckets }
    })
    return { kind: 'histogram', ...base, bounds: f.bounds, series }
  }
  const series: ValueSeries[] = [...f.series.values()].map(({ labels, child }) => ({
    labels,
    value: (child as CounterChild | GaugeChild).value,
  }))
  return { kind: f.kind, ...base, series }
}
