import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../testing/index.ts'
import parseAddrWithhelo from './parse-addr-withhelo.ts'

describe('mail/parse-addr-withhelo', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [parseAddrWithhelo(), acceptAllRecipients()] })
  })
  after(() => srv.close())

  it('after HELO, MAIL and RCPT parameters are refused with 501 5.5.4', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('HELO client.example', 250)
    assert.equal(
      (await c.send('MAIL FROM:<s@client.example> SIZE=10', 501))?.raw,
      '501 5.5.4 No parameters allowed in MAIL\r\n',
    )
    await c.send('MAIL FROM:<s@client.example>', 250)
    assert.equal(
      (await c.send('RCPT TO:<u@local.test> NOTIFY=NEVER', 501))?.raw,
      '501 5.5.4 No parameters allowed in RCPT\r\n',
    )
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: x\r\n\r\n.', 250)
    await c.quit()
    assert.equal(srv.queued.length, 1)
    srv.queued.length = 0
  })

  it('after EHLO, parameters are parsed as usual', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.example', 250)
    await c.send('MAIL FROM:<s@client.example> SIZE=10', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.quit()
  })

  it('HELO after EHLO switches to RFC 821 rules', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.example', 250)
    await c.send('HELO client.example', 250)
    await c.send('MAIL FROM:<> BODY=8BITMIME', /^501 5\.5\.4 No parameters allowed in MAIL/)
    await c.quit()
  })
})
