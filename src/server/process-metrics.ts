/**
 * The process's metrics beyond the registry: the DNS resolver's counters (it keeps its own,
 * read at scrape time: nothing is added to a lookup), the version, and the store's operations
 * and errors, counted by a wrapper around the process's store.
 */
import type { DnsStats } from '../dns/index.ts'
import type { Counter, MetricSnapshot, Metrics } from '../metrics/index.ts'
import type { Store } from '../store/index.ts'
import { version } from '../version.ts'

const counter = (name: string, help: string, value: number, labels: Record<string, string> = {}): MetricSnapshot => ({
  kind: 'counter',
  name,
  help,
  labelNames: Object.keys(labels),
  series: [{ labels, value }],
})

/** The resolver's counters as metric families. */
export function dnsSnapshot(stats: DnsStats): MetricSnapshot[] {
  const families: MetricSnapshot[] = [
    counter('qtsmtpd_dns_queries_total', 'DNS lookups asked by plugins', stats.queries),
    counter('qtsmtpd_dns_cache_hits_total', 'DNS lookups answered from the cache', stats.cacheHits),
    counter('qtsmtpd_dns_coalesced_total', 'DNS lookups that joined an identical one under way', stats.coalesced),
    {
      kind: 'counter',
      name: 'qtsmtpd_dns_answers_total',
      help: 'DNS answers given to plugins, by kind (records, nxdomain, nodata, failure, timeout)',
      labelNames: ['kind'],
      series: Object.entries(stats.answers).map(([kind, value]) => ({ labels: { kind }, value })),
    },
    {
      kind: 'gauge',
      name: 'qtsmtpd_dns_cache_entries',
      help: 'Answers in the DNS cache now',
      labelNames: [],
      series: [{ labels: {}, value: stats.cacheEntries }],
    },
  ]
  const up = stats.upstream
  if (up !== undefined)
    families.push(
      {
        kind: 'counter',
        name: 'qtsmtpd_dns_upstream_queries_total',
        help: 'Queries sent to DNS servers, by transport',
        labelNames: ['transport'],
        series: [
          { labels: { transport: 'udp' }, value: up.udpQueries },
          { labels: { transport: 'tcp' }, value: up.tcpQueries },
        ],
      },
      counter(
        'qtsmtpd_dns_upstream_timeouts_total',
        'Attempts a DNS server did not answer in time',
        up.attemptTimeouts,
      ),
      counter(
        'qtsmtpd_dns_upstream_failures_total',
        'Attempts answered with a failure (SERVFAIL, REFUSED, malformed, network error)',
        up.attemptFailures,
      ),
      counter(
        'qtsmtpd_dns_upstream_ignored_total',
        'Datagrams ignored: id, question or source did not match',
        up.ignored,
      ),
      counter('qtsmtpd_dns_upstream_truncated_total', 'Truncated UDP answers retried over TCP', up.truncated),
      counter(
        'qtsmtpd_dns_inflight_waits_total',
        'Lookups that waited for a turn (dns_max_inflight on the wire)',
        up.waitedForSlot,
      ),
    )
  return families
}

export const buildInfo = (): MetricSnapshot => ({
  kind: 'gauge',
  name: 'qtsmtpd_build_info',
  help: 'Always 1; the version in a label',
  labelNames: ['version'],
  series: [{ labels: { version }, value: 1 }],
})

type Operation = Exclude<keyof Store, 'scope' | 'close'>
const operations: readonly Operation[] = [
  'get',
  'set',
  'delete',
  'incr',
  'compareAndSet',
  'hit',
  'lease',
  'releaseLease',
  'list',
]

/** The store, counting each operation and each failure (a StoreUnavailable, a timeout) per operation and backend. */
export function meteredStore(store: Store, metrics: Metrics, backend: string): Store {
  const ops = metrics.counter({
    name: 'qtsmtpd_store_operations_total',
    help: 'Store operations asked by plugins, by backend and operation',
    labelNames: ['backend', 'operation'],
  })
  const errors = metrics.counter({
    name: 'qtsmtpd_store_errors_total',
    help: 'Store operations that failed, by backend and operation',
    labelNames: ['backend', 'operation'],
  })
  const bound = new Map<Operation, { ops: Counter; errors: Counter }>(
    operations.map((operation) => [
      operation,
      { ops: ops.labels({ backend, operation }), errors: errors.labels({ backend, operation }) },
    ]),
  )
  const count = <T>(operation: Operation, run: () => Promise<T>): Promise<T> => {
    const c = bound.get(operation) as { ops: Counter; errors: Counter }
    c.ops.inc()
    return run().catch((e: unknown) => {
      c.errors.inc()
      throw e
    })
  }
  const wrap = (s: Store): Store => ({
    get: (key) => count('get', () => s.get(key)),
    set: (key, value, opts) => count('set', () => s.set(key, value, opts)),
    delete: (key) => count('delete', () => s.delete(key)),
    incr: (key, by, opts) => count('incr', () => s.incr(key, by, opts)),
    compareAndSet: (key, expected, value, opts) =>
      count('compareAndSet', () => s.compareAndSet(key, expected, value, opts)),
    hit: (key, windowMs) => count('hit', () => s.hit(key, windowMs)),
    lease: (key, holder, ttlMs, limit) => count('lease', () => s.lease(key, holder, ttlMs, limit)),
    releaseLease: (key, holder) => count('releaseLease', () => s.releaseLease(key, holder)),
    list: (prefix, limit) => countedList(s.list(prefix, limit), bound.get('list') as { ops: Counter; errors: Counter }),
    scope: (prefix) => wrap(s.scope(prefix)),
    close: () => s.close(),
  })
  return wrap(store)
}

async function* countedList<T>(entries: AsyncIterable<T>, c: { ops: Counter; errors: Counter }): AsyncIterable<T> {
  c.ops.inc()
  try {
    yield* entries
  } catch (e) {
    c.errors.inc()
    throw e
  }
}
