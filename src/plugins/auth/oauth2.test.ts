/**
 * auth/oauth2 against a small token introspection endpoint (RFC 7662) on loopback: good,
 * inactive, expired, out-of-scope and someone else's tokens, with XOAUTH2 and OAUTHBEARER (RFC
 * 7628), raw and through msmtp (Debian) over STARTTLS; an endpoint that is down, slow or broken
 * answers 454, never 235 or 535.
 */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { explain, runClient, skipUnless } from '../../../test/interop/helpers.ts'
import { acceptAllRecipients, type SmtpTestClient, startTestServer, type TestServer } from '../../testing/index.ts'
import oauth2 from './oauth2.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const xoauth2 = (user: string, token: string) => b64(`user=${user}\x01auth=Bearer ${token}\x01\x01`)
const oauthbearer = (user: string, token: string) =>
  b64(`n,${user === '' ? '' : `a=${user}`},\x01host=mx.test\x01port=587\x01auth=Bearer ${token}\x01\x01`)
const now = () => Math.floor(Date.now() / 1000)

/** What the endpoint says of each token. */
const tokens: Record<string, object> = {
  'good.alice-token': { active: true, username: 'alice@example.com', scope: 'openid smtp', exp: now() + 3600 },
  inactive: { active: false },
  expired: { active: true, username: 'alice@example.com', scope: 'smtp', exp: now() - 10 },
  'no-scope': { active: true, username: 'alice@example.com', scope: 'openid' },
  'no-user': { active: true, scope: 'smtp' },
}

let endpoint: Server
let url: string
const seen: { authorization: string | undefined; body: string }[] = []

async function read(req: IncomingMessage): Promise<string> {
  let body = ''
  for await (const chunk of req) body += String(chunk)
  return body
}

