import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RetiredCounts, renderExposition, sumSnapshots } from './exposition.ts'
import { memoryMetrics } from './memory.ts'

describe('renderExposition', () => {
  it('prints HELP, TYPE and each series; histograms as cumulative buckets, +Inf, sum and count', () => {
    const m = memoryMetrics()
    m.counter({ name: 'a_total', help: 'A "quoted" \\ help\nline', labelNames: ['k'] })
      .labels({ k: 'x"y\\z\n' })
      .inc(3)
    m.histogram({ name: 'h_seconds', help: 'H', buckets: [0.5, 1] }).observe(0.7)
    assert.equal(
      renderExposition(m.snapshot()),
      [
        '# HELP a_total A "quoted" \\\\ help\\nline',
        '# TYPE a_total counter',
        'a_total{k="x\\"y\\\\z\\n"} 3',
        '# HELP h_seconds H',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{le="0.5"} 0',
        'h_seconds_bucket{le="1"} 1',
        'h_seconds_bucket{le="+Inf"} 1',
        'h_seconds_sum 0.7',
        'h_seconds_count 1',
        '',
      ].join('\n'),
    )
  })
})

describe('sumSnapshots', () => {
  it('adds counters, gauges and histograms of several processes series by series', () => {
    const one = memoryMetrics()
    const two = memoryMetrics()
    for (const [m, n] of [
      [one, 1],
      [two, 2],
    ] as const) {
      m.counter({ name: 'c_total', help: 'c', labelNames: ['k'] })
        .labels({ k: 'a' })
        .inc(n)
      m.gauge({ name: 'g', help: 'g' }).set(n * 10)
      m.histogram({ name: 'h', help: 'h', buckets: [1] }).observe(n)
    }
    two
      .counter({ name: 'c_total', help: 'c', labelNames: ['k'] })
      .labels({ k: 'b' })
      .inc(5)
    const sum = sumSnapshots([one.snapshot(), two.snapshot()])
    assert.deepEqual(sum, [
      {
        kind: 'counter',
        name: 'c_total',
        help: 'c',
        labelNames: ['k'],
        series: [
          { labels: { k: 'a' }, value: 3 },
          { labels: { k: 'b' }, value: 5 },
        ],
      },
      { kind: 'gauge', name: 'g', help: 'g', labelNames: [], series: [{ labels: {}, value: 30 }] },
      {
        kind: 'histogram',
        name: 'h',
        help: 'h',
        labelNames: [],
        bounds: [1],
        series: [{ labels: {}, count: 2, sum: 3, buckets: [1] }],
      },
    ])
  })

  it('keeps the first declaration of a family two processes declare differently', () => {
    const one = memoryMetrics()
    const two = memoryMetrics()
    one
      .counter({ name: 'x_total', help: 'x', labelNames: ['a'] })
      .labels({ a: '1' })
      .inc()
    two
      .counter({ name: 'x_total', help: 'x', labelNames: ['b'] })
      .labels({ b: '1' })
      .inc()
    assert.deepEqual(sumSnapshots([one.snapshot(), two.snapshot()])[0]?.series, [{ labels: { a: '1' }, value: 1 }])
  })
})

describe('RetiredCounts', () => {
  it('keeps the counters and histograms of exited processes, not their gauges', () => {
    const m = memoryMetrics()
    m.counter({ name: 'c_total', help: 'c' }).inc(4)
    m.gauge({ name: 'open', help: 'o' }).set(7)
    const retired = new RetiredCounts()
    retired.retire(m.snapshot())
    retired.retire(m.snapshot())
    assert.deepEqual(
      retired.snapshot.map((f) => [f.name, f.series]),
      [['c_total', [{ labels: {}, value: 8 }]]],
    )
  })
})
