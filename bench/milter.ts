/**
 * `node bench/milter.ts [--messages N] [--concurrency C]`: what a milter costs per message.
 * The same sessions (EHLO, one message of ~2 KB, QUIT; and ten messages per session) to qtsmtpd
 * on loopback without a milter, with a scripted milter that answers continue to everything
 * (the protocol's own cost: a connection and negotiation per session, one round trip per
 * event), and with Debian's OpenDKIM signing every message. Messages are discarded after the
 * milter (queue/discard), so the queue costs nothing. Prints messages per second and the
 * mean time per message for each.
 */
import { parseArgs } from 'node:util'
import type { PluginChoice } from '../src/host/define-plugin.ts'
import milter from '../src/plugins/milter/index.ts'
import discard from '../src/plugins/queue/discard.ts'
import { SmtpTestClient } from '../src/testing/client.ts'
import { acceptAllRecipients, startTestServer } from '../src/testing/index.ts'
import { startFakeMilter } from '../test/peers/fake-milter.ts'
import { startOpenDkim } from '../test/peers/opendkim.ts'

const { values } = parseArgs({
  options: { messages: { type: 'string', default: '1000' }, concurrency: { type: 'string', default: '4' } },
})
const total = Number(values.messages)
const concurrency = Number(values.concurrency)

const body = `${'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.\r\n'.repeat(25)}`
const message = [
  'From: Alice <alice@example.org>',
  'To: bob@example.net',
  'Subject: bench',
  'Date: Fri, 4 Dec 2026 10:00:00 +0000',
  'Message-ID: <bench@example.org>',
  '',
  body,
].join('\r\n')

async function run(label: string, plugins: PluginChoice[], perSession: number) {
  const srv = await startTestServer({
    plugins: [...plugins, acceptAllRecipients(), discard()],
    memoryQueue: false,
    logLevel: 3,
  })
  try {
    let sent = 0
    const worker = async () => {
      while (sent < total) {
        const c = await SmtpTestClient.connect(srv.port)
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        for (let i = 0; i < perSession && sent < total; i++, sent++) {
          await c.send('MAIL FROM:<alice@example.org>', 250)
          await c.send('RCPT TO:<bob@example.net>', 250)
          await c.send('DATA', 354)
          c.write(`${message}.\r\n`)
          await c.expect(250, 30_000)
        }
        await c.quit()
      }
    }
    const started = performance.now()
    await Promise.all(Array.from({ length: concurrency }, worker))
    const ms = performance.now() - started
    console.log(
      `${label.padEnd(44)} ${String(Math.round((total / ms) * 1000)).padStart(6)} msg/s  ${(
        (ms * concurrency) / total
      ).toFixed(2)} ms/msg`,
    )
  } finally {
    await srv.close()
  }
}

const fake = await startFakeMilter()
const dkim = await startOpenDkim({ domain: 'example.org', selector: 'bench' })
// The same OpenDKIM on a Unix socket: no TCP delayed ACKs between its reply packets.
const dkimUnix = await startOpenDkim({
  domain: 'example.org',
  selector: 'bench',
  settings: { Socket: `local:${dkim.dir}.sock` },
})
try {
  console.log(`${total} messages, ${concurrency} sessions at a time`)
  for (const perSession of [1, 10]) {
    const n = `${perSession} msg/session`
    await run(`no milter, ${n}`, [], perSession)
    await run(`scripted milter (continue), ${n}`, [milter({ name: 'fake', socket: fake.socket })], perSession)
    await run(`OpenDKIM signing (TCP), ${n}`, [milter({ name: 'opendkim', socket: dkim.socket })], perSession)
    await run(
      `OpenDKIM signing (Unix socket), ${n}`,
      [milter({ name: 'opendkim', socket: dkimUnix.socket })],
      perSession,
    )
  }
} finally {
  await fake.close()
  await dkim.close()
  await dkimUnix.close()
}
