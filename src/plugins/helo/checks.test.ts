import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, ask, sendMail } from '../test-support.ts'
import heloChecks from './checks.ts'

const BADHELO = ['yahoo.com', 'aol.com', '^mail\\d+\\.spam\\.example$', '!^[a-z0-9.:\\[\\]-]+$']

describe('helo (policy lenient) and check_spamhelo', () => {
  const cases = [
    { helo: 'EHLO Yahoo.com', want: '550 5.7.1 I do not believe you are Yahoo.com.\r\n' },
    { helo: 'HELO mail42.spam.example', want: '550 5.7.1 Your HELO hostname is not allowed\r\n' },
    // `!pattern`: a name the pattern does not match is refused.
    { helo: 'EHLO work_station', want: '550 5.7.1 Your HELO hostname is not allowed\r\n' },
    { helo: 'EHLO [127.0.0.2]', want: '550 5.7.1 Forged IPs not accepted here\r\n' },
    { helo: 'EHLO [IPv6:::1]', want: '550 5.7.1 Forged IPs not accepted here\r\n' },
    { helo: 'EHLO 192.0.2.1', want: '550 5.7.1 Plain IP is invalid HELO hostname (RFC 2821)\r\n' },
    { helo: 'EHLO 2001:db8::1', want: '550 5.7.1 Plain IP is invalid HELO hostname (RFC 2821)\r\n' },
  ]
  it('refuses each failing name with its reply, and closes', () =>
    withTestServer({ plugins: [heloChecks()], config: { badhelo: BADHELO } }, async (srv) => {
      for (const t of cases) {
        const c = await srv.connect()
        await c.expect(220)
        assert.equal(await ask(c, t.helo), t.want, t.helo)
        await c.closed()
      }
    }))

  it('lets good names through: a FQDN, localhost from loopback, our own client address as a literal', () =>
    withTestServer({ plugins: [heloChecks()], config: { badhelo: BADHELO } }, async (srv) => {
      for (const helo of [
        'EHLO mail.example.org',
        'HELO localhost',
        'EHLO [127.0.0.1]',
        'EHLO mail1.spam.example.org',
      ]) {
        const c = await srv.connect()
        await c.expect(220)
        assert.match(await ask(c, helo), /^250[ -]/, helo)
        await c.quit()
      }
    }))

  it('reject_type temp answers 450 and the session goes on; every message gets X-HELO', () =>
    withTestServer(
      { plugins: [heloChecks({ reject_type: 'temp' }), acceptRcpt()], config: { badhelo: BADHELO } },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        assert.equal(await ask(c, 'EHLO aol.com'), '450 4.7.1 I do not believe you are aol.com.\r\n')
        await c.send('EHLO mx.example.org', 250)
        const r = await sendMail(c, 's@example.org', ['u@local.test'], 'X-HELO: forged\r\nSubject: hi\r\n\r\nbody\r\n')
        assert.equal(r.code, 250)
        await c.quit()
        const stored = srv.queued[0]?.data.toString() ?? ''
        assert.match(stored, /\r\nSubject: hi\r\nX-HELO: mx\.example\.org\r\n\r\nbody\r\n$/)
        assert.doesNotMatch(stored, /X-HELO: forged/)
      },
    ))

  it('loads as check_spamhelo from a plugins file with Debian badhelo', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spamhelo-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_spamhelo\nrcpt_ok\n')
      await writeFile(join(dir, 'badhelo'), '# forged by spammers\nhotmail.com\nmsn.com\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        assert.equal(await ask(c, 'HELO hotmail.com'), '550 5.7.1 I do not believe you are hotmail.com.\r\n')
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a bad badhelo pattern, or policy rfc on a server without DNS, stop the start', async () => {
    await assert.rejects(startTestServer({ plugins: [heloChecks()], config: { badhelo: ['ok.example', '(?=x)'] } }), {
      message: '<config badhelo>:2: pattern (?=x): lookahead (?= needs backtracking',
    })
    await assert.rejects(
      startTestServer({ plugins: [heloChecks({ policy: 'rfc' })] }),
      (e: unknown) =>
        e instanceof ConfigError && /policy rfc asks DNS, and this server has no DNS service/.test(e.message),
    )
  })
})
