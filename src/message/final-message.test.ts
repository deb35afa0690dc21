import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { finalMessageBuffer, finalMessageSize, finalMessageStream } from './final-message.ts'
import { MessageSpool } from './spool.ts'
import { samples } from './test-fixtures.ts'

let root: string
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'qtsmtpd-final-'))
})
after(async () => {
  await rm(root, { recursive: true, force: true })
})

async function spoolOf(message: string | Buffer, memoryThreshold?: number): Promise<MessageSpool> {
  const spool = new MessageSpool({ spoolDir: root, ...(memoryThreshold === undefined ? {} : { memoryThreshold }) })
  spool.write(typeof message === 'string' ? Buffer.from(message) : message)
  await spool.end()
  return spool
}

const returnPath = Buffer.from('Return-Path: <s@example.org>\r\n')

describe('finalMessageStream', () => {
  for (const s of samples) {
    it(`byte-exact when unedited: ${s.name}`, async () => {
      const spool = await spoolOf(s.message)
      const out = await finalMessageBuffer(spool)
      assert.deepEqual(out, s.message)
      assert.equal(finalMessageSize(spool), out.length)
    })
  }

  const edits = [
    {
      label: 'prepend Received, rename A-R, add X-Spam',
      message: 'Authentication-Results: evil; pass\r\nSubject: s\r\n\r\nbody\r\n',
      edit: (s: MessageSpool) => {
        s.headers.prepend('Received', 'from a by b; date')
        s.headers.rename('Authentication-Results', 'Original-Authentication-Results')
        s.headers.add('X-Spam', 'no')
      },
      prepend: [returnPath],
      want:
        'Return-Path: <s@example.org>\r\nReceived: from a by b; date\r\n' +
        'Original-Authentication-Results: evil; pass\r\nSubject: s\r\nX-Spam: no\r\n\r\nbody\r\n',
    },
    {
      label: 'remove a field',
      message: 'Bcc: x@example.com\r\nSubject: s\r\n\r\nbody\r\n',
      edit: (s: MessageSpool) => void s.headers.remove('bcc'),
      prepend: [],
      want: 'Subject: s\r\n\r\nbody\r\n',
    },
    {
      label: 'empty body with separator keeps the separator',
      message: 'Subject: s\r\n\r\n',
      edit: (s: MessageSpool) => s.headers.add('X-A', '1'),
      prepend: [],
      want: 'Subject: s\r\nX-A: 1\r\n\r\n',
    },
    {
      label: 'headers only, no separator: none invented',
      message: 'Subject: s\r\n',
      edit: (s: MessageSpool) => s.headers.prepend('Received', 'r'),
      prepend: [returnPath],
      want: 'Return-Path: <s@example.org>\r\nReceived: r\r\nSubject: s\r\n',
    },
    {
      label: 'body-looking first line: a separator is needed once fields are added',
      message: 'Hello, no headers\r\n',
      edit: (s: MessageSpool) => s.headers.prepend('Received', 'r'),
      prepend: [],
      want: 'Received: r\r\n\r\nHello, no headers\r\n',
    },
    {
      label: 'prepend only, body-looking line',
      message: 'Subject: s\r\nnot a header\r\n',
      edit: () => {},
      prepend: [returnPath],
      want: 'Return-Path: <s@example.org>\r\nSubject: s\r\n\r\nnot a header\r\n',
    },
  ] as const
  for (const c of edits) {
    it(c.label, async () => {
      for (const threshold of [undefined, 1]) {
        const spool = await spoolOf(c.message, threshold)
        c.edit(spool)
        const out = await finalMessageBuffer(spool, { prepend: c.prepend })
        assert.equal(out.toString(), c.want)
        assert.equal(finalMessageSize(spool, { prepend: c.prepend }), out.length)
        await spool.cleanup()
      }
    })
  }

  it('streams a file body and can be produced twice', async () => {
    const body = Buffer.alloc(300_000, 'line of text\r\n')
    const spool = await spoolOf(Buffer.concat([Buffer.from('Subject: s\r\n\r\n'), body]), 1024)
    spool.headers.prepend('Received', 'r')
    const want = Buffer.concat([Buffer.from('Received: r\r\nSubject: s\r\n\r\n'), body])
    assert.deepEqual(await finalMessageBuffer(spool), want)
    assert.deepEqual(await finalMessageBuffer(spool), want)
    await spool.cleanup()
  })

  it('a consumer stopping early does not hang or leak', async () => {
    const spool = await spoolOf(Buffer.concat([Buffer.from('S: s\r\n\r\n'), Buffer.alloc(500_000, 'x')]), 1024)
    for await (const _ of finalMessageStream(spool)) break
    await spool.cleanup()
  })

  it('refuses a prepended field without CRLF', async () => {
    const spool = await spoolOf('Subject: s\r\n\r\nb\r\n')
    assert.throws(() => finalMessageStream(spool, { prepend: [Buffer.from('Return-Path: <>')] }), TypeError)
  })
})
