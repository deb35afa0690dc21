import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { definePlugin } from '../host/define-plugin.ts'
import { accept, defer, pass, reject } from '../host/verdict.ts'
import authFlatFile from '../plugins/auth/auth-flat-file.ts'
import rcptOk from '../plugins/rcpt/ok.ts'
import type { SmtpTestClient } from '../testing/client.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../testing/test-server.ts'
import { quote } from './log-lines.ts'

/** Records a result in every transaction hook (mail, rcpt, data, data_post) and refuses some addresses. */
const judge = definePlugin({
  name: 'test/judge',
  options: {},
  setup: () => ({
    hooks: {
      mail: (ctx, from) => {
        if (from.address?.local === 'spam') return reject({ code: 550, enhanced: '5.7.1', text: 'Sender blocked' })
        ctx.result('pass', `sender ${from.address?.local ?? '<>'}`)
        return pass()
      },
      rcpt: (ctx, to) => {
        if (to.address.local === 'blocked') return reject({ code: 550, enhanced: '5.1.1', text: 'No such user' })
        ctx.result('pass', `rcpt ${to.address.local}`)
        return pass()
      },
      data: (ctx) => {
        ctx.result('info', 'data')
        return pass()
      },
      dataPost: (ctx) => {
        ctx.result('fail', 'spammy, tolerated')
        return pass()
      },
    },
  }),
})

/** A queue whose answer is a result, as the built-in queue backends record theirs. */
const queue = definePlugin({
  name: 'test/queue',
  options: {},
  setup: () => ({
    hooks: {
      queue: (ctx) => {
        if (ctx.transaction.recipients.some((r) => r.address.local === 'full')) return defer('Mailbox store full')
        ctx.result('pass', 'stored as 42')
        return accept({ text: `Queued as ${ctx.transaction.id} (next hop: stored as 42)` })
      },
    },
  }),
})

const refuseConnect = definePlugin({
  name: 'test/refuse-connect',
  options: {},
  setup: () => ({ hooks: { connect: () => reject({ code: 554, enhanced: '5.7.1', text: 'Go away' }) } }),
})

async function withServer(extra: TestServerOptions, run: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startTestServer({
    plugins: [judge(), rcptOk(), queue()],
    config: { rcpthosts: ['dest.test'] },
    memoryQueue: false,
    ...extra,
  })
  try {
    await run(srv)
  } finally {
    await srv.close()
  }
}

async function greet(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

/**
 * EHLO, then each step's text once the reply it waits for has come (RFC 2920: DATA and the final
 * dot end a pipeline group), and the client's end of the connection (FIN) right behind the last,
 * without QUIT: the server has every byte before it sees the end.
 */
async function leaveAfter(srv: TestServer, steps: readonly { after: RegExp; send: string }[]): Promise<void> {
  const sock = connect(srv.port, '127.0.0.1')
  sock.on('error', () => {})
  let seen = ''
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!pattern.test(seen)) return
        sock.off('data', onData)
        seen = ''
        resolve()
      }
      const onData = (d: Buffer) => {
        seen += d.toString('latin1')
        check()
      }
      sock.on('data', onData)
      check()
    })
  await until(/^220 /m)
  sock.write('EHLO client.test\r\n')
  for (const [n, step] of steps.entries()) {
    await until(step.after)
    if (n === steps.length - 1) sock.end(step.send)
    else sock.write(step.send)
  }
}

/** The log lines of this file's subject, once the connection's summary line is there. */
async function linesOf(srv: TestServer, summaries = 1): Promise<string[]> {
  const wanted = () => srv.logs.map((e) => e.message).filter((m) => /^(accepted|refused|lost|summary) /.test(m))
  for (let i = 0; i < 200 && wanted().filter((m) => m.startsWith('summary ')).length < summaries; i++)
    await new Promise((r) => setTimeout(r, 25))
  return wanted()
}

/** The summary line without its time, which varies. */
/** The summary line without its times (time=, plugin_time=), which the test that follows pins down. */
const summaryOf = (lines: readonly string[]) =>
  lines
    .find((l) => l.startsWith('summary '))
    ?.replace(/time=\S+ /, '')
    .replace(/ plugin_time=\[[^\]]*\]$/, '')

const CONTENT = 'Message-ID: <m1@src.test>\r\nSubject: log lines\r\n\r\nbody\r\n..dot\r\n'
const SIZE = Buffer.byteLength(CONTENT) - 1 // the client's dot-stuffing is not counted

