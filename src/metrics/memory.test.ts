import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { memoryMetrics } from './memory.ts'

describe('memoryMetrics', () => {
  it('counts per bound child and shows every series in the snapshot', () => {
    const m = memoryMetrics()
    const checks = m.counter({ name: 'qtsmtpd_test_checks_total', help: 'Checks', labelNames: ['outcome'] })
    const passed = checks.labels({ outcome: 'passed' })
    passed.inc()
    passed.inc(2)
    checks.labels({ outcome: 'failed' }).inc()
    assert.equal(m.value('qtsmtpd_test_checks_total', { outcome: 'passed' }), 3)
    assert.equal(m.value('qtsmtpd_test_checks_total', { outcome: 'failed' }), 1)
    assert.equal(m.value('qtsmtpd_test_checks_total', { outcome: 'other' }), undefined)
    assert.deepEqual(m.snapshot(), [
      {
        kind: 'counter',
        name: 'qtsmtpd_test_checks_total',
        help: 'Checks',
        labelNames: ['outcome'],
        series: [
          { labels: { outcome: 'passed' }, value: 3 },
          { labels: { outcome: 'failed' }, value: 1 },
        ],
      },
    ])
  })

  it('binds the same child for the same label values', () => {
    const m = memoryMetrics()
    const c = m.counter({ name: 'c_total', help: 'c', labelNames: ['a', 'b'] })
    assert.equal(c.labels({ a: '1', b: '2' }), c.labels({ b: '2', a: '1' }))
    assert.notEqual(c.labels({ a: '1', b: '2' }), c.labels({ a: '2', b: '1' }))
  })

  it('uses a metric without labels directly', () => {
    const m = memoryMetrics()
    const up = m.gauge({ name: 'qtsmtpd_test_open', help: 'Open things' })
    up.inc()
    up.inc(4)
    up.dec()
    assert.equal(m.value('qtsmtpd_test_open'), 4)
    up.set(10)
    assert.equal(m.value('qtsmtpd_test_open'), 10)
  })

  it('puts histogram observations in cumulative buckets', () => {
    const m = memoryMetrics()
    const h = m.histogram({ name: 'qtsmtpd_test_seconds', help: 'Time', buckets: [0.1, 1, 10] })
    for (const v of [0.05, 0.1, 0.5, 3, 30]) h.observe(v)
    const [snap] = m.snapshot()
    assert.deepEqual(snap, {
      kind: 'histogram',
      name: 'qtsmtpd_test_seconds',
      help: 'Time',
      labelNames: [],
      bounds: [0.1, 1, 10],
      series: [{ labels: {}, count: 5, sum: 33.65, buckets: [2, 3, 4] }],
    })
  })

  it('returns the metric already declared for the same declaration, so a reload keeps counting', () => {
    const m = memoryMetrics()
    const first = m.counter({ name: 'x_total', help: 'x', labelNames: ['p'] })
    first.labels({ p: 'a' }).inc()
    const again = m.counter({ name: 'x_total', help: 'x', labelNames: ['p'] })
    again.labels({ p: 'a' }).inc()
    assert.equal(m.value('x_total', { p: 'a' }), 2)
  })

  it('refuses a name taken by another declaration, and bad names', () => {
    const m = memoryMetrics()
    m.counter({ name: 'x_total', help: 'x', labelNames: ['p'] })
    assert.throws(
      () => m.gauge({ name: 'x_total', help: 'x', labelNames: ['p'] }),
      /metric x_total is already declared as a counter with labels \[p\]/,
    )
    assert.throws(() => m.counter({ name: 'x_total', help: 'x', labelNames: ['q'] }), /already declared/)
    assert.throws(() => m.counter({ name: 'bad-name', help: 'x' }), /metric name "bad-name" is not/)
    assert.throws(() => m.counter({ name: 'y', help: 'y', labelNames: ['__reserved'] }), /cannot be a label name/)
    assert.throws(() => m.histogram({ name: 'h', help: 'h', labelNames: ['le'] }), /cannot be a label name/)
    assert.throws(
      () => m.histogram({ name: 'h2', help: 'h', buckets: [1, 1] }),
      /buckets must be finite and increasing/,
    )
  })

  it('refuses wrong label sets and counters going down', () => {
    const m = memoryMetrics()
    const c = m.counter({ name: 'c_total', help: 'c', labelNames: ['a'] })
    assert.throws(() => c.labels({} as { a: string }), /label a needs a string value/)
    assert.throws(() => c.labels({ a: '1', b: '2' } as { a: string }), /has no label b/)
    assert.throws(() => c.labels({ a: '1' }).inc(-1), /a counter only goes up/)
  })

  it('keeps at most maxSeries label combinations per metric and warns once', () => {
    const warnings: string[] = []
    const m = memoryMetrics({ maxSeries: 2, onWarning: (w) => warnings.push(w) })
    const c = m.counter({ name: 'per_ip_total', help: 'x', labelNames: ['ip'] })
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) c.labels({ ip }).inc()
    assert.equal(m.snapshot()[0]?.series.length, 2)
    assert.equal(m.value('per_ip_total', { ip: '192.0.2.3' }), undefined)
    assert.deepEqual(warnings, ['metric per_ip_total: more than 2 label combinations; new ones are not recorded'])
  })
})
