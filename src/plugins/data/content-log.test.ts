import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { type FakeClock, fakeClock } from '../../clock/index.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMail, sendMailSession, summaryLine } from '../test-support.ts'
import contentLog from './content-log.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'qtsmtpd-content-log-'))
  dirs.push(d)
  return d
}

const DAY = 86_400_000
const pad = (n: number, w = 2, fill = '0') => String(n).padStart(w, fill)
/** qpsmtpd's default name, `%Y%m%d` in local time. */
const ymd = (ms: number) => {
  const d = new Date(ms)
  return `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}`
}
/** asctime(3) in local time, as mbox From lines have it. */
const asctime = (ms: number) => {
  const d = new Date(ms)
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()]
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return `${day} ${month} ${pad(d.getDate(), 2, ' ')} ${time} ${d.getFullYear()}`
}
/** What the queue stored (CRLF), as the copy should hold it: LF, the header section alone. */
const headerSection = (stored: string) => stored.slice(0, stored.indexOf('\r\n\r\n') + 2).replace(/\r\n/g, '\n')

async function withServer(
  opts: TestServerOptions & { clock: FakeClock },
  fn: (srv: TestServer) => Promise<void>,
): Promise<void> {
  const srv = await startTestServer(opts)
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

describe('content_log through real sessions', () => {
  it('each message goes into mail/YYYYMMDD as an mbox entry: From line, LF endings, From lines quoted', async () => {
    const baseDir = tempDir()
    const clock = fakeClock(Date.UTC(2026, 11, 4, 12, 0, 0))
    await withServer({ baseDir, clock, plugins: [acceptRcpt(), contentLog()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const first = plainMessage('From the desk of Alice:\r\n>From an old reply\r\nlunch at noon\r\n')
      assert.equal((await sendMail(c, 'alice@sender.test', ['bob@local.test'], first)).code, 250)
      await clock.advance(61_000)
      // BDAT can end a message without a line break; the copy still ends with a blank line.
      await c.send('MAIL FROM:<>', 250)
      await c.send('RCPT TO:<bob@local.test>', 250)
      const last = plainMessage('no final line break')
      await c.send(`BDAT ${Buffer.byteLength(last)} LAST`, undefined)
      c.write(last)
      assert.equal((await c.reply(30_000)).code, 250)
      await c.quit()
      const file = join(baseDir, 'mail', ymd(clock.now()))
      assert.deepEqual(readdirSync(join(baseDir, 'mail')), [ymd(clock.now())])
      const [one, two] = srv.queued.map((m) => m.text)
      assert.equal(
        readFileSync(file, 'latin1'),
        `From alice@sender.test ${asctime(clock.now() - 61_000)}\n` +
          `${headerSection(one as string)}\n` +
          '>From the desk of Alice:\n>>From an old reply\nlunch at noon\n\n' +
          `From MAILER-DAEMON ${asctime(clock.now())}\n` +
          `${headerSection(two as string)}\n` +
          'no final line break\n\n',
      )
      assert.match(await summaryLine(srv), new RegExp(`data/content-log:pass\\(copied to ${file}\\)`))
    })
  })

  it('a file a day; past keep, the oldest files are removed', async () => {
    const baseDir = tempDir()
    const clock = fakeClock(Date.UTC(2026, 11, 4, 12, 0, 0))
    const days: string[] = []
    await withServer({ baseDir, clock, plugins: [acceptRcpt(), contentLog({ keep: '2' })] }, async (srv) => {
      for (let i = 0; i < 3; i++) {
        days.push(ymd(clock.now()))
        assert.equal(
          (await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage(`day ${i}\r\n`))).code,
          250,
        )
        await clock.advance(DAY)
        // Files of one second would tie on their times; the names break the tie, in date order.
        await new Promise((r) => setTimeout(r, 20))
      }
      assert.deepEqual(readdirSync(join(baseDir, 'mail')).sort(), days.slice(1))
      assert.match(readFileSync(join(baseDir, 'mail', days[2] as string), 'latin1'), /\nday 2\n\n$/)
      assert.ok(
        srv.logs.some((e) => e.message === `content log: removed ${join(baseDir, 'mail', days[0] as string)} (keep 2)`),
      )
    })
  })

  it('max_file_size: a message that would pass it is not copied, and is accepted', async () => {
    const baseDir = tempDir()
    const clock = fakeClock()
    await withServer(
      { baseDir, clock, plugins: [acceptRcpt(), contentLog({ max_file_size: '2048' })] },
      async (srv) => {
        assert.equal(
          (await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage('short\r\n'))).code,
          250,
        )
        const file = join(baseDir, 'mail', ymd(clock.now()))
        const before = readFileSync(file)
        const big = plainMessage(`${'x'.repeat(70)}\r\n`.repeat(30))
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], big)).code, 250)
        assert.deepEqual(readFileSync(file), before)
        assert.match(
          await summaryLine(srv, 2),
          new RegExp(`data/content-log:skip\\(${file} would pass max_file_size \\(2048 bytes\\)\\)`),
        )
        assert.equal(
          srv.metrics.value('qtsmtpd_content_log_messages_total', { plugin: 'data/content-log', outcome: 'skipped' }),
          1,
        )
      },
    )
  })

  it('content_log_file and content_log_enabled, the config files of qpsmtpd', async () => {
    const baseDir = tempDir()
    const clock = fakeClock()
    const config = { content_log_file: 'archive/%Y-%m-%d.mbox' }
    await withServer({ baseDir, clock, config, plugins: [acceptRcpt(), contentLog()] }, async (srv) => {
      await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage('kept\r\n'))
      const d = new Date(clock.now())
      const name = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}.mbox`
      assert.deepEqual(readdirSync(join(baseDir, 'archive')), [name])
    })
    const off = tempDir()
    await withServer(
      { baseDir: off, clock, config: { content_log_enabled: 'no' }, plugins: [acceptRcpt(), contentLog()] },
      async (srv) => {
        assert.equal(
          (await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage('not kept\r\n'))).code,
          250,
        )
        assert.equal(existsSync(join(off, 'mail')), false)
      },
    )
  })

  it('copies made at the same time do not mix: each is written whole', async () => {
    const baseDir = tempDir()
    const clock = fakeClock()
    await withServer({ baseDir, clock, plugins: [acceptRcpt(), contentLog()] }, async (srv) => {
      const bodies = Array.from({ length: 5 }, (_, i) => `${`message ${i} `.repeat(20)}\r\n`.repeat(1000))
      await Promise.all(bodies.map((b) => sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage(b))))
      const text = readFileSync(join(baseDir, 'mail', ymd(clock.now())), 'latin1')
      const entries = text.split(/^From a@sender\.test .*\n/m).slice(1)
      assert.equal(entries.length, 5)
      for (const e of entries) {
        const n = /\n\nmessage (\d) /.exec(e)?.[1]
        assert.ok(e.endsWith(`\n\n${bodies[Number(n)]?.replace(/\r\n/g, '\n')}\n`))
      }
    })
  })

  it('a copy that cannot be written is logged and counted; the message is accepted', async () => {
    const baseDir = tempDir()
    const clock = fakeClock()
    mkdirSync(join(baseDir, 'mail', ymd(clock.now())), { recursive: true })
    await withServer({ baseDir, clock, plugins: [acceptRcpt(), contentLog()] }, async (srv) => {
      assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage('hello\r\n'))).code, 250)
      assert.equal(srv.queued.length, 1)
      assert.match(await summaryLine(srv), /data\/content-log:error\(cannot write .*\)/)
      assert.ok(srv.logs.some((e) => /^content log: cannot write .*: EISDIR/.test(e.message)))
      assert.equal(
        srv.metrics.value('qtsmtpd_content_log_messages_total', { plugin: 'data/content-log', outcome: 'failed' }),
        1,
      )
    })
  })

  it('a date in the directory part, or a directory that cannot be made, stops the start', async () => {
    const clock = fakeClock()
    await assert.rejects(
      startTestServer({
        baseDir: tempDir(),
        clock,
        config: { content_log_file: 'mail/%Y/%m%d' },
        plugins: [contentLog()],
      }),
      /content_log_file .*mail\/%Y\/%m%d: strftime conversions are allowed in the file name only/,
    )
    await assert.rejects(
      startTestServer({
        clock,
        config: { content_log_file: '/proc/qtsmtpd-test/mail/%Y%m%d' },
        plugins: [contentLog()],
      }),
      /cannot create/,
    )
  })
})
