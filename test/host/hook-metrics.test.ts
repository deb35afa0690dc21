/**
 * The runner records every hook call's latency and outcome per plugin and hook, through a real
 * session: what an operator's dashboard will show.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept, pass, reject } from '../../src/host/verdict.ts'
import { memoryMetrics } from '../../src/metrics/index.ts'
import { startTestServer } from '../../src/testing/index.ts'

const checker = definePlugin({
  name: 'test/checker',
  options: {},
  timeoutMs: 50,
  setup: () => ({
    hooks: {
      helo: async () => pass(),
      mail: async (_ctx, from) => (from.address?.local === 'spammer' ? reject('no') : pass()),
      rcpt: async (ctx, to) => {
        if (to.address.local === 'slow') await new Promise((r) => ctx.signal.addEventListener('abort', r))
        if (to.address.local === 'broken') throw new Error('bug')
        return accept()
      },
      disconnect: async () => {},
    },
  }),
})

describe('hook metrics', () => {
  it('counts verdicts, errors and timeouts per plugin and hook, and times every call', async () => {
    const metrics = memoryMetrics()
    const srv = await startTestServer({ plugins: [checker()], metrics })
    {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('HELO client.test', 250)
      await c.send('MAIL FROM:<spammer@sender.test>', 550)
      await c.send('MAIL FROM:<s@sender.test>', 250)
      await c.send('RCPT TO:<a@local.test>', 250)
      await c.send('RCPT TO:<b@local.test>', 250)
      await c.send('RCPT TO:<broken@local.test>', 451)
      await c.send('RCPT TO:<slow@local.test>', 451)
      await c.send('QUIT', 221)
      await c.closed()
      // After close: the disconnect hooks have run.
      await srv.close()
      const count = (hook: string, verdict: string) =>
        metrics.value('qtsmtpd_hook_verdicts_total', { plugin: 'test/checker', hook, verdict })
      assert.equal(count('helo', 'pass'), 1)
      assert.equal(count('mail', 'reject'), 1)
      assert.equal(count('mail', 'pass'), 1)
      assert.equal(count('rcpt', 'accept'), 2)
      assert.equal(count('rcpt', 'error'), 1)
      assert.equal(count('rcpt', 'timeout'), 1)
      assert.equal(count('disconnect', 'ok'), 1)
      // Outcomes that never happened have no series.
      assert.equal(count('rcpt', 'reject'), undefined)
      const calls = (hook: string) => metrics.value('qtsmtpd_hook_duration_seconds', { plugin: 'test/checker', hook })
      assert.deepEqual(['helo', 'mail', 'rcpt', 'disconnect'].map(calls), [1, 2, 4, 1])
      const rcpt = metrics
        .snapshot()
        .find((m) => m.name === 'qtsmtpd_hook_duration_seconds')
        ?.series.find((s) => s.labels.hook === 'rcpt')
      // The timed-out call took its 50 ms deadline (timers may fire a millisecond early).
      assert.ok(rcpt !== undefined && 'sum' in rcpt && rcpt.sum >= 0.045, JSON.stringify(rcpt))
    }
  })

  it('is on srv.metrics by default', async () => {
    const srv = await startTestServer({ plugins: [checker()] })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('HELO client.test', 250)
      assert.equal(
        srv.metrics.value('qtsmtpd_hook_verdicts_total', { plugin: 'test/checker', hook: 'helo', verdict: 'pass' }),
        1,
      )
    } finally {
      await srv.close()
    }
  })
})
