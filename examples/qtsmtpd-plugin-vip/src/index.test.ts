/**
 * The plugin in a real server on an ephemeral port, through qtsmtpd's test harness
 * (`qtsmtpd/testing`): a raw SMTP client and the messages the in-memory queue received.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTestServer } from 'qtsmtpd/testing'
import vip from './index.ts'

test('VIPs get their mail, others are refused', async () => {
  const srv = await startTestServer({ plugins: [vip({ users: ['alice'], refuse_others: true })] })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<s@sender.test>', 250)
    await c.send('RCPT TO:<Alice@mx.test>', /^250 /)
    await c.send('RCPT TO:<carol@mx.test>', /^550 5\.1\.1 No such VIP here/)
    await c.send('DATA', 354)
    await c.send('Subject: hi\r\n\r\nhello\r\n.', 250)
    await c.quit()
    assert.equal(srv.queued.length, 1)
    assert.deepEqual(srv.queued[0]?.to, ['Alice@mx.test'])
  } finally {
    await srv.close()
  }
})
