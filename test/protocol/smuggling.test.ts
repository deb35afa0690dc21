/**
 * SMTP smuggling (security.md §1.1; CVE-2023-51764 family): every non-standard end-of-data of the
 * hannob/smtpsmug and SEC Consult lists, in DATA and in BDAT, under both bareLineEndings policies.
 * The oracle is the queue: at most one message, never a second 250 or a 354 for the smuggled part.
 * Also the pipelining-sync case (Postfix 3.9) and the early talker.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  acceptAllRecipients,
  Replies,
  type SmtpTestClient,
  startTestServer,
  type TestServer,
} from '../../src/testing/index.ts'

const variants = [
  '\n.\n',
  '\r.\r',
  '\r.\n',
  '\n.\r',
  '\n.\r\n',
  '\r\n.\n',
  '\r.\r\n',
  '\r\n.\r',
  '\r\n\x00.\r\n',
  '\r\n.\x00\r\n',
  '\r\n.\r\r\n',
  '\r\r\n.\r\r\n',
] as const

const smuggled =
  'MAIL FROM:<spoof@victim.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n'
const payload = (x: string) => `Subject: t\r\n\r\nbody${x}${smuggled}`
const rendered = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

async function transaction(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  await c.send('MAIL FROM:<a@remote.test>', '250 2.1.0')
  await c.send('RCPT TO:<u@local.test>', '250 2.1.5')
  return c
}

/** After the one reply for the message, nothing else may come (no 250/354 for the smuggled part). */
async function assertNoMoreReplies(c: SmtpTestClient): Promise<void> {
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(
    c.pending().map((r) => r.raw),
    [],
  )
  await c.send('QUIT', '221 2.0.0')
}

for (const policy of ['reject', 'normalize'] as const) {
  describe(`smuggling, bareLineEndings=${policy}`, () => {
    let srv: TestServer
    before(async () => {
      srv = await startTestServer({
        plugins: [acceptAllRecipients()],
        policies: { bareLineEndings: policy },
        logLevel: 3,
      })
    })
    after(() => srv.close())

    for (const x of variants) {
      test(`DATA with ${JSON.stringify(x)}`, async () => {
        const before = srv.queued.length
        const c = await transaction(srv)
        await c.send('DATA', rendered(Replies.startData))
        c.write(Buffer.from(payload(x), 'latin1'))
        const r = await c.reply()
        const added = srv.queued.length - before
        // NUL is content (security.md §1.11), not a line ending: both policies accept one message.
        if (policy === 'reject' && !x.includes('\x00')) {
          assert.equal(r.raw, rendered(Replies.bareLineEnding))
          assert.equal(added, 0)
        } else {
          assert.match(r.raw, /^250 2\.0\.0 Queued as \w+\r\n$/)
          assert.equal(added, 1)
          const text = srv.queued.at(-1)?.text ?? ''
          assert.match(text, /MAIL FROM:<spoof@victim\.test>\r\nRCPT TO:<u@local\.test>\r\nDATA\r\nSubject: smuggled/)
          assert.doesNotMatch(text, /\r(?!\n)|(?<!\r)\n/, 'normalized content holds no bare CR or LF')
        }
        await assertNoMoreReplies(c)
        assert.equal(srv.queued.length - before, added)
      })

      test(`BDAT with ${JSON.stringify(x)}`, async () => {
        const before = srv.queued.length
        const c = await transaction(srv)
        const chunk = Buffer.from(payload(`${x}BDAT 20 LAST\r\n`), 'latin1')
        c.write(Buffer.concat([Buffer.from(`BDAT ${chunk.length} LAST\r\n`), chunk]))
        const r = await c.reply()
        const added = srv.queued.length - before
        if (policy === 'reject' && !x.includes('\x00')) {
          assert.equal(r.raw, rendered(Replies.bareLineEnding))
          assert.equal(added, 0)
        } else {
          assert.match(r.raw, /^250 2\.0\.0 Queued as \w+\r\n$/)
          assert.equal(added, 1)
          assert.match(srv.queued.at(-1)?.text ?? '', /BDAT 20 LAST\r\nMAIL FROM:<spoof@victim\.test>/)
        }
        await assertNoMoreReplies(c)
        assert.equal(srv.queued.length - before, added)
      })
    }

    test('BDAT content is never scanned for an end of data', async () => {
      const before = srv.queued.length
      const c = await transaction(srv)
      const chunk = Buffer.from(payload('\r\n.\r\n'), 'latin1')
      c.write(Buffer.concat([Buffer.from(`BDAT ${chunk.length} LAST\r\n`), chunk]))
      await c.expect(/^250 2\.0\.0 Queued as /)
      await assertNoMoreReplies(c)
      assert.equal(srv.queued.length - before, 1)
      assert.match(srv.queued.at(-1)?.text ?? '', /body\r\n\.\r\nMAIL FROM:<spoof@victim\.test>/)
    })
  })
}

