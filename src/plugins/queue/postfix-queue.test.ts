import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type Postfix, startPostfix } from '../../../test/peers/postfix.ts'
import {
  AttrReader,
  attrList,
  cleanupStatusReply,
  contentRecords,
  dsnMailAttributes,
  dsnRcptAttributes,
  record,
} from '../../clients/postfix-cleanup/postfix-cleanup.ts'
import { type ExtensionSet, parseMailParams, parseRcptParams } from '../../protocol/mail-params.ts'
import { startTestServer, type TestServer } from '../../testing/test-server.ts'
import { acceptRcpt, sendMailSession } from '../test-support.ts'
import postfixQueue from './postfix-queue.ts'

describe('queue/postfix-queue against a real Postfix (private instance, cleanup socket)', () => {
  let pf: Postfix
  let srv: TestServer
  before(async () => {
    // No listener: mail comes in through the cleanup socket; every recipient lands in one Maildir.
    pf = await startPostfix({
      maildir: 'catch-all',
      main: { header_checks: 'regexp:{conf}/header_checks', message_size_limit: '1000000' },
      files: {
        header_checks: '/^Subject: reject-me/ REJECT no thanks\n/^Subject: defer-me/ REJECT 4.7.1 later please\n',
      },
    })
    srv = await startTestServer({
      plugins: [acceptRcpt(), postfixQueue({ socket: [pf.cleanupSocket], flags: ['FLAG_MASK_EXTERNAL'], timeout: 20 })],
      memoryQueue: false,
    })
  })
  after(async () => {
    await srv?.close()
    await pf?.stop()
  })

  it("the message reaches Postfix's queue and mailbox; the 250 carries Postfix's queue id", async () => {
    const long = 'x'.repeat(5000)
    const content = `Subject: via postfix\r\nMessage-ID: <p1@client.test>\r\n\r\nline\r\n..dot\r\n${long}\r\nend\r\n`
    const r = await sendMailSession(srv, 'sender@client.test', ['u1@example.test'], content)
    assert.match(r.raw, /^250 2\.0\.0 Queued! <p1@client\.test> \(Queue-Id: [0-9A-Za-z]+\)\r\n$/)
    const qid = /Queue-Id: ([0-9A-Za-z]+)/.exec(r.raw)?.[1] ?? ''
    const text = await waitForMessage(pf, (m) => m.includes('Message-ID: <p1@client.test>'))
    assert.match(text, /^Return-Path: <sender@client\.test>\n/)
    assert.match(text, /\nReceived: from client\.test \(unknown \[127\.0\.0\.1\]\)\n\tby mx\.test \(qtsmtpd\)/)
    assert.ok(text.includes('\nSubject: via postfix\nMessage-ID: <p1@client.test>\n'), text)
    assert.ok(text.endsWith(`\n\nline\n.dot\n${long}\nend\n`), text.slice(-200))
    assert.match(pf.log(), new RegExp(`${qid}: message-id=<p1@client\\.test>`))
    assert.match(pf.log(), new RegExp(`${qid}: to=<u1@example\\.test>.*status=sent`))
  })

  it('several recipients, an empty sender and an 8-bit body', async () => {
    const n = pf.messages().length
    const content = 'Subject: b\r\nMessage-ID: <p2@client.test>\r\n\r\nh\u00e9llo\r\n'
    const r = await sendMailSession(srv, '', ['a@example.test', 'b@example.test'], content)
    assert.equal(r.code, 250, r.raw)
    assert.equal((await pf.waitFor(n + 2)).length, n + 2)
    // Found by content: the mailbox's file names do not give the order of arrival.
    const copies = pf
      .messages()
      .map((m) => m.toString('utf8'))
      .filter((m) => m.includes('Message-ID: <p2@client.test>'))
    assert.equal(copies.length, 2)
    for (const m of copies) {
      assert.match(m, /^Return-Path: <MAILER-DAEMON>|^Return-Path: <>/)
      assert.ok(m.endsWith('\n\nh\u00e9llo\n'), m)
    }
  })

  it('a relative socket path is taken from the install directory, not the working directory', async () => {
    const other = await startTestServer({
      plugins: [acceptRcpt(), postfixQueue({ socket: ['public/cleanup'], timeout: 20 })],
      baseDir: pf.queueDir,
      memoryQueue: false,
    })
    try {
      const r = await sendMailSession(other, 's@client.test', ['u@example.test'], 'Subject: relative\r\n\r\nx\r\n')
      assert.match(r.raw, /^250 2\.0\.0 Queued! \(Queue-Id: [0-9A-Za-z]+\)\r\n$/)
    } finally {
      await other.close()
    }
  })

  it('DSN parameters reach Postfix: its success notice has the ENVID, the ORCPT and, for RET=HDRS, only the headers', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<dsn-sender@client.test> RET=HDRS ENVID=qt+7Eid+2B1', 250)
    await c.send('RCPT TO:<dsn-rcpt@example.test> NOTIFY=SUCCESS ORCPT=rfc822;orig+2Brcpt@example.test', 250)
    await c.send('DATA', 354)
    await c.send('Subject: dsn please\r\nMessage-ID: <dsn1@client.test>\r\n\r\nsecret body line\r\n.', 250)
    await c.quit()
    const notice = await waitForMessage(pf, (m) => m.includes('Content-Type: message/delivery-status'))
    assert.match(notice, /^Original-Envelope-Id: qt~id\+1$/m)
    assert.match(notice, /^Original-Recipient: rfc822;orig\+rcpt@example\.test$/m)
    assert.match(notice, /^Final-Recipient: rfc822; ?dsn-rcpt@example\.test$/m)
    assert.match(notice, /^Action: delivered$/m)
    assert.match(notice, /Content-Type: text\/rfc822-headers/)
    assert.ok(notice.includes('Message-ID: <dsn1@client.test>'), notice)
    assert.ok(!notice.includes('secret body line'), 'RET=HDRS: no body in the notice')
  })

  it("cleanup's refusals keep their meaning: header_checks REJECT → 550, REJECT 4.7.1 → 451", async () => {
    const r1 = await sendMailSession(srv, 's@client.test', ['u@example.test'], 'Subject: reject-me\r\n\r\nx\r\n')
    assert.match(r1.raw, /^550 5\.7\.1 no thanks\r\n$/)
    const r2 = await sendMailSession(srv, 's@client.test', ['u@example.test'], 'Subject: defer-me\r\n\r\nx\r\n')
    assert.match(r2.raw, /^451 4\.7\.1 later please\r\n$/)
  })

  it('a message over message_size_limit → 552', async () => {
    const big = `Subject: big\r\n\r\n${`${'y'.repeat(998)}\r\n`.repeat(1100)}`
    const r = await sendMailSession(srv, 's@client.test', ['u@example.test'], big)
    assert.match(r.raw, /^552 5\.3\.4 /)
  })
})

