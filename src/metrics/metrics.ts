/**
 * The metrics service: counters, gauges and histograms with label names, in the shape of
 * Prometheus (names, help, `_total`, cumulative buckets in seconds), so that an exporter can
 * print its text format from a snapshot. A metric is declared once (at setup); `labels()`
 * binds a child to label values, and the hot path only calls the child: no label strings are
 * built per event.
 *
 * @example
 *   // in setup
 *   const checked = metrics.counter({ name: 'qtsmtpd_greylist_checks_total', help: 'Triplets checked',
 *     labelNames: ['outcome'] })
 *   const deferred = checked.labels({ outcome: 'deferred' })
 *   // in a hook
 *   deferred.inc()
 */

export interface Counter {
  /** Adds `by` (default 1; must not be negative). */
  inc(by?: number): void
}

export interface Gauge {
  set(value: number): void
  inc(by?: number): void
  dec(by?: number): void
}

export interface Histogram {
  /** Records one observation (seconds, for durations). */
  observe(value: number): void
}

export type LabelValues<L extends string> = { readonly [K in L]: string }

export interface Labelled<L extends string, C> {
  /** The child for these label values: bind it once, outside the hot path. */
  labels(values: LabelValues<L>): C
}

/** A metric without label names is its own only child; one with label names is used through `labels()`. */
export type MetricOf<L extends string, C> = [L] extends [never] ? C : Labelled<L, C>

export interface MetricOptions<L extends string> {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`; by convention `qtsmtpd_<area>_<what>`, counters ending in `_total`. */
  readonly name: string
  readonly help: string
  readonly labelNames?: readonly L[]
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, increasing; default `defaultSecondsBuckets`. */
  readonly buckets?: readonly number[]
}

export interface Metrics {
  /**
   * Declares a metric, or returns the one already declared under this name with the same kind,
   * label names (and buckets): a plugin set up again after a reload keeps counting where it was.
   * Throws when the name is taken by a different declaration.
   */
  counter<const L extends string = never>(opts: MetricOptions<L>): MetricOf<L, Counter>
  gauge<const L extends string = never>(opts: MetricOptions<L>): MetricOf<L, Gauge>
  histogram<const L extends string = never>(opts: HistogramOptions<L>): MetricOf<L, Histogram>
}

/** From 0.5 ms to 30 s: hook calls, DNS lookups, store round trips. */
export const defaultSecondsBuckets: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]

export type MetricKind = 'counter' | 'gauge' | 'histogram'

export interface ValueSeries {
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface HistogramSeries {
  readonly labels: Readonly<Record<string, string>>
  readonly count: number
  readonly sum: number
  /** Cumulative counts, one per bucket bound (observations ≤ the bound); `+Inf` is `count`. */
  readonly buckets: readonly number[]
}

export type MetricSnapshot =
  | {
      readonly kind: 'counter' | 'gauge'
      readonly name: string
      readonly help: string
      readonly labelNames: readonly string[]
      readonly series: readonly ValueSeries[]
    }
  | {
      readonly kind: 'histogram'
      readonly name: string
      readonly help: string
      readonly labelNames: readonly string[]
      readonly bounds: readonly number[]
      readonly series: readonly HistogramSeries[]
    }
