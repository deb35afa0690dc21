/**
 * Interoperability and light load with Postfix's smtp-source (Debian package postfix,
 * /usr/sbin/smtp-source): 200 messages over 10 parallel sessions, many messages over one
 * connection (-d), several recipients (-r), and a pre-formatted file with leading dots (-F)
 * stored byte-exact. smtp-source has no PIPELINING support (its man page, BUGS) and -L speaks
 * LMTP, which this server does not, so neither is tested here.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { explain, receivedWith, runClient, skipUnless, withoutOwnReceived } from './helpers.ts'

const SMTP_SOURCE = '/usr/sbin/smtp-source'

/** The body (after the blank line) of a stored message. */
function bodyOf(data: Buffer): Buffer {
  const at = data.indexOf('\r\n\r\n')
  assert.ok(at > 0, 'message has a header/body separator')
  return data.subarray(at + 4)
}

describe('postfix smtp-source', { skip: skipUnless(SMTP_SOURCE, 'postfix') }, () => {
  let srv: TestServer
  let dir: string

  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], logLevel: 4 })
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-smtp-source-'))
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  const source = (args: readonly string[], timeoutMs = 60_000) =>
    runClient(SMTP_SOURCE, [...args, `127.0.0.1:${srv.port}`], { timeoutMs })

  test('-c -s 10 -m 200 -l 4096: 200 messages queued, each with its 4096-octet payload', async () => {
    srv.queued.length = 0
    const t0 = performance.now()
    const r = await source(['-c', '-s', '10', '-m', '200', '-l', '4096', '-f', 'a@t.test', '-t', 'u@t.test'])
    const ms = performance.now() - t0
    assert.equal(r.code, 0, explain(r))
    assert.equal(srv.queued.length, 200, explain(r))
    assert.match(r.stdout, /200\s*$/, 'the running counter reached 200')
    for (const m of srv.queued) {
      assert.equal(m.from, 'a@t.test')
      assert.deepEqual(m.to, ['u@t.test'])
      assert.equal(receivedWith(m.data), 'SMTP', 'smtp-source says HELO')
      // -l counts payload octets with smtp-source's own line breaks; the stored body is at least that.
      const body = bodyOf(m.data)
      assert.ok(body.length >= 4096 && body.length <= 4096 + 200, `body of ${body.length} octets`)
      assert.ok(body.subarray(-2).equals(Buffer.from('\r\n')))
    }
    assert.equal(new Set(srv.queued.map((m) => m.id)).size, 200, 'distinct queue ids')
    console.log(`# smtp-source: 200 x 4 KiB over 10 sessions in ${ms.toFixed(0)} ms`)
  })

  test('-d -r 5: 50 messages over one connection, 5 recipients each, in order', async () => {
    srv.queued.length = 0
    const r = await source(['-d', '-m', '50', '-r', '5', '-l', '100', '-M', 'source.test', '-t', 'rcpt@t.test'])
    assert.equal(r.code, 0, explain(r))
    assert.equal(srv.queued.length, 50, explain(r))
    for (const m of srv.queued) {
      assert.equal(m.to.length, 5)
      // smtp-source numbers the extra recipients downwards; the server keeps the client's order.
      assert.deepEqual(m.to, ['5rcpt@t.test', '4rcpt@t.test', '3rcpt@t.test', '2rcpt@t.test', 'rcpt@t.test'])
      assert.match(m.text, /^Received: from source\.test /)
    }
  })

  test('-F: a pre-formatted message with leading dots is stored byte-exact', async () => {
    srv.queued.length = 0
    const lines = [
      'From: a@t.test',
      'To: u@t.test',
      'Subject: dots',
      '',
      '.one leading dot',
      '..two leading dots',
      '.',
      'a line with trailing space ',
      'Grüße',
      'end',
    ]
    const file = join(dir, 'msg.txt')
    await writeFile(file, `${lines.join('\n')}\n`)
    const r = await source(['-F', file, '-m', '3', '-f', 'a@t.test', '-t', 'u@t.test'])
    assert.equal(r.code, 0, explain(r))
    assert.equal(srv.queued.length, 3, explain(r))
    // smtp-source writes each file line with CRLF, stuffs dots, and adds one empty line of its own
    // before the final dot (seen on the wire: `end\r\n\r\n.\r\n`).
    for (const m of srv.queued)
      assert.deepEqual(withoutOwnReceived(m.data), Buffer.from(`${lines.join('\r\n')}\r\n\r\n`))
  })
})
