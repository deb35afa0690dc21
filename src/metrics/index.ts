/** The metrics service: the contract and the in-memory registry the process holds. */
export { defaultMaxSeries, type MemoryMetrics, type MemoryMetricsOptions, memoryMetrics } from './memory.ts'
export {
  type Counter,
  defaultSecondsBuckets,
  type Gauge,
  type Histogram,
  type HistogramOptions,
  type HistogramSeries,
  type Labelled,
  type LabelValues,
  type MetricKind,
  type MetricOf,
  type MetricOptions,
  type MetricSnapshot,
  type Metrics,
  type ValueSeries,
} from './metrics.ts'
export { type ScanMetrics, type ScanOutcome, scanMetrics } from './scans.ts'
