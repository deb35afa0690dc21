/**
 * auth/dovecot against Debian's Dovecot auth service on loopback (test/peers/dovecot-auth.ts):
 * the mechanisms it offers, PLAIN and LOGIN checked there, CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256
 * run by Dovecot over the core's channel (its server-final message relayed), over its Unix socket
 * and TCP; msmtp and gsasl log in over STARTTLS; Dovecot down answers 454.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { explain, runClient, skipUnless } from '../../../test/interop/helpers.ts'
import { type DovecotAuth, startDovecotAuth } from '../../../test/peers/dovecot-auth.ts'
import {
  acceptAllRecipients,
  makeCertificate,
  type SmtpTestClient,
  scramLogin,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../testing/index.ts'
import tlsPlugin from '../tls.ts'
import authFlatFile from './auth-flat-file.ts'
import dovecot from './dovecot.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const DOVEADM = '/usr/bin/doveadm'

// Dovecot delays every request from an address that failed lately (its auth penalty: 2 s, then
// 4, 8, 15, for 29 s). The tests that fail a login use an instance of their own, so the others
// are not slowed down; timeouts leave room for the delay.
let auth: DovecotAuth
let penalized: DovecotAuth
before(async () => {
  const scram = await runClient(DOVEADM, ['pw', '-s', 'SCRAM-SHA-256', '-p', 'b0b-pass'])
  assert.equal(scram.code, 0, explain(scram))
  const users = { alice: '{PLAIN}al1ce pass', bob: scram.stdout.trim() }
  auth = await startDovecotAuth(users)
  penalized = await startDovecotAuth(users)
})
after(async () => {
  await auth?.stop()
  await penalized?.stop()
})

async function withSession(
  run: (c: SmtpTestClient, srv: TestServer) => Promise<void>,
  opts: Partial<TestServerOptions> & { socket?: string } = {},
): Promise<void> {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients(), dovecot({ socket: opts.socket ?? auth.socket, timeout: 20 })],
    policies: { authRequiresTls: false },
    limits: { authFailures: 20 },
    ...opts,
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

describe('auth/dovecot', { skip: skipUnless(DOVEADM, 'dovecot-core') }, () => {
  it("offers Dovecot's mechanisms; PLAIN and LOGIN are checked there", () =>
    withSession(async (c, srv) => {
      const ehlo = await c.send('EHLO client.test', 250)
      assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256'), ehlo?.raw)
      await c.send('AUTH LOGIN', 334)
      await c.send(b64('alice'), 334)
      await c.send(b64('al1ce pass'), '235 2.7.0 Authentication successful')
      assert.ok(srv.logs.some((e) => e.message === 'authenticated alice with LOGIN'))
    }))

  it("CRAM-MD5 with Dovecot's challenge", () =>
    withSession(async (c) => {
      const challenge = Buffer.from((await c.send('AUTH CRAM-MD5', 334))?.text ?? '', 'base64').toString()
      assert.match(challenge, /^<\d+\.\d+@/)
      const digest = createHmac('md5', 'al1ce pass').update(challenge).digest('hex')
      await c.send(b64(`alice ${digest}`), 235)
    }))

  it("SCRAM-SHA-256 run by Dovecot with its stored keys: the client checks Dovecot's proof", () =>
    withSession(async (c) => {
      const right = await scramLogin(c, { user: 'bob', password: 'b0b-pass', initialResponse: false })
      assert.equal(right.reply.raw, '235 2.7.0 Authentication successful\r\n')
      assert.equal(right.serverVerified, true)
    }))

  it('a wrong password with PLAIN and with SCRAM: 535 (Dovecot delays the second)', () =>
    withSession(
      async (c) => {
        await c.send(`AUTH PLAIN ${b64('\0alice\0wrong')}`, '535 5.7.8 Authentication credentials invalid')
        const wrong = await scramLogin(c, { user: 'bob', password: 'nope' })
        assert.equal(wrong.reply.code, 535)
      },
      { socket: penalized.socket },
    ))

  it('over TCP too; a client that cancels mid-exchange gets 501 and the next AUTH works', () =>
    withSession(
      async (c) => {
        await c.send('AUTH CRAM-MD5', 334)
        await c.send('*', 501)
        await c.send(`AUTH PLAIN ${b64('\0alice\0al1ce pass')}`, 235)
      },
      { socket: `127.0.0.1:${auth.port}` },
    ))

  it('Dovecot not there: a warning at start, no AUTH offered; a PLAIN password backend before it still works', async () => {
    const srv = await startTestServer({
      plugins: [acceptAllRecipients(), authFlatFile(), dovecot({ socket: '127.0.0.1:1', timeout: 0.5 })],
      config: { flat_auth_pw: ['carol@example.com:c4rol'] },
      policies: { authRequiresTls: false },
    })
    try {
      assert.ok(srv.logs.some((e) => /^Dovecot auth at 127\.0\.0\.1:1 unavailable \(/.test(e.message)))
      const c = await srv.connect()
      await c.expect(220)
      const ehlo = await c.send('EHLO client.test', 250)
      assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256'), ehlo?.raw)
      await c.send(`AUTH PLAIN ${b64('\0carol@example.com\0c4rol')}`, 235)
      await c.quit()
      const d = await srv.connect()
      await d.expect(220)
      await d.send('EHLO client.test', 250)
      // A user the flat file does not know goes on to Dovecot, which cannot answer: 454, not 535.
      await d.send(`AUTH PLAIN ${b64('\0alice\0al1ce pass')}`, '454 4.7.0 Temporary authentication failure')
      await d.quit()
    } finally {
      await srv.close()
    }
  })
})

const MSMTP = '/usr/bin/msmtp'
const GSASL = '/usr/bin/gsasl'
describe('auth/dovecot with real clients over STARTTLS', {
  skip: skipUnless(MSMTP, 'msmtp') || skipUnless(GSASL, 'gsasl'),
}, () => {
  let srv: TestServer
  let dir: string
  let caFile: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dovecot-clients-'))
    const cert = await makeCertificate('localhost', dir)
    caFile = cert.certFile
    srv = await startTestServer({
      plugins: [
        tlsPlugin({ cert: cert.certFile, key: cert.keyFile }),
        acceptAllRecipients(),
        dovecot({ socket: auth.socket }),
      ],
    })
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  for (const [mechanism, user, password] of [
    ['scram-sha-256', 'bob', 'b0b-pass'],
    ['cram-md5', 'alice', 'al1ce pass'],
    ['plain', 'alice', 'al1ce pass'],
  ] as const)
    it(`msmtp ${mechanism} as ${user}: the message is relayed`, async () => {
      const rc = join(dir, `msmtprc-${mechanism}`)
      const lines = [
        'account t',
        'host 127.0.0.1',
        `port ${srv.port}`,
        'tls on',
        'tls_starttls on',
        'tls_certcheck off',
      ]
      lines.push(`auth ${mechanism}`, `user ${user}`, `password ${password}`, 'from a@example.com', '')
      await writeFile(rc, lines.join('\n'))
      await chmod(rc, 0o600)
      const before = srv.queued.length
      const r = await runClient(MSMTP, ['-v', `--file=${rc}`, '-a', 't', 'someone@elsewhere.test'], {
        input: 'Subject: t\n\nhi\n',
      })
      assert.equal(r.code, 0, explain(r))
      assert.equal(srv.queued.length, before + 1)
    })

  it('gsasl SCRAM-SHA-1 (a mechanism only Dovecot has here)', async () => {
    const r = await runClient(
      GSASL,
      [
        ...['--smtp', '--starttls', '--x509-ca-file', caFile, '--no-cb', '--mechanism', 'SCRAM-SHA-1', '--verbose'],
        ...['-a', 'alice', '-p', 'al1ce pass', 'localhost', String(srv.port)],
      ],
      { input: '' },
    )
    assert.equal(r.code, 0, explain(r))
    assert.match(r.stdout + r.stderr, /Client authentication finished \(server trusted\)/)
  })
})
