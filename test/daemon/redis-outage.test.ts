/**
 * Redis goes away in the middle of a run and comes back: a qtsmtpd node (bin/qtsmtpd) whose
 * store is a real redis-server, with greylisting, karma, limit and hosts_allow on, serves a
 * steady stream of sessions while the test stops redis-server and starts it again. The server
 * keeps serving, each plugin applies its declared policy (on_error pass: mail flows unchecked;
 * on_error defer: 4xx), no reply is a 5xx, every message that got a 250 is in the queue, and the
 * store reconnects by itself: greylisting defers a new triplet again without a restart.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { SmtpTestClient } from '../../src/testing/index.ts'
import { freePort } from '../peers/free-port.ts'
import { type RedisServer, startRedis } from '../peers/redis.ts'
import { type Cli, makeConfig, startCli, type TestConfig } from './harness.ts'

/** One session; its last reply (the 250 for the message, or the refusal), or how it ended. */
async function session(port: number, from: string, subject: string): Promise<string> {
  let c: SmtpTestClient
  try {
    c = await SmtpTestClient.connect(port, '127.0.0.1', { localAddress: from })
  } catch (e) {
    return `connect failed: ${(e as Error).message}`
  }
  try {
    const steps: [string | undefined, RegExp][] = [
      [undefined, /^220 /],
      ['EHLO client.test', /^250[ -]/],
      ['MAIL FROM:<load@sender.test>', /^250 /],
      ['RCPT TO:<u@example.com>', /^250 /],
      ['DATA', /^354 /],
      [`Subject: ${subject}\r\n\r\nbody\r\n.`, /^250 /],
    ]
    let last = ''
    for (const [line, ok] of steps) {
      if (line !== undefined) c.write(`${line}\r\n`)
      last = (await c.reply(15_000)).raw
      if (!ok.test(last)) return last
    }
    return last
  } catch (e) {
    return `ended: ${(e as Error).message}`
  } finally {
    c.destroy()
  }
}

interface Run {
  readonly replies: { readonly subject: string; readonly reply: string }[]
  stop(): Promise<void>
}

/** Sessions one after another (two at a time) until stopped. */
function load(port: number, from: string, label: string): Run {
  const replies: { subject: string; reply: string }[] = []
  let stopped = false
  let n = 0
  const lane = async () => {
    while (!stopped && n < 2000) {
      const subject = `${label} ${++n}`
      replies.push({ subject, reply: await session(port, from, subject) })
    }
  }
  const lanes = [lane(), lane()]
  return {
    replies,
    stop: async () => {
      stopped = true
      await Promise.all(lanes)
    },
  }
}

const subjectsIn = (cfg: TestConfig) =>
  new Set(cfg.messages().map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.replace(/\r$/, '') ?? ''))

for (const policy of ['pass', 'defer'] as const) {
  describe(`a Redis outage with on_error ${policy}`, { timeout: 120_000 }, () => {
    let redis: RedisServer
    let cfg: TestConfig
    let cli: Cli
    after(async () => {
      cli?.kill('SIGKILL')
      await redis?.close()
      cfg?.remove()
    })

    it('the server keeps serving, every 250 is stored, and the store reconnects without a restart', async () => {
      redis = await startRedis()
      cfg = makeConfig(
        [
          `hosts_allow max_conn_ip 10 on_error ${policy}`,
          `karma on_error ${policy}`,
          `limit on_error ${policy}`,
          `greylisting black_timeout 1 grey_timeout 600 on_error ${policy}`,
          'rcpt_ok',
        ],
        {
          'smtpd.conf': `store redis://127.0.0.1:${redis.port} timeout=300ms`,
          limits: 'connections ip 100000/1m\nrecipients ip 100000/1m',
        },
      )
      const port = await freePort()
      cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
      const ready = await cli.waitFor(/ready: pid (\d+)/, 30_000)

      // Redis answers: a new client is greylisted, and passes after black_timeout.
      assert.equal(await session(port, '127.0.0.31', 'first'), '450 4.7.1 This mail is temporarily denied\r\n')
      await sleep(1200)
      assert.match(await session(port, '127.0.0.31', 'white'), /^250 /)

      const run = load(port, '127.0.0.31', policy)
      await sleep(1000)
      await redis.stop()
      const outageFrom = run.replies.length
      await cli.waitFor(/store redis:\/\/127\.0\.0\.1:\d+ unavailable/, 15_000)
      await sleep(2000)
      const outageTo = run.replies.length
      await redis.start()
      await cli.waitFor(/store redis:\/\/127\.0\.0\.1:\d+ reconnected/, 30_000)
      await sleep(1000)
      await run.stop()

      const during = run.replies.slice(outageFrom, outageTo)
      assert.ok(during.length > 0, 'sessions ran while Redis was away')
      assert.deepEqual(
        run.replies.filter((r) => !/^(250|4\d\d) /.test(r.reply)),
        [],
        'every session ended in a 250 or a temporary refusal: no 5xx, no hang, no broken session',
      )
      if (policy === 'pass')
        assert.ok(
          during.some((r) => r.reply.startsWith('250 ')),
          'mail flowed unchecked',
        )
      else {
        assert.ok(
          during.some((r) => /^4\d\d 4\.3\.0 /.test(r.reply)),
          'mail was deferred with 4.3.0',
        )
        assert.ok(!during.slice(2).some((r) => r.reply.startsWith('250 ')), 'nothing passed unchecked')
      }
      const stored = subjectsIn(cfg)
      const accepted = [...run.replies.filter((r) => r.reply.startsWith('250 ')).map((r) => r.subject), 'white']
      assert.deepEqual(
        accepted.filter((s) => !stored.has(s)),
        [],
        'every message that got a 250 is in the queue',
      )
      assert.equal(stored.size, accepted.length, 'and nothing else')

      // The same process, reconnected: Redis restarted empty, so a new triplet is deferred again.
      assert.equal(await session(port, '127.0.0.32', 'after'), '450 4.7.1 This mail is temporarily denied\r\n')
      assert.equal(cli.child.exitCode, null)
      assert.ok(cli.lines.some((l) => l.includes(`ready: pid ${ready[1]}`)))
    })
  })
}
