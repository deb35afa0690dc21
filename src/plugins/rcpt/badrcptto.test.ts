import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, ask } from '../test-support.ts'
import badrcptto from './badrcptto.ts'

const LIST = [
  'closed@local.test',
  '@closed.test',
  'ceo@local.test   The CEO takes no mail from strangers',
  '^bounce-.*\\@local\\.test$',
  '(?<!^post)master@',
  '(x+x+)+y',
]

describe('badrcptto', () => {
  const cases = [
    { to: 'closed@local.test', want: '550 5.1.1 mail to closed@local.test not accepted here\r\n' },
    { to: 'Closed@LOCAL.test', want: '550 5.1.1 mail to closed@local.test not accepted here\r\n' },
    { to: 'anyone@closed.test', want: '550 5.1.1 mail to anyone@closed.test not accepted here\r\n' },
    { to: 'ceo@local.test', want: '550 5.7.1 The CEO takes no mail from strangers\r\n' },
    // Patterns are case-insensitive (qpsmtpd /i), and the reply never shows the pattern.
    { to: 'BOUNCE-123@local.test', want: '550 5.1.1 mail to bounce-123@local.test not accepted here\r\n' },
    { to: 'webmaster@local.test', want: '550 5.1.1 mail to webmaster@local.test not accepted here\r\n' },
    { to: 'postmaster@local.test', want: /^250 2\.1\.5 / },
    { to: 'friend@local.test', want: /^250 2\.1\.5 / },
    { to: `${'x'.repeat(60)}@local.test`, want: /^250 2\.1\.5 / },
  ]
  it('refuses listed recipients, one by one, with exact replies', () =>
    withTestServer({ plugins: [badrcptto(), acceptRcpt()], config: { badrcptto: LIST } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@sender.example>', 250)
      for (const t of cases) {
        const r = await ask(c, `RCPT TO:<${t.to}>`)
        if (typeof t.want === 'string') assert.equal(r, t.want, t.to)
        else assert.match(r, t.want, t.to)
      }
      await c.quit()
    }))

  it('loads as check_badrcptto; a bad pattern stops the start at file:line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'badrcptto-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_badrcptto\nrcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      await writeFile(join(dir, 'badrcptto'), 'closed@local.test\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<>', 250)
        assert.equal(
          await ask(c, 'RCPT TO:<closed@local.test>'),
          '550 5.1.1 mail to closed@local.test not accepted here\r\n',
        )
        await c.send('RCPT TO:<open@local.test>', 250)
        await c.quit()
      })
      await writeFile(join(dir, 'badrcptto'), 'closed@local.test\n^a(?=b)\n')
      await assert.rejects(startTestServer({ configDir: dir }), (e: unknown) => {
        assert.ok(e instanceof ConfigError)
        assert.equal(e.message, `${join(dir, 'badrcptto')}:2: pattern ^a(?=b): lookahead (?= needs backtracking`)
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
