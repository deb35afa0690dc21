import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../../testing/index.ts'
import noopCounter from './noop-counter.ts'

const STOP = '500 5.7.0 Stop wasting my time, too many consecutive NOOPs\r\n'

const withServer = (options: Parameters<typeof noopCounter>[0], fn: (srv: TestServer) => Promise<void>) =>
  withTestServer({ plugins: [noopCounter(options), acceptAllRecipients()] }, fn)

describe('connect/noop-counter', () => {
  it('default 3: the third consecutive NOOP disconnects', () =>
    withServer({}, async (srv) => {
      const c = await openSession(srv)
      await c.send('NOOP', 250)
      await c.send('NOOP', 250)
      assert.equal((await c.send('NOOP', 500))?.raw, STOP)
      await c.closed()
    }))

  const resetting = [
    ['EHLO', ['EHLO client.example'], 250],
    ['HELO', ['HELO client.example'], 250],
    ['MAIL', ['MAIL FROM:<>'], 250],
    ['RCPT', ['MAIL FROM:<>', 'RCPT TO:<u@local.test>'], 250],
    ['DATA', ['MAIL FROM:<>', 'RCPT TO:<u@local.test>', 'DATA', 'Subject: x\r\n\r\n.'], 250],
    ['RSET in a transaction', ['MAIL FROM:<>', 'RSET'], 250],
    ['VRFY', ['VRFY someone'], 252],
    ['HELP', ['HELP'], 214],
  ] as const
  for (const [name, lines, last] of resetting)
    it(`${name} resets the count`, () =>
      withServer({}, async (srv) => {
        const c = await openSession(srv)
        await c.send('NOOP', 250)
        await c.send('NOOP', 250)
        for (const [i, line] of lines.entries()) await c.send(line, i === lines.length - 1 ? last : /^[23]/)
        await c.send('NOOP', 250)
        await c.send('NOOP', 250)
        await c.send('NOOP', STOP)
        await c.closed()
      }))

  it('`limit` option (and qpsmtpd positional N)', async () => {
    await withServer({ limit: 1 }, async (srv) => {
      const c = await openSession(srv)
      await c.send('NOOP', STOP)
      await c.closed()
    })
    await withServer({ limit: '5' }, async (srv) => {
      const c = await openSession(srv)
      for (let i = 0; i < 4; i++) await c.send('NOOP', 250)
      await c.send('NOOP', STOP)
      await c.closed()
    })
  })

  it('counts per connection', () =>
    withServer({ limit: 2 }, async (srv) => {
      const a = await openSession(srv)
      const b = await openSession(srv)
      await a.send('NOOP', 250)
      await b.send('NOOP', 250)
      await a.send('NOOP', STOP)
      await b.send('MAIL FROM:<>', 250)
      await b.send('NOOP', 250)
      await b.quit()
    }))
})