const queuedId = (raw: string | undefined): string => {
  const m = /^250 2\.0\.0 Queued as (\w+) /.exec(raw ?? '')
  assert.ok(m, `expected a 250, got ${raw}`)
  return m[1] as string
}

describe('log lines: accepted messages', () => {
  it('one line per message: envelope, size, Message-ID, queue plugin, reply and every hook result', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<u1@dest.test>', 250)
      await c.send('RCPT TO:<u2@dest.test>', 250)
      await c.send('DATA', 354)
      c.write(`${CONTENT}.\r\n`)
      const id = queuedId((await c.reply()).raw)
      await c.quit()
      const lines = await linesOf(srv)
      const results =
        'test/judge:pass(sender a) test/judge:pass(rcpt u1) rcpt/ok:pass(local domain) test/judge:pass(rcpt u2) ' +
        'rcpt/ok:pass(local domain) test/judge:info(data) test/judge:fail(spammy, tolerated) ' +
        'test/queue:pass(stored as 42)'
      assert.deepEqual(lines.slice(0, -1), [
        `accepted id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> to=<u2@dest.test> ` +
          `size=${SIZE} msgid=<m1@src.test> queue=test/queue ` +
          `reply="250 2.0.0 Queued as ${id} (next hop: stored as 42)" results=[${results}]`,
      ])
      // The transaction's results are in the connection's summary line too (they were never printed).
      assert.equal(
        summaryOf(lines),
        `summary ip=127.0.0.1 helo=client.test tls=no auth=- relay=0 msgs=1 refused=0 errors=0 results=[${results}]`,
      )
    })
  })

  it('the null sender, a recipient with a quoted local part, a message without Message-ID', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<>', 250)
      await c.send('RCPT TO:<"john doe"@dest.test>', 250)
      await c.send('DATA', 354)
      c.write('Subject: x\r\n\r\nx\r\n.\r\n')
      const id = queuedId((await c.reply()).raw)
      await c.quit()
      const [line] = await linesOf(srv)
      assert.equal(
        line,
        `accepted id=${id} ip=127.0.0.1 helo=client.test from=<> to="<\\"john doe\\"@dest.test>" size=17 msgid=- ` +
          `queue=test/queue reply="250 2.0.0 Queued as ${id} (next hop: stored as 42)" ` +
          'results=[test/judge:pass(sender <>) test/judge:pass(rcpt john doe) rcpt/ok:pass(local domain) ' +
          'test/judge:info(data) test/judge:fail(spammy, tolerated) test/queue:pass(stored as 42)]',
      )
    })
  })
})

describe('log lines: the summary', () => {
  it("plugin_time: the time spent in each plugin's hooks, waits included, in the order they first ran", async () => {
    const slow = definePlugin({
      name: 'test/slow',
      options: {},
      setup: () => ({ hooks: { rcpt: () => new Promise((r) => setTimeout(() => r(pass()), 60)) } }),
    })
    await withServer({ plugins: [judge(), slow(), rcptOk(), queue()] }, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<u1@dest.test>', 250)
      await c.send('RCPT TO:<u2@dest.test>', 250)
      await c.send('DATA', 354)
      c.write(`${CONTENT}.\r\n`)
      await c.expect(250)
      await c.quit()
      const summary = (await linesOf(srv)).find((l) => l.startsWith('summary ')) ?? ''
      const m = / time=(\d+\.\d{3})s results=\[.*\] plugin_time=\[(.*)\]$/.exec(summary)
      assert.ok(m, summary)
      const times = (m[2] ?? '').split(' ').map((t) => /^(.+):(\d+\.\d)ms$/.exec(t))
      assert.deepEqual(
        times.map((t) => t?.[1]),
        ['test/judge', 'test/slow', 'rcpt/ok', 'test/queue'],
      )
      // Two RCPTs, each waiting 60 ms in test/slow: a lower bound, which load cannot break.
      assert.ok(Number(times[1]?.[2]) >= 110, summary)
      assert.ok(Number(m[1]) * 1000 >= Number(times[1]?.[2]), summary)
    })
  })
})

