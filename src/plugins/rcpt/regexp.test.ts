import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { ask } from '../test-support.ts'
import rcptOk from './ok.ts'
import rcptRegexp from './regexp.ts'

// The example of qpsmtpd's POD, plus the other codes.
const RULES = [
  'me@myhost.org           OK       Accepting mail',
  '/^user\\d+\\@doma\\.in$/   OK       Accepting mail',
  'info@myhost.org         DENY     User not found.',
  '/^unused\\@.*/           DENY     User not found.',
  '/^later\\@/              DENYSOFT Mailbox busy',
  '/^go-away\\@/            DENY_DISCONNECT Go away',
  '/^.*\\@myhost\\.org$/    DECLINED Fall through to next rcpt plugin',
]

describe('rcpt_regexp', () => {
  it('decides by the first matching line, with its code and text', () =>
    withTestServer(
      { plugins: [rcptRegexp(), rcptOk()], config: { rcpt_regexp: RULES, rcpthosts: ['myhost.org'] } },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@sender.example>', 250)
        assert.equal(await ask(c, 'RCPT TO:<ME@myhost.org>'), '250 2.1.5 Accepting mail\r\n')
        assert.equal(await ask(c, 'RCPT TO:<User42@DOMA.in>'), '250 2.1.5 Accepting mail\r\n')
        assert.equal(await ask(c, 'RCPT TO:<info@myhost.org>'), '550 5.7.1 User not found.\r\n')
        assert.equal(await ask(c, 'RCPT TO:<unused@anywhere.example>'), '550 5.7.1 User not found.\r\n')
        assert.equal(await ask(c, 'RCPT TO:<later@myhost.org>'), '450 4.7.1 Mailbox busy\r\n')
        // DECLINED: rcpt_ok decides; myhost.org is local.
        assert.match(await ask(c, 'RCPT TO:<someone@myhost.org>'), /^250 2\.1\.5 /)
        assert.equal(await ask(c, 'RCPT TO:<nobody@elsewhere.example>'), '550 5.7.1 Relaying denied\r\n')
        assert.equal(await ask(c, 'RCPT TO:<go-away@myhost.org>'), '550 5.7.1 Go away\r\n')
        await c.closed()
      },
    ))

  it('a line without a code, an unknown code, DONE, or a pattern needing backtracking stop the start at file:line', () =>
    assert.rejects(
      startTestServer({
        plugins: [rcptRegexp()],
        config: { rcpt_regexp: ['a@b.example', 'c@d.example MAYBE', 'e@f.example DONE', '/^(a)\\1/ DENY'] },
      }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError)
        assert.equal(
          e.message,
          [
            '<config rcpt_regexp>:1: no return code after a@b.example',
            '<config rcpt_regexp>:2: "MAYBE" is not a return code; use one of OK, DECLINED, DENY, DENYSOFT, DENY_DISCONNECT, DENYHARD, DENYSOFT_DISCONNECT',
            '<config rcpt_regexp>:3: DONE would leave the client without a reply; use one of OK, DECLINED, DENY, DENYSOFT, DENY_DISCONNECT, DENYHARD, DENYSOFT_DISCONNECT',
            '<config rcpt_regexp>:4: pattern ^(a)\\1: \\1 (backreference) needs backtracking',
          ].join('\n'),
        )
        return true
      },
    ))
})
