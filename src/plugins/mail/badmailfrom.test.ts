import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigError } from '../../config/config-error.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import naughty from '../naughty.ts'
import { acceptRcpt, ask } from '../test-support.ts'
import badmailfrom from './badmailfrom.ts'

const LIST = [
  '# comments and blank lines are ignored',
  '',
  'spammer@bad.example',
  '@evil.example        We do not take mail from evil.example',
  "^streamsendbouncer@.*\\.mailengine1\\.com$    Your right-hand side VERP doesn't fool me",
  '(?i)^return.*@.*\\.PIDPLATE\\.biz$',
  '(a+)+$ catastrophic',
]
const IN_LIST = '550 5.7.1 Your envelope sender is in my badmailfrom list\r\n'

const relayEveryone = definePlugin({
  name: 'test/relay-everyone',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        ctx.connection.relayClient = true
        return pass()
      },
    },
  }),
})

describe('badmailfrom', () => {
  const cases = [
    { name: 'a listed address', from: 'spammer@bad.example', want: IN_LIST },
    { name: 'a listed address in other case', from: 'SpamMer@BAD.example', want: IN_LIST },
    {
      name: "@domain, with the line's message",
      from: 'anyone@evil.example',
      want: '550 5.7.1 We do not take mail from evil.example\r\n',
    },
    { name: '@domain does not cover subdomains', from: 'anyone@sub.evil.example', want: /^250 / },
    {
      name: 'a pattern, with its message',
      from: 'streamsendbouncer@a.b.mailengine1.com',
      want: "550 5.7.1 Your right-hand side VERP doesn't fool me\r\n",
    },
    { name: '(?i) in a pattern', from: 'return-7@x.pidplate.biz', want: IN_LIST },
    { name: 'an address nobody listed', from: 'friend@good.example', want: /^250 2\.1\.0 / },
    // A backtracking engine never returns from (a+)+$ against this; RE2 answers at once.
    { name: 'a catastrophic pattern against a long address', from: `${'a'.repeat(60)}!@x.example`, want: /^250 / },
    { name: 'the catastrophic pattern, matching', from: `${'a'.repeat(60)}@x.aaa`, want: '550 5.7.1 catastrophic\r\n' },
  ]
  it('refuses listed senders with exact replies', () =>
    withTestServer({ plugins: [badmailfrom()], config: { badmailfrom: LIST } }, async (srv) => {
      for (const t of cases) {
        const c = await openSession(srv)
        const r = await ask(c, `MAIL FROM:<${t.from}>`)
        if (typeof t.want === 'string') assert.equal(r, t.want, t.name)
        else assert.match(r, t.want, t.name)
        await c.quit()
      }
    }))

  it('does not check the null sender, nor relay clients', async () => {
    await withTestServer({ plugins: [badmailfrom()], config: { badmailfrom: ['^$ empty', ...LIST] } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<>', /^250 /)
      await c.quit()
    })
    await withTestServer({ plugins: [relayEveryone(), badmailfrom()], config: { badmailfrom: LIST } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<spammer@bad.example>', /^250 /)
      await c.quit()
    })
  })

  it('reject 0 logs and lets the sender through; reject_type temp answers 450; reject naughty defers', async () => {
    await withTestServer({ plugins: [badmailfrom({ reject: '0' })], config: { badmailfrom: LIST } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<spammer@bad.example>', /^250 /)
      await c.quit()
    })
    await withTestServer(
      { plugins: [badmailfrom({ reject_type: 'temp' })], config: { badmailfrom: LIST } },
      async (srv) => {
        const c = await openSession(srv)
        assert.equal(
          await ask(c, 'MAIL FROM:<spammer@bad.example>'),
          '450 4.7.1 Your envelope sender is in my badmailfrom list\r\n',
        )
        await c.quit()
      },
    )
    await withTestServer(
      { plugins: [badmailfrom({ reject: 'naughty' }), naughty(), acceptRcpt()], config: { badmailfrom: LIST } },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<spammer@bad.example>', /^250 /)
        assert.equal(
          await ask(c, 'RCPT TO:<u@local.test>'),
          '550 5.7.1 (mail/badmailfrom) Your envelope sender is in my badmailfrom list\r\n',
        )
        await c.closed()
      },
    )
  })

  it('loads as check_badmailfrom from a plugins file, and takes an edit of badmailfrom without SIGHUP', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'badmailfrom-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_badmailfrom\nrcpt_ok\n')
      await writeFile(join(dir, 'badmailfrom'), 'spammer@bad.example\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await openSession(srv)
        assert.equal(await ask(c, 'MAIL FROM:<spammer@bad.example>'), IN_LIST)
        await c.send('MAIL FROM:<new@worse.example>', /^250 /)
        await writeFile(join(dir, 'badmailfrom'), '@worse.example no thanks\n')
        await sleep(1100)
        await c.send('RSET', 250)
        assert.equal(await ask(c, 'MAIL FROM:<new@worse.example>'), '550 5.7.1 no thanks\r\n')
        await c.send('MAIL FROM:<spammer@bad.example>', /^250 /)
        await c.quit()
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a pattern that cannot be matched in linear time, or a line that is no address, stops the start at file:line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'badmailfrom-bad-'))
    try {
      await writeFile(join(dir, 'plugins'), 'badmailfrom\nrcpt_ok\n')
      await writeFile(join(dir, 'badmailfrom'), 'ok@example.com\n^(\\w+)\\1@ doubled\nnobody\n')
      await assert.rejects(startTestServer({ configDir: dir }), (e: unknown) => {
        assert.ok(e instanceof ConfigError)
        assert.equal(
          e.message,
          [
            `${join(dir, 'badmailfrom')}:2: pattern ^(\\w+)\\1@: \\1 (backreference) needs backtracking`,
            `${join(dir, 'badmailfrom')}:3: "nobody" is neither an address, nor @domain, nor a pattern`,
          ].join('\n'),
        )
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
