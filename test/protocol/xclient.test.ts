/**
 * XCLIENT and XFORWARD (Postfix): advertised to and accepted from `xclient_trusted` only;
 * the forwarded client reaches plugins (connect hooks run again after XCLIENT) and the
 * Received header; strict attribute syntax.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Peer } from '../../src/host/context.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import rcptOk from '../../src/plugins/rcpt/ok.ts'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'

const connects: { remote: Peer; host: string | undefined; relay: boolean }[] = []
const capture = definePlugin({
  name: 'test/capture',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        connects.push({
          remote: ctx.connection.remote,
          host: ctx.connection.remoteHost,
          relay: ctx.connection.relayClient,
        })
        return pass()
      },
    },
  }),
})

const XCLIENT_KW = '250-XCLIENT NAME ADDR PORT PROTO HELO LOGIN DESTADDR DESTPORT'
const XFORWARD_KW = 'XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE'

describe('XCLIENT/XFORWARD from an untrusted client', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [rcptOk()], config: { rcpthosts: 'example.com' } })
  })
  after(() => srv.close())

  test('not advertised, and refused with 550 5.7.0', async () => {
    const c = await srv.connect()
    await c.expect(220)
    const ehlo = await c.send('EHLO client.test', 250)
    assert.doesNotMatch(ehlo?.raw ?? '', /XCLIENT|XFORWARD/)
    await c.send('XCLIENT ADDR=192.0.2.1', '550 5.7.0 Error: insufficient authorization\r\n')
    await c.send('XFORWARD ADDR=192.0.2.1', '550 5.7.0 Error: insufficient authorization\r\n')
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<u@elsewhere.test>', /^550 5\.7\.1 /)
    c.destroy()
  })
})

describe('XCLIENT/XFORWARD from a trusted client', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      plugins: [capture(), rcptOk()],
      config: { rcpthosts: 'example.com', xclient_trusted: ['127.0.0.0/8'] },
    })
  })
  after(() => srv.close())

  test('advertised in EHLO', async () => {
    const c = await srv.connect()
    await c.expect(220)
    const ehlo = await c.send('EHLO proxy.test', 250)
    assert.ok(ehlo?.raw.includes(`${XCLIENT_KW}\r\n`), ehlo?.raw)
    assert.ok(ehlo?.raw.includes(XFORWARD_KW))
    c.destroy()
  })

  test('XCLIENT: the greeting again, connect hooks see the new client, Received names it', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO proxy.test', 250)
    const before = connects.length
    await c.send(
      'XCLIENT NAME=client.example ADDR=192.0.2.9 PORT=40000 PROTO=ESMTP HELO=orig.example',
      /^220 mx\.test ESMTP/,
    )
    assert.deepEqual(connects.slice(before), [
      { remote: { ip: '192.0.2.9', port: 40000 }, host: 'client.example', relay: false },
    ])
    // The session starts over: EHLO first.
    await c.send('MAIL FROM:<a@client.test>', 503)
    const ehlo = await c.send('EHLO orig.example', 250)
    assert.match(ehlo?.raw ?? '', /^250-mx\.test Hello orig\.example \[192\.0\.2\.9\]/)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: x\r\n\r\nhi\r\n.', 250)
    assert.match(srv.queued.at(-1)?.text ?? '', /^Received: from orig\.example \(client\.example \[192\.0\.2\.9\]\)/)
    c.destroy()
  })

  test('XCLIENT LOGIN makes an authenticated relay client; IPV6: addresses; [UNAVAILABLE]', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('XCLIENT ADDR=IPV6:2001:DB8:0:0:0:0:0:7 NAME=[UNAVAILABLE] LOGIN=alice', 220)
    const last = connects.at(-1)
    assert.deepEqual(last, {
      remote: { ip: '2001:db8::7', port: last?.remote.port ?? -1 },
      host: undefined,
      relay: true,
    })
    await c.send('EHLO orig.example', 250)
    await c.send('MAIL FROM:<alice@example.com>', 250)
    await c.send('RCPT TO:<u@elsewhere.test>', 250)
    c.destroy()
  })

  test('refused inside a transaction, and with bad attributes', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO proxy.test', 250)
    await c.send('XCLIENT', '501 5.5.4 Syntax: XCLIENT attribute=value...\r\n')
    await c.send('XCLIENT FOO=bar', '501 5.5.4 Bad XCLIENT attribute name: FOO\r\n')
    await c.send('XCLIENT ADDR=300.1.1.1', '501 5.5.4 Bad XCLIENT ADDR syntax: 300.1.1.1\r\n')
    await c.send('XCLIENT PORT=65536', /^501 5\.5\.4 Bad XCLIENT PORT/)
    await c.send('XCLIENT HELO=a+0D+0Ab', /^501 5\.5\.4 Bad XCLIENT HELO/)
    await c.send('XFORWARD LOGIN=alice', '501 5.5.4 Bad XFORWARD attribute name: LOGIN\r\n')
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('XCLIENT ADDR=192.0.2.1', '503 5.5.1 Error: MAIL transaction in progress\r\n')
    await c.send('XFORWARD ADDR=192.0.2.1', '503 5.5.1 Error: MAIL transaction in progress\r\n')
    c.destroy()
  })

  test('XFORWARD: 250, then the forwarded client is in the Received header and visible to plugins', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO filter.test', 250)
    await c.send('XFORWARD NAME=mail.sender.example ADDR=198.51.100.4 PORT=1234 PROTO=ESMTP HELO=sender.example', 250)
    await c.send('XFORWARD IDENT=4Xyz123 SOURCE=REMOTE', '250 2.0.0 OK\r\n')
    await c.send('MAIL FROM:<a@sender.example>', 250)
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: x\r\n\r\nhi\r\n.', 250)
    const msg = srv.queued.at(-1)?.text ?? ''
    assert.match(msg, /^Received: from sender\.example \(mail\.sender\.example \[198\.51\.100\.4\]\)/)
    assert.ok(srv.logs.some((e) => /XFORWARD from 127\.0\.0\.1: IDENT=4Xyz123 SOURCE=REMOTE/.test(e.message)))
    c.destroy()
  })
})
