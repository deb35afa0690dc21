/**
 * The metrics every content filter records (spamd, rspamd, clamd, command-line scanners): how
 * many messages each plugin scanned, by outcome, and how long the scanner took to answer. One
 * declaration for all of them, so a dashboard finds every scanner under the same two names.
 */
import type { Counter, Histogram, Metrics } from './metrics.ts'

/** ham/spam for spam filters, clean/infected for virus scanners; skipped (size, immunity); failed. */
export type ScanOutcome = 'ham' | 'spam' | 'clean' | 'infected' | 'skipped' | 'failed'

export interface ScanMetrics {
  /** Counts one scan's outcome and, when the scanner was asked, its time in seconds. */
  record(outcome: ScanOutcome, seconds?: number): void
}

export function scanMetrics(metrics: Metrics, plugin: string): ScanMetrics {
  const scans = metrics.counter({
    name: 'qtsmtpd_content_scans_total',
    help: 'Messages handled by content filters, by plugin and outcome',
    labelNames: ['plugin', 'outcome'],
  })
  const duration = metrics
    .histogram({
      name: 'qtsmtpd_content_scan_seconds',
      help: 'Time a content filter waited for its scanner (daemon round trip or program run)',
      labelNames: ['plugin'],
    })
    .labels({ plugin })
  const byOutcome = new Map<ScanOutcome, Counter>()
  return {
    record(outcome, seconds) {
      let counter = byOutcome.get(outcome)
      if (counter === undefined) byOutcome.set(outcome, (counter = scans.labels({ plugin, outcome })))
      counter.inc()
      if (seconds !== undefined) (duration as Histogram).observe(seconds)
    },
  }
}
