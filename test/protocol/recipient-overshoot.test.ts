/**
 * Recipient overshoot (RFC 5321 §4.5.3.1.10, issue 18 F5): a client that pipelines more RCPTs
 * than recipient_limit (RFC 2920 allows it) gets 452 for the extra ones and goes on with DATA to
 * the recipients it got. As in Postfix (smtpd_recipient_overshoot_limit), the 452s count as
 * errors only past recipient_overshoot_limit, so they cannot end the session at hard_error_limit.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { acceptAllRecipients, Replies, startTestServer } from '../../src/testing/index.ts'

const line = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

test('1,021 pipelined RCPTs and DATA at the default limits: 1,000 recipients get the message', async () => {
  const srv = await startTestServer({ plugins: [acceptAllRecipients()], logLevel: 3 })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    let group = 'MAIL FROM:<a@remote.test>\r\n'
    for (let i = 0; i < 1021; i++) group += `RCPT TO:<user${i}@local.test>\r\n`
    c.write(`${group}DATA\r\n`)
    await c.expect(line(Replies.senderOk), 10_000)
    for (let i = 0; i < 1000; i++) await c.expect(line(Replies.recipientOk), 10_000)
    for (let i = 0; i < 21; i++) await c.expect(line(Replies.tooManyRecipients), 10_000)
    await c.expect(line(Replies.startData), 10_000)
    await c.send('Subject: overshoot\r\n\r\nx\r\n.', /^250 2\.0\.0 Queued as /, 10_000)
    await c.quit()
    assert.equal(srv.queued.length, 1)
    assert.equal(srv.queued[0]?.to.length, 1000)
    assert.equal(srv.queued[0]?.to.at(-1), 'user999@local.test')
  } finally {
    await srv.close()
  }
})

test('past recipient_overshoot_limit each extra RCPT is an error, up to hard_error_limit', async () => {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients()],
    limits: { recipients: 2, recipientOvershoot: 3, hardErrors: 2 },
    logLevel: 3,
  })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<a@remote.test>', 250)
    for (let i = 0; i < 2; i++) await c.send(`RCPT TO:<u${i}@local.test>`, line(Replies.recipientOk))
    for (let i = 0; i < 3; i++) await c.send(`RCPT TO:<x${i}@local.test>`, line(Replies.tooManyRecipients))
    await c.send('RCPT TO:<y0@local.test>', line(Replies.tooManyRecipients))
    await c.send('RCPT TO:<y1@local.test>', line(Replies.tooManyErrors))
    await c.closed()
    assert.equal(srv.queued.length, 0)
  } finally {
    await srv.close()
  }
})