before(async () => {
  endpoint = createServer(async (req, res) => {
    const body = await read(req)
    seen.push({ authorization: req.headers.authorization, body })
    const token = new URLSearchParams(body).get('token') ?? ''
    if (token === 'slow') return // never answers
    if (token === 'boom') {
      res.writeHead(500).end('oops')
      return
    }
    if (token === 'html') {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(tokens[token] ?? { active: false }))
  })
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/introspect`
})
after(() => {
  endpoint.closeAllConnections()
  endpoint.close()
})

async function withSession(run: (c: SmtpTestClient, srv: TestServer) => Promise<void>, endpointUrl = url) {
  const srv = await startTestServer({
    plugins: [
      acceptAllRecipients(),
      oauth2({ url: endpointUrl, client_id: 'mx', client_secret: 's3cr:t', scope: 'smtp', timeout: 0.5 }),
    ],
    policies: { authRequiresTls: false },
    limits: { authFailures: 20 },
  })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await run(c, srv)
    await c.quit()
  } finally {
    await srv.close()
  }
}

const ERROR_STATUS = `334 ${b64('{"status":"invalid_token","schemes":"bearer"}')}`

describe('auth/oauth2', () => {
  it('offers OAUTHBEARER and XOAUTH2; a good token logs in as its owner; the endpoint gets Basic and the token', () =>
    withSession(async (c, srv) => {
      assert.ok((await c.send('EHLO client.test', 250))?.lines.includes('AUTH OAUTHBEARER XOAUTH2'))
      seen.length = 0
      await c.send(
        `AUTH XOAUTH2 ${xoauth2('Alice@example.com', 'good.alice-token')}`,
        '235 2.7.0 Authentication successful',
      )
      assert.ok(srv.logs.some((e) => e.message === 'authenticated alice@example.com with XOAUTH2'))
      assert.deepEqual(seen, [
        {
          authorization: `Basic ${b64('mx:s3cr%3At')}`,
          body: 'token=good.alice-token&token_type_hint=access_token',
        },
      ])
    }))

  it('OAUTHBEARER with and without an authzid, initial response or after a 334', () =>
    withSession(async (c) => {
      await c.send(`AUTH OAUTHBEARER ${oauthbearer('', 'good.alice-token')}`, 235)
    }).then(() =>
      withSession(async (c) => {
        await c.send('AUTH OAUTHBEARER', '334 ')
        await c.send(oauthbearer('alice@example.com', 'good.alice-token'), 235)
      }),
    ))

  for (const [what, token, user] of [
    ['an inactive token', 'inactive', 'alice@example.com'],
    ['an expired token', 'expired', 'alice@example.com'],
    ['a token without the scope', 'no-scope', 'alice@example.com'],
    ['a token that names nobody', 'no-user', 'alice@example.com'],
    ["someone else's token", 'good.alice-token', 'bob@example.com'],
  ] as const)
    it(`${what}: the RFC 7628 error status, then 535 (both mechanisms)`, () =>
      withSession(async (c) => {
        await c.send(`AUTH XOAUTH2 ${xoauth2(user, token)}`, ERROR_STATUS)
        await c.send('', '535 5.7.8 Authentication credentials invalid')
        await c.send(`AUTH OAUTHBEARER ${oauthbearer(user, token)}`, ERROR_STATUS)
        await c.send('AQ==', 535)
      }))

  for (const [what, token, endpointUrl] of [
    ['an endpoint that does not answer in time', 'slow', undefined],
    ['an endpoint that fails (500)', 'boom', undefined],
    ['an answer that is not JSON', 'html', undefined],
    ['an endpoint that is down', 'good.alice-token', 'http://127.0.0.1:1/introspect'],
  ] as const)
    it(`${what}: 454 4.7.0, and the token is never logged`, () =>
      withSession(async (c, srv) => {
        await c.send(
          `AUTH XOAUTH2 ${xoauth2('alice@example.com', token)}`,
          '454 4.7.0 Temporary authentication failure',
        )
        assert.ok(srv.logs.some((e) => e.message.startsWith('token introspection unavailable: ')))
        assert.ok(!srv.logs.some((e) => e.message.includes('alice-token') || e.message.includes('s3cr')))
      }, endpointUrl))

  it('malformed messages are failures without a challenge', () =>
    withSession(async (c) => {
      await c.send(`AUTH XOAUTH2 ${b64('user=a\x01auth=Basic x\x01\x01')}`, 535)
      await c.send(`AUTH OAUTHBEARER ${b64('p=tls-exporter,,\x01auth=Bearer x\x01\x01')}`, 535)
      await c.send(`AUTH OAUTHBEARER ${b64('n,,\x01auth=Bearer x\x01')}`, 535)
    }))
})

const MSMTP = '/usr/bin/msmtp'
describe('auth/oauth2 with msmtp over STARTTLS', { skip: skipUnless(MSMTP, 'msmtp') }, () => {
  for (const mechanism of ['oauthbearer', 'xoauth2'])
    it(`msmtp auth ${mechanism}: the message is relayed; a bad token is refused`, async () => {
      const srv = await startTestServer({ plugins: [acceptAllRecipients(), oauth2({ url, scope: 'smtp' })], tls: true })
      const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-oauth-msmtp-'))
      try {
        const send = async (token: string) => {
          const rc = join(dir, `msmtprc-${token}`)
          const lines = [
            'account t',
            'host 127.0.0.1',
            `port ${srv.port}`,
            'tls on',
            'tls_starttls on',
            'tls_certcheck off',
          ]
          lines.push(`auth ${mechanism}`, 'user alice@example.com', `password ${token}`, 'from alice@example.com', '')
          await writeFile(rc, lines.join('\n'))
          await chmod(rc, 0o600)
          return runClient(MSMTP, ['-v', `--file=${rc}`, '-a', 't', 'someone@elsewhere.test'], {
            input: 'Subject: t\n\nhi\n',
          })
        }
        const good = await send('good.alice-token')
        assert.equal(good.code, 0, explain(good))
        assert.equal(srv.queued.length, 1)
        const bad = await send('inactive')
        assert.notEqual(bad.code, 0)
        assert.match(bad.stdout + bad.stderr, /535 5\.7\.8/)
        assert.equal(srv.queued.length, 1)
      } finally {
        await srv.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
})
