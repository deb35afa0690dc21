import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { dirname, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type EximPeer, startExim } from '../../../test/peers/exim-peer.ts'
import { startTestServer, type TestServer } from '../../testing/test-server.ts'
import { acceptRcpt, sendMailSession } from '../test-support.ts'
import eximBsmtp, { bsmtpPreamble } from './exim-bsmtp.ts'

describe('queue/exim-bsmtp against a real Exim (Debian exim4-daemon-light, unpacked)', () => {
  let exim: EximPeer
  let srv: TestServer
  before(async () => {
    exim = startExim()
    srv = await startTestServer({
      plugins: [acceptRcpt(), eximBsmtp({ exim_path: exim.bin, exim_args: [...exim.args], timeout: 30 })],
      memoryQueue: false,
    })
  })
  after(async () => {
    await srv?.close()
    exim?.close()
  })

  it('the message arrives in the mailbox with our envelope sender, dot lines intact', async () => {
    const content = 'Subject: via exim\r\nMessage-ID: <e1@client.test>\r\n\r\nline\r\n..one dot\r\n...two\r\nend\r\n'
    const r = await sendMailSession(srv, 'sender@client.test', ['u1@example.test', 'u2@example.test'], content)
    assert.match(r.raw, /^250 2\.0\.0 Queued as \S+ \(Exim BSMTP\)\r\n$/)
    const got = exim.messages().map((b) => b.toString('utf8'))
    assert.equal(got.length, 2, 'one Maildir copy per recipient')
    for (const m of got) {
      assert.match(m, /^Return-path: <sender@client\.test>\n/)
      assert.match(m, /\nReceived: from client\.test \(unknown \[127\.0\.0\.1\]\)\n\tby mx\.test \(qtsmtpd\)/)
      assert.match(m, /^Envelope-to: u[12]@example\.test\n/m)
      assert.match(m, /\nSubject: via exim\nMessage-ID: <e1@client\.test>\n/)
      assert.ok(m.endsWith('\n\nline\n.one dot\n..two\nend\n'), m)
    }
  })

  it('a relative exim_path is taken from the install directory, not the working directory', async () => {
    const root = dirname(dirname(exim.bin))
    const other = await startTestServer({
      plugins: [
        acceptRcpt(),
        eximBsmtp({ exim_path: relative(root, exim.bin), exim_args: [...exim.args], timeout: 30 }),
      ],
      baseDir: root,
      memoryQueue: false,
    })
    try {
      const n = exim.messages().length
      const r = await sendMailSession(other, 's@client.test', ['relative@example.test'], 'Subject: r\r\n\r\nr\r\n')
      assert.match(r.raw, /^250 2\.0\.0 Queued as /)
      assert.equal(exim.messages().length, n + 1)
    } finally {
      await other.close()
    }
  })

  // Exim's batched SMTP reader (smtp_setup_batch_msg) takes no ESMTP parameters at all: a MAIL
  // line with RET= gets "501 malformed address: RET=... may not follow <...>", whatever
  // dsn_advertise_hosts says. So DSN parameters cannot travel; a message carrying them (every
  // message Postfix relays has ORCPT) must still get through.
  it('a message with DSN parameters is queued (BSMTP cannot carry them, so they are not sent)', async () => {
    const n = exim.messages().length
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<s@client.test> RET=HDRS ENVID=id+7E1', 250)
    await c.send('RCPT TO:<dsn@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bdsn@example.test', 250)
    await c.send('DATA', 354)
    await c.send('Subject: dsn\r\n\r\nx\r\n.', /^250 2\.0\.0 Queued as /, 30_000)
    await c.quit()
    assert.equal(exim.messages().length, n + 1)
  })

  it("Exim's refusal is passed on faithfully (5xx with Exim's text)", async () => {
    const n = exim.messages().length
    const r = await sendMailSession(srv, 'sender@client.test', ['u@deny.test'], 'Subject: x\r\n\r\nx\r\n')
    assert.match(r.raw, /^550 .*denied by policy\r\n$/)
    assert.equal(exim.messages().length, n)
  })

  it('hostile envelope bytes reach Exim as data, never a shell', async () => {
    const n = exim.messages().length
    const r = await sendMailSession(
      srv,
      '"a;$(touch exim-pwned)`id`|"@client.test',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Exim's expansion syntax, on purpose
      ['"${run{/bin/true}}"@example.test'],
      'S: x\r\n\r\nx\r\n',
    )
    assert.equal(r.code, 250)
    assert.equal(exim.messages().length, n + 1)
    assert.equal(existsSync('exim-pwned'), false)
  })

  it('a message without a final line break still ends cleanly', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<s@client.test> BODY=8BITMIME', 250)
    await c.send('RCPT TO:<nocrlf@example.test>', 250)
    await c.send('BDAT 18 LAST', undefined)
    c.write('Subject: b\r\n\r\n.abc')
    const r = await c.reply(30_000)
    if (r.code === 500 || r.code === 502) return // BDAT not offered by this build
    assert.equal(r.code, 250, r.raw)
    // Pick this test's message by its recipient: the mailbox's file order is not arrival order.
    const last =
      exim
        .messages()
        .map((m) => m.toString('utf8'))
        .find((m) => m.includes('Envelope-to: nocrlf@example.test')) ?? ''
    assert.match(last, /\nSubject: b\n/)
    assert.ok(last.endsWith('\n\n.abc\n'), last)
  })
})

describe('queue/exim-bsmtp failure policy', () => {
  const cases = [
    { name: 'exits 1 without a reply line', path: '/bin/false', args: [], want: /^451 4\.3\.0 / },
    {
      name: 'hangs past the timeout',
      path: '/usr/bin/python3',
      args: ['-c', 'import time; time.sleep(20)'],
      want: /^451 4\.4\.2 Exim did not answer in time/,
    },
    {
      name: 'prints a 4xx',
      path: '/usr/bin/python3',
      args: ['-c', 'import sys; sys.stdin.read(); print("421 Lost incoming connection"); sys.exit(2)'],
      want: /^421 .*Lost incoming connection/,
    },
    {
      name: 'exits 0 without reading (the message was not all written)',
      path: '/bin/true',
      args: [],
      want: /^451 4\.3\.0 Error handing the message to Exim/,
      big: true,
    },
  ]
  for (const c of cases)
    it(c.name, async () => {
      const srv = await startTestServer({
        plugins: [acceptRcpt(), eximBsmtp({ exim_path: c.path, exim_args: c.args, timeout: 1 })],
        memoryQueue: false,
      })
      try {
        const body = c.big ? `Subject: x\r\n\r\n${`${'x'.repeat(900)}\r\n`.repeat(2000)}` : 'Subject: x\r\n\r\nx\r\n'
        const r = await sendMailSession(srv, 's@client.test', ['u@example.test'], body)
        assert.match(r.raw, c.want)
      } finally {
        await srv.close()
      }
    })

  it('refuses to start without Exim', async () => {
    await assert.rejects(
      startTestServer({ plugins: [eximBsmtp({ exim_path: '/nonexistent/rsmtp' })], memoryQueue: false }),
      /Exim not found at \/nonexistent\/rsmtp/,
    )
  })

  it('writes HELO, MAIL, RCPT and DATA as BSMTP lines', () => {
    assert.equal(
      bsmtpPreamble('mx.test', '', ['a@b.test', 'c@d.test']).toString(),
      'HELO mx.test\r\nMAIL FROM:<>\r\nRCPT TO:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n',
    )
  })
})
