/**
 * The Authentication-Results header through real sessions: results from several hooks and the
 * connection in one header below our Received line, forgeries of our authserv-id removed,
 * auth=pass for an authenticated session, and a result added too late failing closed.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { definePlugin } from '../host/define-plugin.ts'
import { accept, pass } from '../host/verdict.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../testing/index.ts'
import { addAuthResult, authResultsFor, WrittenAuthResults } from './auth-results.ts'

const seen: (string | undefined)[] = []
const reporter = definePlugin({
  name: 'test/reporter',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        addAuthResult(ctx, {
          method: 'iprev',
          result: 'pass',
          properties: [{ type: 'policy', name: 'iprev', value: ctx.connection.remote.ip }],
        })
        return pass()
      },
      mail: (ctx, from) => {
        addAuthResult(ctx, {
          method: 'spf',
          result: 'softfail',
          properties: [{ type: 'smtp', name: 'mailfrom', value: from.address?.domain ?? '' }],
        })
        return pass()
      },
      dataPostHeaders: (ctx) => {
        const spf = authResultsFor(ctx, 'spf')[0]
        addAuthResult(ctx, {
          method: 'dmarc',
          result: 'fail',
          comment: `spf was ${spf?.result}`,
          properties: [{ type: 'header', name: 'from', value: 'example.org' }],
        })
      },
      dataPost: (ctx) => {
        seen.push(ctx.get(WrittenAuthResults))
        return pass()
      },
    },
  }),
})
const late = definePlugin({
  name: 'test/late',
  options: {},
  setup: () => ({
    hooks: {
      dataPost: (ctx) => {
        addAuthResult(ctx, { method: 'spf', result: 'pass', properties: [] })
        return pass()
      },
    },
  }),
})
const authOk = definePlugin({ name: 'test/auth', options: {}, setup: () => ({ hooks: { authPlain: () => accept() } }) })

async function send(srv: TestServer, message: string, auth = false): Promise<void> {
  const c = await openSession(srv)
  if (auth) await c.send(`AUTH PLAIN ${Buffer.from('\0jo doe\0pw').toString('base64')}`, 235)
  await c.send('MAIL FROM:<a@example.org>', 250)
  await c.send('RCPT TO:<b@example.net>', 250)
  await c.send('DATA', 354)
  await c.send(`${message}.`, 250)
  await c.quit()
}

const FORGED =
  'Authentication-Results: mx.test; dmarc=pass header.from=example.org\r\n' +
  'Authentication-Results: upstream.example; spf=pass smtp.mailfrom=example.org\r\n' +
  'Subject: hi\r\n\r\nbody\r\n'

describe('Authentication-Results header', () => {
  it('one header from every result, below Received; forgeries of our authserv-id removed', () =>
    withTestServer({ plugins: [reporter(), acceptAllRecipients()] }, async (srv) => {
      seen.length = 0
      await send(srv, FORGED)
      const text = srv.queued[0]?.text ?? ''
      const value =
        'mx.test; iprev=pass policy.iprev=127.0.0.1; spf=softfail smtp.mailfrom=example.org; ' +
        'dmarc=fail (spf was softfail) header.from=example.org'
      const afterReceived = text.slice(text.indexOf('\r\nAuthentication-Results:') + 2)
      assert.match(text, /^Received: from client\.example /)
      assert.equal(
        afterReceived,
        `Authentication-Results: ${value.replaceAll('; ', ';\r\n\t')}\r\n` +
          'Authentication-Results: upstream.example; spf=pass smtp.mailfrom=example.org\r\n' +
          'Subject: hi\r\n\r\nbody\r\n',
      )
      assert.deepEqual(seen, [value])
    }))

  it('an authenticated session gets auth=pass with its user and mechanism', () =>
    withTestServer(
      { plugins: [authOk(), acceptAllRecipients()], policies: { authRequiresTls: false } },
      async (srv) => {
        await send(srv, 'Subject: hi\r\n\r\nbody\r\n', true)
        assert.match(
          srv.queued[0]?.text ?? '',
          /\r\nAuthentication-Results: mx\.test;\r\n\tauth=pass \(PLAIN\) smtp\.auth="jo doe"\r\nSubject: hi\r\n/,
        )
      },
    ))

  it('no result, no header; a forged one is still removed', () =>
    withTestServer({ plugins: [acceptAllRecipients()] }, async (srv) => {
      await send(srv, FORGED)
      const text = srv.queued[0]?.text ?? ''
      assert.equal(text.match(/^Authentication-Results:/gim)?.length, 1)
      assert.match(text, /\r\nAuthentication-Results: upstream\.example; spf=pass/)
    }))

  it('a result added after the header was written fails closed: 451, nothing queued', () =>
    withTestServer({ plugins: [late(), acceptAllRecipients()] }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<a@example.org>', 250)
      await c.send('RCPT TO:<b@example.net>', 250)
      await c.send('DATA', 354)
      assert.equal(
        (await c.send('Subject: hi\r\n\r\nbody\r\n.', 451))?.raw,
        '451 4.3.0 Temporary failure, please try again later\r\n',
      )
      assert.equal(srv.queued.length, 0)
      assert.ok(srv.logs.some((e) => /added after the Authentication-Results header was written/.test(e.message)))
    }))
})