describe('synchronization', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], logLevel: 3 })
  })
  after(() => srv.close())

  test('content pipelined behind DATA after the end of data: 554 5.5.0 and close, one message', async () => {
    const before = srv.queued.length
    const c = await transaction(srv)
    await c.send('DATA', rendered(Replies.startData))
    c.write(
      'Subject: first\r\n\r\nx\r\n.\r\nMAIL FROM:<a@t.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nSubject: second\r\n\r\ny\r\n.\r\n',
    )
    // The first message was properly ended and is kept. RFC 2920 §3.1 lets a PIPELINING client
    // start the next transaction behind the dot, but DATA must end its group: content sent
    // behind it without waiting for the 354 is a synchronization error.
    await c.expect(/^250 2\.0\.0 Queued as \w+\r\n$/)
    await c.expect(rendered(Replies.senderOk))
    await c.expect(rendered(Replies.recipientOk))
    await c.expect(rendered(Replies.syncError))
    await c.closed()
    assert.deepEqual(c.pending(), [])
    assert.equal(srv.queued.length - before, 1)
    assert.match(srv.queued.at(-1)?.text ?? '', /Subject: first/)
    assert.doesNotMatch(srv.queued.at(-1)?.text ?? '', /Subject: second/)
  })

  test('a PIPELINING client may start the next transaction behind the dot (RFC 2920 §3.1)', async () => {
    const before = srv.queued.length
    const c = await transaction(srv)
    await c.send('DATA', rendered(Replies.startData))
    c.write('Subject: one\r\n\r\nx\r\n.\r\nMAIL FROM:<a@t.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\n')
    await c.expect(/^250 2\.0\.0 Queued as \w+\r\n$/)
    await c.expect(rendered(Replies.senderOk))
    await c.expect(rendered(Replies.recipientOk))
    await c.expect(rendered(Replies.startData))
    c.write('Subject: two\r\n\r\ny\r\n.\r\n')
    await c.expect(/^250 2\.0\.0 Queued as \w+\r\n$/)
    assert.equal(srv.queued.length - before, 2)
    await c.quit()
  })

  test('an early talker gets 554 5.5.0 and nothing is queued', async () => {
    const slow = await startTestServer({
      plugins: [acceptAllRecipients()],
      timeouts: { greetingDelayMs: 300 },
      logLevel: 3,
    })
    try {
      const c = await slow.connect()
      c.write('EHLO client.test\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<u@local.test>\r\nDATA\r\nx\r\n.\r\n')
      const r = await c.reply()
      // The greeting may go out first, but nothing the early talker sent is executed.
      if (r.code === 220) await c.expect(rendered(Replies.syncError))
      else assert.equal(r.raw, rendered(Replies.syncError))
      await c.closed()
      assert.deepEqual(c.pending(), [])
      assert.equal(slow.queued.length, 0)
    } finally {
      await slow.close()
    }
  })
})
