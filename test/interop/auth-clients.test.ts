/**
 * Real clients log in over STARTTLS against auth/auth_flat_file with every mechanism they have:
 * swaks (PLAIN, LOGIN, CRAM-MD5), Python smtplib (PLAIN, LOGIN, CRAM-MD5, and SCRAM-SHA-256 from
 * the RFC in test/interop/clients/smtp_auth_client.py), msmtp through GNU SASL (PLAIN, LOGIN,
 * CRAM-MD5, SCRAM-SHA-256) and gsasl (SCRAM-SHA-256, and SCRAM-SHA-256-PLUS bound to TLS 1.3 with
 * tls-exporter: GnuTLS's exporter against OpenSSL's). The stored SCRAM keys and the SHA-512-crypt
 * entry are made by Dovecot's `doveadm pw`, as an operator would. A wrong password fails in each.
 */
import assert from 'node:assert/strict'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import authFlatFile from '../../src/plugins/auth/auth-flat-file.ts'
import tlsPlugin from '../../src/plugins/tls.ts'
import { acceptAllRecipients, makeCertificate, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { clientsDir, explain, runClient, skipUnless } from './helpers.ts'

const SWAKS = '/usr/bin/swaks'
const PYTHON = '/usr/bin/python3'
const MSMTP = '/usr/bin/msmtp'
const GSASL = '/usr/bin/gsasl'
const DOVEADM = '/usr/bin/doveadm'

/** Clear text (every mechanism), stored SCRAM keys (PLAIN, LOGIN, SCRAM), SHA-512-crypt (PLAIN, LOGIN). */
const CLEAR = { user: 'clear@example.test', password: 'pa55 w0rd:with;odd"chars' }
const KEYS = { user: 'keys@example.test', password: 'correct horse battery staple' }
const CRYPT = { user: 'crypt@example.test', password: 'tr0ub4dor&3' }

async function doveadmPw(scheme: string, password: string): Promise<string> {
  const r = await runClient(DOVEADM, ['pw', '-s', scheme, '-p', password])
  assert.equal(r.code, 0, explain(r))
  return r.stdout.trim()
}

const skip =
  skipUnless(SWAKS, 'swaks') ||
  skipUnless(MSMTP, 'msmtp') ||
  skipUnless(GSASL, 'gsasl') ||
  skipUnless(DOVEADM, 'dovecot-core')

describe('AUTH with real clients over STARTTLS', { skip, timeout: 120_000 }, () => {
  let srv: TestServer
  let dir: string
  let caFile: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-auth-clients-'))
    const cert = await makeCertificate('localhost', dir)
    caFile = cert.certFile
    const keys = await doveadmPw('SCRAM-SHA-256', KEYS.password)
    assert.match(keys, /^\{SCRAM-SHA-256\}4096,/)
    const crypt = await doveadmPw('SHA512-CRYPT', CRYPT.password)
    srv = await startTestServer({
      plugins: [tlsPlugin({ cert: cert.certFile, key: cert.keyFile }), acceptAllRecipients(), authFlatFile()],
      config: { flat_auth_pw: [`${CLEAR.user}:${CLEAR.password}`, `${KEYS.user}:${keys}`, `${CRYPT.user}:${crypt}`] },
      timeouts: { authFailureDelayMs: 0 },
    })
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const loggedIn = (user: string, mechanism: string) =>
    srv.logs.some((e) => e.message === `authenticated ${user} with ${mechanism}`)

  describe('swaks', () => {
    const swaks = (mechanism: string, who: { user: string; password: string }) =>
      runClient(
        SWAKS,
        [
          ...['--server', `127.0.0.1:${srv.port}`, '--tls', '--helo', 'client.test', '--timeout', '20'],
          ...['--auth', mechanism, '--auth-user', who.user, '--auth-password', who.password],
          ...['--from', who.user, '--to', 'someone@elsewhere.test', '--quit-after', 'AUTH'],
        ],
        { timeoutMs: 30_000 },
      )
    for (const [mechanism, who] of [
      ['PLAIN', CLEAR],
      ['LOGIN', CLEAR],
      ['CRAM-MD5', CLEAR],
      ['PLAIN', KEYS],
      ['LOGIN', CRYPT],
    ] as const)
      test(`${mechanism} as ${who.user}`, async () => {
        const r = await swaks(mechanism, who)
        assert.equal(r.code, 0, explain(r))
        assert.match(r.stdout, /<~ {2}235 2\.7\.0 Authentication successful/)
        assert.ok(loggedIn(who.user, mechanism))
      })
    test('a wrong password: 535', async () => {
      const r = await swaks('CRAM-MD5', { ...CLEAR, password: 'wrong' })
      assert.notEqual(r.code, 0)
      assert.match(r.stdout, /<~\* 535 5\.7\.8 Authentication credentials invalid/)
    })
  })

  describe('Python smtplib', () => {
    const smtplib = async (mechanism: string, who: { user: string; password: string }) => {
      const r = await runClient(PYTHON, [
        join(clientsDir, 'smtp_auth_client.py'),
        ...['--port', String(srv.port), '--mechanism', mechanism, '--user', who.user, '--password', who.password],
      ])
      assert.equal(r.code, 0, explain(r))
      return JSON.parse(r.stdout) as { offered: string[]; auth: [number, string]; server_verified?: boolean }
    }
    for (const [mechanism, who] of [
      ['PLAIN', CLEAR],
      ['LOGIN', CLEAR],
      ['CRAM-MD5', CLEAR],
      ['SCRAM-SHA-256', CLEAR],
      ['SCRAM-SHA-256', KEYS],
    ] as const)
      test(`${mechanism} as ${who.user}`, async () => {
        const out = await smtplib(mechanism, who)
        assert.deepEqual(out.offered, ['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'])
        assert.deepEqual(out.auth, [235, '2.7.0 Authentication successful'])
        if (mechanism === 'SCRAM-SHA-256') assert.equal(out.server_verified, true)
        assert.ok(loggedIn(who.user, mechanism))
      })
    test('SCRAM-SHA-256 with a wrong password, and for a SHA-512-crypt entry: 535', async () => {
      assert.deepEqual((await smtplib('SCRAM-SHA-256', { ...KEYS, password: 'wrong' })).auth, [
        535,
        '5.7.8 Authentication credentials invalid',
      ])
      assert.equal((await smtplib('SCRAM-SHA-256', CRYPT)).auth[0], 535)
    })
  })

  describe('msmtp (GNU SASL)', () => {
    let n = 0
    const msmtp = async (mechanism: string, who: { user: string; password: string }) => {
      const rc = join(dir, `msmtprc-${++n}`)
      await writeFile(
        rc,
        [
          'account t',
          'host 127.0.0.1',
          `port ${srv.port}`,
          'tls on',
          'tls_starttls on',
          `tls_trust_file ${caFile}`,
          'tls_host_override localhost',
          `auth ${mechanism}`,
          `user ${who.user}`,
          `password ${who.password}`,
          `from ${who.user}`,
          '',
        ].join('\n'),
      )
      await chmod(rc, 0o600)
      return runClient(MSMTP, ['-v', `--file=${rc}`, '-a', 't', 'someone@elsewhere.test'], {
        input: 'Subject: msmtp\n\nhello\n',
      })
    }
    for (const [mechanism, who] of [
      ['plain', CLEAR],
      ['login', CLEAR],
      ['cram-md5', CLEAR],
      ['scram-sha-256', CLEAR],
      ['scram-sha-256', KEYS],
    ] as const)
      test(`${mechanism} as ${who.user}, and the message is relayed`, async () => {
        const before = srv.queued.length
        const r = await msmtp(mechanism, who)
        assert.equal(r.code, 0, explain(r))
        assert.match(r.stdout + r.stderr, /<-- 235 2\.7\.0 Authentication successful/)
        assert.ok(loggedIn(who.user, mechanism.toUpperCase()))
        assert.equal(srv.queued.length, before + 1)
        assert.deepEqual(srv.queued[before]?.to, ['someone@elsewhere.test'])
      })
    test('scram-sha-256 with a wrong password: 535, nothing relayed', async () => {
      const before = srv.queued.length
      const r = await msmtp('scram-sha-256', { ...KEYS, password: 'wrong' })
      assert.notEqual(r.code, 0)
      assert.match(r.stdout + r.stderr, /<-- 535 5\.7\.8 Authentication credentials invalid/)
      assert.equal(srv.queued.length, before)
    })
  })

  describe('gsasl', () => {
    const gsasl = (mechanism: string, who: { user: string; password: string }) =>
      runClient(
        GSASL,
        [
          ...['--smtp', '--starttls', '--x509-ca-file', caFile, '--mechanism', mechanism, '--verbose'],
          // Without -PLUS gsasl still computes channel bindings, then fails its own mechanism.
          ...(mechanism.endsWith('-PLUS') ? [] : ['--no-cb']),
          ...['-a', who.user, '-p', who.password, 'localhost', String(srv.port)],
        ],
        { input: '' },
      )
    for (const [mechanism, who] of [
      ['SCRAM-SHA-256-PLUS', KEYS],
      ['SCRAM-SHA-256-PLUS', CLEAR],
      ['SCRAM-SHA-256', KEYS],
    ] as const)
      test(`${mechanism} as ${who.user}: the client trusts the server's proof`, async () => {
        const r = await gsasl(mechanism, who)
        assert.equal(r.code, 0, explain(r))
        assert.match(r.stdout + r.stderr, /235 2\.7\.0 Authentication successful/)
        assert.match(r.stdout + r.stderr, /Client authentication finished \(server trusted\)/)
        assert.ok(loggedIn(who.user, mechanism))
      })
    test('SCRAM-SHA-256-PLUS with a wrong password fails', async () => {
      const r = await gsasl('SCRAM-SHA-256-PLUS', { ...KEYS, password: 'wrong' })
      assert.notEqual(r.code, 0)
      assert.match(r.stdout + r.stderr, /535 5\.7\.8/)
    })
  })
})
