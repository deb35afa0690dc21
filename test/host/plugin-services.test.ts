/**
 * A plugin that uses DNS, the store and the clock, through a real session with the fakes a
 * plugin author's tests use: scripted DNS, the test server's memory store, a clock moved by hand.
 * Nothing leaves the machine and nobody waits five minutes.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { accept, defer, definePlugin, pass, type RcptHook, reject } from '../../src/index.ts'
import { fakeClock, openSession, scriptedDns, startTestServer } from '../../src/testing/index.ts'

/** A small greylister: the sender's domain must have MX records, and a new triplet waits 5 minutes. */
const greylist = definePlugin({
  name: 'test/greylist',
  options: {},
  requires: ['dns', 'store'],
  setup({ dns, store, clock, metrics }) {
    const deferred = metrics.counter({ name: 'qtsmtpd_test_greylist_deferred_total', help: 'Deferred triplets' })
    const rcpt: RcptHook = async (ctx, to) => {
      const domain = ctx.transaction.mailFrom.address?.domain
      if (domain === undefined) return pass()
      const mx = await dns.query(domain, 'MX', { signal: ctx.signal })
      if (mx.kind === 'nxdomain' || mx.kind === 'nodata') return reject(`Sender domain ${domain} takes no mail`)
      if (mx.kind !== 'records')
        return defer({ code: 451, enhanced: '4.4.3', text: 'DNS lookup failed, try again later' })
      const triplet = `${ctx.connection.remote.ip}/${domain}/${to.address.local}@${to.address.domain}`
      const first = await store.get(triplet)
      if (first === undefined) await store.set(triplet, String(clock.now()), { ttlMs: 86_400_000 })
      if (first === undefined || clock.now() - Number(first) < 300_000) {
        deferred.inc()
        return defer('Greylisted, try again later')
      }
      return accept()
    }
    return { hooks: { rcpt } }
  },
})

describe('a plugin using dns, store and clock', () => {
  it('runs against the fakes through a real session', async () => {
    const clock = fakeClock()
    const dns = scriptedDns({
      'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 10 }] },
      'broken.test': 'servfail',
    })
    const srv = await startTestServer({ plugins: [greylist()], dns, clock })
    try {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<a@sender.test>', 250)
      assert.equal((await c.send('RCPT TO:<u@local.test>', 450))?.raw, '450 4.7.1 Greylisted, try again later\r\n')
      await clock.advance(299_000)
      await c.send('RCPT TO:<u@local.test>', 450)
      await clock.advance(1_000)
      assert.equal((await c.send('RCPT TO:<u@local.test>', 250))?.raw, '250 2.1.5 Recipient OK\r\n')
      await c.send('RSET', 250)
      await c.send('MAIL FROM:<a@nowhere.test>', 250)
      assert.equal(
        (await c.send('RCPT TO:<u@local.test>', 550))?.raw,
        '550 5.7.1 Sender domain nowhere.test takes no mail\r\n',
      )
      await c.send('RSET', 250)
      await c.send('MAIL FROM:<a@broken.test>', 250)
      assert.equal(
        (await c.send('RCPT TO:<u@local.test>', 451))?.raw,
        '451 4.4.3 DNS lookup failed, try again later\r\n',
      )
      await c.quit()
      // What the plugin stored, under its own scope, and with the fake clock's time.
      const scoped = srv.store.scope('test/greylist')
      assert.equal(await scoped.get('127.0.0.1/sender.test/u@local.test'), String(clock.now() - 300_000))
      assert.equal(await srv.store.get('127.0.0.1/sender.test/u@local.test'), undefined)
      assert.deepEqual(
        dns.calls.map((q) => `${q.name} ${q.type}`),
        ['sender.test MX', 'sender.test MX', 'sender.test MX', 'nowhere.test MX', 'broken.test MX'],
      )
      assert.equal(srv.metrics.value('qtsmtpd_test_greylist_deferred_total'), 2)
    } finally {
      await srv.close()
    }
  })

  it('forgets a triplet after its TTL, in fake time', async () => {
    const clock = fakeClock()
    const dns = scriptedDns({ 'sender.test': { MX: [{ exchange: 'mx.sender.test', priority: 10 }] } })
    const srv = await startTestServer({ plugins: [greylist()], dns, clock })
    try {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<a@sender.test>', 250)
      await c.send('RCPT TO:<u@local.test>', 450)
      // A day later the triplet has expired: the sender starts over.
      await clock.advance(86_400_000)
      await c.send('RCPT TO:<u@local.test>', 450)
      await c.quit()
    } finally {
      await srv.close()
    }
  })
})
