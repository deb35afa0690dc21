/**
 * The front door's counts, per listener: connections open now, accepted since start, and
 * refused before any session, by reason. Children are bound at a listener's first connection
 * (a reason at its first occurrence), so a connection costs a Map lookup and two increments.
 */
import type { Counter, Gauge, Metrics } from '../metrics/index.ts'

export type RefusalReason =
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'proxy_error'
  | 'untrusted_proxy'
  | 'draining'

interface PerListener {
  readonly total: Counter
  readonly open: Gauge
  readonly refused: Map<RefusalReason, Counter>
}

export class ConnectionMetrics {
  readonly #metrics: Metrics
  readonly #families
  readonly #byListener = new Map<string, PerListener>()

  constructor(metrics: Metrics) {
    this.#metrics = metrics
    this.#families = {
      total: metrics.counter({
        name: 'qtsmtpd_connections_total',
        help: 'Connections accepted from the kernel, refused ones included',
        labelNames: ['listener'],
      }),
      open: metrics.gauge({
        name: 'qtsmtpd_connections_open',
        help: 'Connections open now (counted from accept, as --max-connections counts them)',
        labelNames: ['listener'],
      }),
      refused: metrics.counter({
        name: 'qtsmtpd_connections_refused_total',
        help: 'Connections closed before a session, by reason (plugin refusals are in qtsmtpd_replies_total)',
        labelNames: ['listener', 'reason'],
      }),
    }
  }

  /** Whether this is the registry the children were bound in (a runtime built in code may bring its own). */
  uses(metrics: Metrics): boolean {
    return metrics === this.#metrics
  }

  #for(listener: string): PerListener {
    let l = this.#byListener.get(listener)
    if (l === undefined)
      this.#byListener.set(
        listener,
        (l = {
          total: this.#families.total.labels({ listener }),
          open: this.#families.open.labels({ listener }),
          refused: new Map(),
        }),
      )
    return l
  }

  accepted(listener: string): void {
    this.#for(listener).total.inc()
  }

  opened(listener: string): void {
    this.#for(listener).open.inc()
  }

  closed(listener: string): void {
    this.#for(listener).open.dec()
  }

  refused(listener: string, reason: RefusalReason): void {
    const l = this.#for(listener)
    let c = l.refused.get(reason)
    if (c === undefined) l.refused.set(reason, (c = this.#families.refused.labels({ listener, reason })))
    c.inc()
  }
}
