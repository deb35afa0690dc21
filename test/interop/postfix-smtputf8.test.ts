/**
 * A real Postfix (Debian postfix, private instance) relays SMTPUTF8 mail for a UTF-8 recipient
 * through qtsmtpd: client → Postfix smtpd → (relayhost) qtsmtpd → queue/smtp-forward → next hop.
 * Postfix adds a DSN original recipient to every RCPT (`ORCPT=rfc822;+C3+BCser@localhost`, or
 * RFC 6533 `ORCPT=utf-8;\x{FC}ser@localhost` when its client sent one); qtsmtpd must accept it
 * and pass it on unchanged (RFC 3461 §5.2.1). Needs root (Postfix's master).
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import smtpForward from '../../src/plugins/queue/outbound/smtp-forward.ts'
import { acceptAllRecipients, SmtpTestClient, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { type Postfix, startPostfix } from '../peers/postfix.ts'

const isRoot = process.getuid?.() === 0

/** Records the parameters of every RCPT exactly as they came over the wire. */
function rcptRecorder(seen: string[]) {
  return definePlugin({
    name: 'test/rcpt-recorder',
    options: {},
    setup: () => ({
      hooks: {
        rcptParse: async (_ctx, raw) => {
          seen.push(raw.params)
          return pass()
        },
      },
    }),
  })()
}

describe('Postfix relays SMTPUTF8 mail through qtsmtpd', {
  skip: !isRoot && 'needs root (Postfix master)',
  timeout: 120_000,
}, () => {
  const atRelay: string[] = []
  const atNextHop: string[] = []
  let nextHop: TestServer
  let relay: TestServer
  let postfix: Postfix

  before(async () => {
    nextHop = await startTestServer({ plugins: [rcptRecorder(atNextHop), acceptAllRecipients()] })
    relay = await startTestServer({
      plugins: [
        rcptRecorder(atRelay),
        acceptAllRecipients(),
        smtpForward({ host: '127.0.0.1', port: nextHop.port, tls: 'none' }),
      ],
      memoryQueue: false,
    })
    postfix = await startPostfix({
      main: { relayhost: `[127.0.0.1]:${relay.port}`, smtpd_recipient_restrictions: 'permit_mynetworks, reject' },
      smtpd: [{}],
    })
  })
  after(async () => {
    await postfix?.stop()
    await relay?.close()
    await nextHop?.close()
  })

  async function arrived(subject: string): Promise<string> {
    for (let i = 0; i < 300; i++) {
      // A bounce quotes the subject too, but goes to the sender.
      const m = nextHop.queued.find((q) => q.to.includes('üser@localhost') && q.text.includes(`Subject: ${subject}`))
      if (m !== undefined) return m.text
      await new Promise((r) => setTimeout(r, 100))
    }
    throw new Error(`"${subject}" did not arrive; postfix log:\n${postfix.log()}`)
  }

  async function sendThroughPostfix(rcpt: string, subject: string): Promise<void> {
    const c = await SmtpTestClient.connect(postfix.port)
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<sender@client.test> SMTPUTF8', 250)
    await c.send(rcpt, 250)
    await c.send('DATA', 354)
    await c.send(`Subject: ${subject}\r\n\r\nfür dich\r\n.`, /^250 2\.0\.0 Ok: queued/, 30_000)
    await c.quit()
  }

  test('ORCPT=rfc822 with UTF-8 in its xtext reaches the next hop unchanged', async () => {
    await sendThroughPostfix('RCPT TO:<üser@localhost>', 'orcpt-rfc822')
    const text = await arrived('orcpt-rfc822')
    assert.match(text, /\r\n\r\nfür dich\r\n$/)
    assert.deepEqual(atRelay, ['ORCPT=rfc822;+C3+BCser@localhost'])
    assert.deepEqual(atNextHop, atRelay)
  })

  test('ORCPT=utf-8 (RFC 6533) reaches the next hop unchanged', async () => {
    atRelay.length = 0
    atNextHop.length = 0
    await sendThroughPostfix('RCPT TO:<üser@localhost> ORCPT=utf-8;üser@localhost', 'orcpt-utf8')
    await arrived('orcpt-utf8')
    // Postfix re-encodes the original recipient as the 7-bit utf-8-addr-xtext.
    assert.deepEqual(atRelay, ['ORCPT=utf-8;\\x{FC}ser@localhost'])
    assert.deepEqual(atNextHop, atRelay)
  })
})
