import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { rejectAs, rejectOptions } from '../host/conventions.ts'
import { definePlugin } from '../host/define-plugin.ts'
import { accept, pass } from '../host/verdict.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../testing/index.ts'
import naughty from './naughty.ts'

/** A check that fails every connection from 127.0.0.1, honouring `reject naughty`. */
const marker = definePlugin({
  name: 'test/listed',
  options: { ...rejectOptions },
  setup: ({ options }) => ({
    hooks: {
      connect: (ctx) =>
        ctx.connection.remote.ip.endsWith('127.0.0.1') ? rejectAs(ctx, options, 'listed in test.bl') : pass(),
    },
  }),
})
const authOk = definePlugin({ name: 'test/auth', options: {}, setup: () => ({ hooks: { authPlain: () => accept() } }) })

const TEXT = '(test/listed) listed in test.bl'

function withServer(
  opts: { naughty?: Parameters<typeof naughty>[0]; markNaughty?: boolean; acceptFirst?: boolean },
  fn: (srv: TestServer) => Promise<void>,
) {
  return withTestServer(
    {
      plugins: [
        marker({ reject: opts.markNaughty === false ? '0' : 'naughty' }),
        ...(opts.acceptFirst ? [acceptAllRecipients()] : []),
        naughty(opts.naughty),
        ...(opts.acceptFirst ? [] : [acceptAllRecipients()]),
        authOk(),
      ],
      policies: { authRequiresTls: false },
    },
    fn,
  )
}

describe('naughty', () => {
  it('default: refused at RCPT with the recorded reason, and disconnected', () =>
    withServer({}, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      assert.equal((await c.send('RCPT TO:<u@local.test>', 550))?.raw, `550 5.7.1 ${TEXT}\r\n`)
      await c.closed()
      assert.equal(srv.queued.length, 0)
    }))

  it('reject connect: refused instead of the greeting', () =>
    withServer({ naughty: { reject: 'connect' } }, async (srv) => {
      const c = await srv.connect()
      assert.equal((await c.expect(554)).raw, `554 5.7.1 ${TEXT}\r\n`)
      await c.closed()
    }))

  it('reject connect reject_type temp: 421 instead of the greeting', () =>
    withServer({ naughty: { reject: 'connect', reject_type: 'temp' } }, async (srv) => {
      const c = await srv.connect()
      assert.equal((await c.expect(421)).raw, `421 4.7.0 ${TEXT}\r\n`)
      await c.closed()
    }))

  it('reject mail reject_type temp: 450 and the session goes on', () =>
    withServer({ naughty: { reject: 'mail', reject_type: 'temp' } }, async (srv) => {
      const c = await openSession(srv)
      assert.equal((await c.send('MAIL FROM:<s@client.example>', 450))?.raw, `450 4.7.1 ${TEXT}\r\n`)
      await c.send('NOOP', 250)
      await c.quit()
    }))

  it('reject data reject_type perm: 554 at DATA without a disconnect', () =>
    withServer({ naughty: { reject: 'data', reject_type: 'perm' } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      assert.equal((await c.send('DATA', 554))?.raw, `554 5.7.1 ${TEXT}\r\n`)
      await c.send('NOOP', 250)
      await c.quit()
    }))

  it('reject data_post reject_type temp_disconnect: 421 after the message, nothing queued', () =>
    withServer({ naughty: { reject: 'data_post', reject_type: 'temp_disconnect' } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      assert.equal((await c.send('Subject: x\r\n\r\nhi\r\n.', 421))?.raw, `421 4.7.1 ${TEXT}\r\n`)
      await c.closed()
      assert.equal(srv.queued.length, 0)
    }))

  // qpsmtpd's get_reject_type: hard is DENY and soft is DENYSOFT; only disconnect closes.
  it('reject_type hard: 550 and the session goes on, as qpsmtpd', () =>
    withServer({ naughty: { reject: 'rcpt', reject_type: 'hard' } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      assert.equal((await c.send('RCPT TO:<u@local.test>', 550))?.raw, `550 5.7.1 ${TEXT}\r\n`)
      await c.send('NOOP', 250)
      await c.quit()
    }))

  it('reject_type soft: 450 and the session goes on, as qpsmtpd', () =>
    withServer({ naughty: { reject: 'rcpt', reject_type: 'soft' } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      assert.equal((await c.send('RCPT TO:<u@local.test>', 450))?.raw, `450 4.7.1 ${TEXT}\r\n`)
      await c.send('NOOP', 250)
      await c.quit()
    }))

  it('falls back to data_post when an earlier plugin accepted the recipient', () =>
    withServer({ acceptFirst: true }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      assert.equal((await c.send('Subject: x\r\n\r\nhi\r\n.', 554))?.raw, `554 5.7.1 ${TEXT}\r\n`)
      await c.closed()
      assert.equal(srv.queued.length, 0)
    }))

  it('does nothing while the note is empty', () =>
    withServer({ markNaughty: false }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      await c.send('Subject: x\r\n\r\nhi\r\n.', 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
    }))

  it('a successful AUTH clears the note', () =>
    withServer({}, async (srv) => {
      const c = await openSession(srv)
      await c.send(`AUTH PLAIN ${Buffer.from('\0user\0secret').toString('base64')}`, 235)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      await c.send('Subject: x\r\n\r\nhi\r\n.', 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
    }))

  it('refuses an unknown phase at start-up', () => {
    assert.throws(
      () => naughty({ reject: 'queue' }),
      /option "reject": expected one of connect, mail, rcpt, data, data_post/,
    )
  })
})
