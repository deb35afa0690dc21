/**
 * qtsmtpd with a real Postfix (Debian postfix, private instance in a temp dir):
 * - after-queue content filter: Postfix (content_filter=smtp:[127.0.0.1]:Q, sending XFORWARD)
 *   → qtsmtpd → queue/smtp-forward → Postfix re-injection smtpd (content_filter=) → sink;
 * - before-queue proxy filter: Postfix (smtpd_proxy_filter=127.0.0.1:Q) → qtsmtpd in the
 *   client's session → queue/smtp-forward → re-injection smtpd → sink.
 * In both, qtsmtpd's Received header names the client Postfix saw (XFORWARD). Needs root.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { type Cli, makeConfig, startCli, type TestConfig } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { type Postfix, startPostfix } from '../peers/postfix.ts'
import { rawConnect } from '../protocol/raw-connect.ts'

const isRoot = process.getuid?.() === 0

async function sendFrom(port: number, subject: string): Promise<string> {
  const raw = await rawConnect(port, '127.0.0.1', '127.0.0.5')
  let out = ''
  raw.socket.on('data', (d: string) => {
    out += d
  })
  const waitFor = async (re: RegExp, ms = 15_000) => {
    const end = Date.now() + ms
    while (!re.test(out) && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
    assert.match(out, re)
  }
  await waitFor(/^220 .*\r\n/m)
  raw.socket.write('EHLO client.test\r\n')
  await waitFor(/^250 .*\r\n/m)
  out = ''
  raw.socket.write('MAIL FROM:<a@client.test>\r\n')
  await waitFor(/^250 /m)
  out = ''
  raw.socket.write('RCPT TO:<u@dest.test>\r\n')
  await waitFor(/^250 /m)
  out = ''
  raw.socket.write('DATA\r\n')
  await waitFor(/^354 /m)
  out = ''
  raw.socket.write(`Subject: ${subject}\r\n\r\nthrough postfix\r\n.\r\n`)
  await waitFor(/^250 .*\r\n/m, 30_000)
  const queued = out
  raw.socket.write('QUIT\r\n')
  await raw.closed
  return queued
}

describe('Postfix integration', { skip: !isRoot && 'needs root (Postfix master)', timeout: 120_000 }, () => {
  let sink: TestServer
  let cfg: TestConfig
  let filter: Cli
  let postfix: Postfix
  const ports = { filter: 0, afterQueue: 0, beforeQueue: 0, reinject: 0 }

  before(async () => {
    sink = await startTestServer({ plugins: [acceptAllRecipients()] })
    for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort()
    cfg = makeConfig(['relay', 'rcpt_ok', `queue/smtp-forward 127.0.0.1 ${ports.reinject}`], {
      relayclients: '127.0.0.1',
      xclient_trusted: '127.0.0.1',
    })
    filter = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${ports.filter}`])
    await filter.waitFor(/ready: pid/)
    postfix = await startPostfix({
      main: {
        relayhost: `[127.0.0.1]:${sink.port}`,
        smtpd_recipient_restrictions: 'permit_mynetworks, reject',
        smtp_send_xforward_command: 'yes',
        smtpd_authorized_xforward_hosts: '127.0.0.0/8',
      },
      smtpd: [
        { port: ports.afterQueue, options: { content_filter: `smtp:[127.0.0.1]:${ports.filter}` } },
        { port: ports.beforeQueue, options: { smtpd_proxy_filter: `127.0.0.1:${ports.filter}`, content_filter: '' } },
        {
          port: ports.reinject,
          options: {
            content_filter: '',
            receive_override_options: 'no_unknown_recipient_checks,no_header_body_checks,no_milters',
          },
        },
      ],
    })
  })
  after(async () => {
    await postfix?.stop()
    filter?.kill('SIGKILL')
    cfg?.remove()
    await sink?.close()
  })

  async function arrived(subject: string): Promise<string> {
    for (let i = 0; i < 300; i++) {
      const m = sink.queued.find((q) => q.text.includes(`Subject: ${subject}`))
      if (m) return m.text
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(
      `"${subject}" did not arrive; postfix log:\n${postfix.log()}\nqtsmtpd log:\n${filter.lines.join('\n')}`,
    )
  }

  test('after-queue content filter: Postfix → qtsmtpd → Postfix → destination', async () => {
    const reply = await sendFrom(ports.afterQueue, 'after-queue')
    assert.match(reply, /^250 2\.0\.0 Ok: queued as /)
    const msg = await arrived('after-queue')
    // qtsmtpd's own Received line names the original client, passed on by XFORWARD.
    assert.match(msg, /^Received: from client\.test \(\S+ \[127\.0\.0\.5\]\)\r\n\s+by mx\.test /m)
    assert.ok(filter.lines.some((l) => /XFORWARD from 127\.0\.0\.1: .*ADDR=127\.0\.0\.5/.test(l)))
  })

  test('before-queue proxy filter: qtsmtpd answers inside the client session', async () => {
    const reply = await sendFrom(ports.beforeQueue, 'before-queue')
    // Postfix passes qtsmtpd's reply (which came after the re-injection's 250) to the client.
    assert.match(reply, /^250 2\.0\.0 /)
    const msg = await arrived('before-queue')
    assert.match(msg, /^Received: from client\.test \(\S+ \[127\.0\.0\.5\]\)\r\n\s+by mx\.test /m)
  })
})