describe('log lines: refusals', () => {
  it('MAIL and RCPT refused by plugins (a 550, relaying denied): command, client, envelope, reply, plugin', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<spam@src.test> SIZE=10', 550)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<blocked@dest.test>', 550)
      await c.send('RCPT TO:<victim@elsewhere.test>', 550)
      await c.send('RSET', 250)
      await c.quit()
      const lines = await linesOf(srv)
      const id = /^refused cmd=RCPT id=(\w+) /.exec(lines[1] ?? '')?.[1]
      assert.deepEqual(lines, [
        'refused cmd=MAIL ip=127.0.0.1 helo=client.test from=<spam@src.test> reply="550 5.7.1 Sender blocked" plugin=test/judge',
        `refused cmd=RCPT id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<blocked@dest.test> ` +
          'reply="550 5.1.1 No such user" plugin=test/judge',
        `refused cmd=RCPT id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<victim@elsewhere.test> ` +
          'reply="550 5.7.1 Relaying denied" plugin=rcpt/ok',
        'summary ip=127.0.0.1 helo=client.test tls=no auth=- relay=0 msgs=0 refused=3 errors=3 ' +
          `time=${/ time=(\S+)/.exec(lines[3] ?? '')?.[1]} ` +
          'results=[test/judge:pass(sender a) test/judge:pass(rcpt victim) rcpt/ok:fail(relaying denied)] ' +
          `plugin_time=[${/plugin_time=\[(.*)\]$/.exec(lines[3] ?? '')?.[1]}]`,
      ])
    })
  })

  it('a recipient no plugin accepted is refused by the core: plugin=-', async () => {
    await withServer({ plugins: [judge(), queue()] }, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<u1@dest.test> NOTIFY=NEVER', 550)
      await c.quit()
      const lines = await linesOf(srv)
      const id = /id=(\w+)/.exec(lines[0] ?? '')?.[1]
      assert.equal(
        lines[0],
        `refused cmd=RCPT id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> ` +
          'reply="550 5.7.1 Relaying denied" plugin=-',
      )
    })
  })

  it('530 before AUTH on a submission-like listener', async () => {
    await withServer({ policies: { authRequired: true } }, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 530)
      await c.quit()
      const [line] = await linesOf(srv)
      assert.equal(
        line,
        'refused cmd=MAIL ip=127.0.0.1 helo=client.test from=<a@src.test> reply="530 5.7.0 Authentication required" plugin=-',
      )
    })
  })

  it('a failed AUTH names the plugin and never logs the credentials', async () => {
    await withServer(
      {
        plugins: [judge(), rcptOk(), authFlatFile(), queue()],
        config: { rcpthosts: ['dest.test'], flat_auth_pw: ['alice@src.test:s3cret'] },
        policies: { authRequiresTls: false },
      },
      async (srv) => {
        const c = await greet(srv)
        const secret = Buffer.from('\0alice@src.test\0wrong-password').toString('base64')
        await c.send(`AUTH PLAIN ${secret}`, 535)
        await c.quit()
        const [line] = await linesOf(srv)
        assert.equal(
          line,
          'refused cmd=AUTH ip=127.0.0.1 helo=client.test reply="535 5.7.8 Authentication credentials invalid" ' +
            'plugin=auth/auth_flat_file',
        )
        assert.ok(!srv.logs.some((e) => e.message.includes(secret) || e.message.includes('wrong-password')))
      },
    )
  })

  it('a message refused for a bare LF (554): the message line, not errors=0 and nothing else', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<u1@dest.test>', 250)
      await c.send('DATA', 354)
      const bare = 'Subject: bare\r\n\r\none\ntwo\r\n'
      c.write(`${bare}.\r\n`)
      assert.match((await c.reply()).raw, /^554 5\.6\.0 /)
      await c.quit()
      const lines = await linesOf(srv)
      const id = /id=(\w+)/.exec(lines[0] ?? '')?.[1]
      assert.deepEqual(lines.slice(0, -1), [
        `refused cmd=DATA id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> size=${bare.length} ` +
          'msgid=- reply="554 5.6.0 Error: message contains bare <CR> or <LF>; lines must end with <CR><LF>" ' +
          'plugin=- results=[test/judge:pass(sender a) test/judge:pass(rcpt u1) rcpt/ok:pass(local domain) ' +
          'test/judge:info(data)]',
      ])
      assert.match(summaryOf(lines) ?? '', / msgs=0 refused=1 /)
    })
  })

  it('a queue failure (451) names the queue plugin, over BDAT too', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send('MAIL FROM:<a@src.test>', 250)
      await c.send('RCPT TO:<full@dest.test>', 250)
      c.write(`BDAT ${CONTENT.length} LAST\r\n${CONTENT}`)
      assert.equal((await c.reply()).raw, '451 4.3.0 Mailbox store full\r\n')
      await c.quit()
      const lines = await linesOf(srv)
      const id = /id=(\w+)/.exec(lines[0] ?? '')?.[1]
      assert.deepEqual(lines.slice(0, -1), [
        `refused cmd=BDAT id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<full@dest.test> ` +
          `size=${CONTENT.length} msgid=<m1@src.test> reply="451 4.3.0 Mailbox store full" plugin=test/queue ` +
          'results=[test/judge:pass(sender a) test/judge:pass(rcpt full) rcpt/ok:pass(local domain) ' +
          'test/judge:info(data) test/judge:fail(spammy, tolerated)]',
      ])
      assert.match(summaryOf(lines) ?? '', / msgs=0 refused=1 /)
    })
  })

  it('a client that leaves in the middle of DATA: the lost message, with what arrived (Postfix: lost connection after DATA)', async () => {
    await withServer({}, async (srv) => {
      const partial = 'Message-ID: <cut@src.test>\r\nSubject: cut\r\n\r\nhalf a'
      await leaveAfter(srv, [
        { after: /^250 /m, send: 'MAIL FROM:<a@src.test>\r\nRCPT TO:<u1@dest.test>\r\nDATA\r\n' },
        { after: /^354 /m, send: partial },
      ])
      const lines = await linesOf(srv)
      const id = /id=(\w+)/.exec(lines[0] ?? '')?.[1]
      assert.deepEqual(lines.slice(0, -1), [
        `lost cmd=DATA id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> ` +
          `size=${Buffer.byteLength(partial)} msgid=<cut@src.test>`,
      ])
      assert.match(summaryOf(lines) ?? '', / msgs=0 refused=0 /)
    })
  })

  it('between BDAT chunks too, before the header section ends', async () => {
    await withServer({}, async (srv) => {
      await leaveAfter(srv, [
        { after: /^250 /m, send: 'MAIL FROM:<a@src.test>\r\nRCPT TO:<u1@dest.test>\r\nBDAT 12\r\nSubject: b\r\n' },
      ])
      const lines = await linesOf(srv)
      const id = /id=(\w+)/.exec(lines[0] ?? '')?.[1]
      assert.deepEqual(lines.slice(0, -1), [
        `lost cmd=BDAT id=${id} ip=127.0.0.1 helo=client.test from=<a@src.test> to=<u1@dest.test> size=12 msgid=-`,
      ])
    })
  })

  it('no such line for a client that leaves after its message, or in a transaction before DATA', async () => {
    await withServer({}, async (srv) => {
      await leaveAfter(srv, [
        { after: /^250 /m, send: 'MAIL FROM:<a@src.test>\r\nRCPT TO:<u1@dest.test>\r\nDATA\r\n' },
        { after: /^354 /m, send: `${CONTENT}.\r\n` },
        { after: /^250 2\.0\.0 Queued/m, send: 'MAIL FROM:<a@src.test>\r\nRCPT TO:<u1@dest.test>\r\n' },
      ])
      const lines = await linesOf(srv)
      assert.deepEqual(
        lines.map((l) => l.split(' ')[0]),
        ['accepted', 'summary'],
      )
    })
  })

  it('a refused connection', async () => {
    await withServer({ plugins: [refuseConnect(), rcptOk(), queue()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(554)
      const lines = await linesOf(srv)
      assert.equal(
        lines[0],
        'refused cmd=CONNECT ip=127.0.0.1 helo=- reply="554 5.7.1 Go away" plugin=test/refuse-connect',
      )
    })
  })

  it('a command line that is too long, and an unknown verb', async () => {
    await withServer({}, async (srv) => {
      const c = await greet(srv)
      await c.send(`NOOP ${'x'.repeat(600)}`, 500)
      await c.send('FROB x', 500)
      await c.quit()
      const lines = await linesOf(srv)
      assert.deepEqual(lines.slice(0, 2), [
        'refused cmd=- ip=127.0.0.1 helo=client.test reply="500 5.5.2 Error: line too long" plugin=-',
        'refused cmd=FROB ip=127.0.0.1 helo=client.test reply="500 5.5.1 Error: command not recognized" plugin=-',
      ])
    })
  })
})

describe('log line values', () => {
  it('are quoted only when they hold a space, a quote or a backslash', () => {
    assert.equal(quote('<a@b.test>'), '<a@b.test>')
    assert.equal(quote('two words'), '"two words"')
    assert.equal(quote('say "hi"\\'), '"say \\"hi\\"\\\\"')
    assert.equal(quote(''), '""')
  })
})
