import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, ask } from '../test-support.ts'
import earlytalker from './earlytalker.ts'

const TEXT = 'Connecting host started transmitting before SMTP greeting'

describe('earlytalker', () => {
  it('check-at CONNECT, reject 1 (the default): a client talking before the greeting is refused and closed', () =>
    withTestServer({ plugins: [earlytalker({ wait: 5 })] }, async (srv) => {
      const c = await srv.connect()
      c.write('EHLO ratware.example\r\n')
      assert.equal((await c.reply()).raw, `554 5.7.1 ${TEXT}\r\n`)
      await c.closed()
    }))

  it('a client that waits is greeted after the wait, and goes on', () =>
    withTestServer({ plugins: [earlytalker({ wait: 0.2 }), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@example.org>', 250)
      await c.quit()
    }))

  it("Debian's `check_earlytalker action log`: the early talker is logged, greeted and served, as by qpsmtpd", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'earlytalker-'))
    try {
      await writeFile(join(dir, 'plugins'), 'check_earlytalker action log\nrcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await srv.connect()
        c.write('EHLO early.example\r\n')
        await c.expect(/^220 /)
        await c.expect(/^250-/)
        await c.send('MAIL FROM:<s@example.org>', 250)
        await c.send('RCPT TO:<u@local.test>', 250)
        await c.quit()
        assert.ok(srv.logs.some((e) => e.message === 'remote started talking before we said hello'))
      })
      // Without the plugin, enforce_sync refuses the same client (the core's own rule; a
      // greeting_delay gives it the same second to talk early).
      await writeFile(join(dir, 'plugins'), 'rcpt_ok\n')
      await writeFile(join(dir, 'smtpd.conf'), 'greeting_delay 1s\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await srv.connect()
        c.write('EHLO early.example\r\n')
        await c.expect(/^220 /)
        assert.equal((await c.reply()).raw, '554 5.5.0 Error: SMTP protocol synchronization\r\n')
        await c.closed()
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('defer-reject: the early talker is greeted, and every MAIL refused; action denysoft makes it 450', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'earlytalker-defer-'))
    try {
      for (const [args, want] of [
        ['defer-reject 1', `550 5.7.1 ${TEXT}\r\n`],
        ['defer-reject 1 action denysoft', `450 4.7.1 ${TEXT}\r\n`],
      ] as const) {
        await writeFile(join(dir, 'plugins'), `earlytalker ${args}\nrcpt_ok\n`)
        await withTestServer({ configDir: dir }, async (srv) => {
          const c = await srv.connect()
          c.write('EHLO early.example\r\n')
          await c.expect(/^220 /)
          await c.expect(/^250-/)
          assert.equal(await ask(c, 'MAIL FROM:<s@example.org>'), want, args)
          assert.equal(await ask(c, 'MAIL FROM:<t@example.org>'), want, args)
          await c.quit()
        })
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('check-at DATA: a client sending the message before the 354 is refused; a patient one gets the 354', () =>
    withTestServer({ plugins: [earlytalker({ 'check-at': ['DATA'], wait: 3 }), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@example.org>', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      c.write('DATA\r\n')
      await sleep(100)
      c.write('Subject: too early\r\n')
      assert.equal((await c.reply()).raw, `554 5.7.1 ${TEXT}\r\n`)
      await c.quit()
      const d = await openSession(srv)
      await d.send('MAIL FROM:<s@example.org>', 250)
      await d.send('RCPT TO:<u@local.test>', 250)
      await d.send('DATA', 354, 10_000)
      await d.send('Subject: in time\r\n\r\nbody\r\n.', 250)
      await d.quit()
    }))

  it('a waiting session holds up no other session', () =>
    withTestServer({ plugins: [earlytalker({ 'check-at': ['DATA'], wait: 10 }), acceptRcpt()] }, async (srv) => {
      const a = await openSession(srv)
      await a.send('MAIL FROM:<a@example.org>', 250)
      await a.send('RCPT TO:<u@local.test>', 250)
      a.write('DATA\r\n')
      // While A's DATA waits its 10 s, B goes through a whole session.
      const b = await openSession(srv)
      await b.send('MAIL FROM:<b@example.org>', 250)
      await b.send('RCPT TO:<u@local.test>', 250)
      await b.quit()
      assert.equal(a.pending().length, 0, 'A is still waiting for its 354')
      a.destroy()
    }))

  it('loads as async/earlytalker; bad arguments stop the start at their line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'earlytalker-args-'))
    try {
      await writeFile(join(dir, 'plugins'), 'async/earlytalker wait 0 check-at data\nrcpt_ok\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.quit()
      })
      for (const [line, message] of [
        ['earlytalker check-at LATER', 'plugin earlytalker: check-at: expected CONNECT or DATA, got "LATER"'],
        [
          'earlytalker action shout',
          'plugin earlytalker: option "action": expected deny, denysoft or log, got "shout"',
        ],
        ['earlytalker wait 60', 'plugin earlytalker: option "wait": must be at most 20, got 60'],
      ]) {
        await writeFile(join(dir, 'plugins'), `${line}\nrcpt_ok\n`)
        await assert.rejects(startTestServer({ configDir: dir }), (e: unknown) => {
          assert.match((e as Error).message, new RegExp(`^${join(dir, 'plugins')}:1: `))
          assert.ok(
            (e as Error).message.includes((message ?? '').replace(/^plugin earlytalker: /, '')),
            (e as Error).message,
          )
          return true
        })
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
