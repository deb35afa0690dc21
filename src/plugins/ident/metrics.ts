/**
 * The metric both ident plugins record: how many clients each looked up, by outcome, so that a
 * p0f that stopped sniffing (everything `unknown`) or a GeoIP database that no longer opens
 * (everything `failed`) shows on a dashboard.
 */
import type { Counter, Metrics } from '../../metrics/index.ts'

/** found: an answer; unknown: the service or database knows nothing of the client; failed: it could not be asked. */
export type IdentOutcome = 'found' | 'unknown' | 'failed'

export function identMetrics(metrics: Metrics, plugin: string): { record(outcome: IdentOutcome): void } {
  const lookups = metrics.counter({
    name: 'qtsmtpd_ident_lookups_total',
    help: 'Clients looked up by the ident plugins (p0f, GeoIP), by plugin and outcome',
    labelNames: ['plugin', 'outcome'],
  })
  const byOutcome: Record<IdentOutcome, Counter> = {
    found: lookups.labels({ plugin, outcome: 'found' }),
    unknown: lookups.labels({ plugin, outcome: 'unknown' }),
    failed: lookups.labels({ plugin, outcome: 'failed' }),
  }
  return { record: (outcome) => byOutcome[outcome].inc() }
}