/** The first delivered message that `wanted` picks, waiting (bounded) for it: mailbox order is not arrival order. */
async function waitForMessage(pf: Postfix, wanted: (text: string) => boolean): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const found = pf
      .messages()
      .map((m) => m.toString('utf8'))
      .find(wanted)
    if (found !== undefined) return found
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no such message was delivered; Postfix's log:\n${pf.log()}`)
}

describe('queue/postfix-queue failure policy', () => {
  it('no cleanup listening → 451, and the next socket in the list is tried', async () => {
    const srv = await startTestServer({
      plugins: [acceptRcpt(), postfixQueue({ socket: ['/nonexistent/cleanup'] })],
      memoryQueue: false,
    })
    try {
      const r = await sendMailSession(srv, 's@client.test', ['u@example.test'], 'Subject: x\r\n\r\nx\r\n')
      assert.match(r.raw, /^451 4\.3\.0 Unable to queue message/)
    } finally {
      await srv.close()
    }
  })
  it('rejects unknown flags and FLAG_DISCARD at start-up', async () => {
    await assert.rejects(startTestServer({ plugins: [postfixQueue({ flags: ['FLAG_NOPE'] })] }), /unknown cleanup flag/)
    await assert.rejects(startTestServer({ plugins: [postfixQueue({ flags: ['FLAG_DISCARD'] })] }), /FLAG_DISCARD/)
  })
  it('qpsmtpd argument syntax: a socket path then flags', () => {
    const t = postfixQueue.definition.translateArgs
    assert.deepEqual(t?.(['/var/spool/postfix/public/cleanup', 'FLAG_FILTER', 'FLAG_BCC_OK']), [
      'socket',
      '/var/spool/postfix/public/cleanup',
      'flags',
      'FLAG_FILTER,FLAG_BCC_OK',
    ])
    assert.deepEqual(t?.(['FLAG_MASK_EXTERNAL']), ['flags', 'FLAG_MASK_EXTERNAL'])
    assert.deepEqual(t?.(['127.0.0.1:10025']), ['socket', '127.0.0.1:10025'])
    assert.deepEqual(t?.(['public/cleanup', 'FLAG_FILTER']), ['socket', 'public/cleanup', 'flags', 'FLAG_FILTER'])
  })
})

describe('cleanup protocol pieces', () => {
  it('record lengths are base-128 little-endian', () => {
    assert.deepEqual(record('N', 'ab'), Buffer.from([0x4e, 2, 0x61, 0x62]))
    const r = record('N', Buffer.alloc(300))
    assert.deepEqual(r.subarray(0, 3), Buffer.from([0x4e, 0xac, 0x02]))
  })
  it('attribute lists round-trip, split anywhere', () => {
    const wire = Buffer.concat([attrList({ protocol: 'cleanup_protocol', queue_id: 'ABC' }), attrList({ status: '0' })])
    for (let i = 0; i <= wire.length; i++) {
      const r = new AttrReader()
      r.push(wire.subarray(0, i))
      r.push(wire.subarray(i))
      assert.deepEqual(r.shift(), { protocol: 'cleanup_protocol', queue_id: 'ABC' })
      assert.deepEqual(r.shift(), { status: '0' })
    }
  })
  it('content lines become NORM records without line ends; long lines use CONT', async () => {
    const recs: Buffer[] = []
    const input = ['a\r', '\nbb\r\n', 'c'.repeat(5), '\r\nlast']
    for await (const r of contentRecords(Readable.from(input.map((s) => Buffer.from(s))), 3)) recs.push(r)
    assert.deepEqual(
      recs.map((r) => `${String.fromCharCode(r[0] ?? 0)}:${r.subarray(2).toString()}`),
      ['N:a', 'N:bb', 'L:ccc', 'N:cc', 'L:las', 'N:t'],
    )
  })
  const dsnOnly: ExtensionSet = {
    size: false,
    eightBitMime: false,
    binaryMime: false,
    smtputf8: false,
    dsn: true,
    requireTls: false,
    auth: false,
  }
  it("DSN parameters become smtpd(8)'s attributes (dsn_mask.h bits); absent ones stay absent", () => {
    const mail = parseMailParams('RET=FULL ENVID=a+2Bb', dsnOnly)
    assert.ok(mail.ok)
    assert.deepEqual(dsnMailAttributes(mail.value), { envelope_id: 'a+b', ret_flags: '1' })
    const rcpt = parseRcptParams('NOTIFY=DELAY,FAILURE ORCPT=utf-8;\\x{FC}ser@x.test', dsnOnly, {
      smtputf8: false,
    })
    assert.ok(rcpt.ok)
    assert.deepEqual(dsnRcptAttributes(rcpt.value), { notify_flags: '12', dsn_orig_rcpt: 'utf-8;\u00fcser@x.test' })
    const never = parseRcptParams('NOTIFY=NEVER', dsnOnly, { smtputf8: false })
    assert.ok(never.ok)
    assert.deepEqual(dsnRcptAttributes(never.value), { notify_flags: '1' })
    const none = parseMailParams('', dsnOnly)
    assert.ok(none.ok)
    assert.deepEqual(dsnMailAttributes(none.value), {})
  })
  it('status replies follow cleanup_strerror', () => {
    assert.deepEqual(cleanupStatusReply(1 << 8, ''), { code: 451, enhanced: '4.7.1', text: 'service unavailable' })
    assert.deepEqual(cleanupStatusReply(1 << 2, ''), { code: 552, enhanced: '5.3.4', text: 'message file too big' })
    assert.deepEqual(cleanupStatusReply((1 << 3) | (1 << 8), '4.7.1 x'), { code: 451, enhanced: '4.7.1', text: 'x' })
    assert.deepEqual(cleanupStatusReply(1 << 3, '5.7.1 spam'), { code: 550, enhanced: '5.7.1', text: 'spam' })
  })
})
