import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { GTUBE, type Spamd, startSpamd } from '../../../test/peers/spamd.ts'
import { connect } from '../../net/index.ts'
import type { ScannerError } from '../exchange.ts'
import { parseSpamdReply, spamdHeaders } from './spamd.ts'

const message = (body: string) =>
  Buffer.from(
    'Received: from client.test (localhost [127.0.0.1])\r\n\tby mx.test (qtsmtpd) with ESMTP id 1\r\n' +
      'From: Alice <alice@sender.test>\r\nTo: bob@local.test\r\nSubject: lunch\r\n' +
      'Date: Fri, 04 Dec 2026 18:00:00 +0000\r\nMessage-ID: <20261204180000.1@sender.test>\r\n\r\n' +
      body,
  )
const asMessage = (b: Buffer) => ({ stream: Readable.from([b]), length: b.length })

/** A stand-in spamd that answers every connection with `answer` (or nothing). */
async function fakeSpamd(answer: ((s: Socket) => void) | undefined): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    if (answer !== undefined) answer(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0 }
}

describe('spamd client (SPAMC/1.5 HEADERS) against Debian spamd', () => {
  let spamd: Spamd
  before(async () => {
    spamd = await startSpamd()
  })
  after(() => spamd.close())

  it('GTUBE is spam, with X-Spam-* fields; over TCP and the Unix socket', async () => {
    for (const target of [{ host: '127.0.0.1', port: spamd.port }, { path: spamd.socket }]) {
      const r = await spamdHeaders(asMessage(message(`${GTUBE}\r\n`)), { connect, target, timeoutMs: 30_000 })
      assert.equal(r.isSpam, true)
      assert.ok(r.score >= 900, `score ${r.score}`)
      assert.equal(r.threshold, 5)
      const status = r.fields.find((f) => f.name === 'X-Spam-Status')?.value ?? ''
      assert.match(status, /^Yes, score=\d+\.\d required=5\.0 tests=.*GTUBE/)
      assert.doesNotMatch(status, /[\r\n]/)
      assert.equal(r.fields.find((f) => f.name === 'X-Spam-Flag')?.value, 'YES')
    }
  })

  it('a ham message scores low; the user selects per-user preferences', async () => {
    const ham = message('Shall we meet for lunch at noon on Friday?\r\n')
    const plain = await spamdHeaders(asMessage(ham), {
      connect,
      target: { host: '127.0.0.1', port: spamd.port },
      timeoutMs: 30_000,
      user: 'bob@local.test',
    })
    assert.equal(plain.isSpam, false)
    assert.equal(plain.threshold, 5)
    await spamd.userPrefs('strict@local.test', 'required_score -5\n')
    const strict = await spamdHeaders(asMessage(ham), {
      connect,
      target: { host: '127.0.0.1', port: spamd.port },
      timeoutMs: 30_000,
      user: 'strict@local.test',
    })
    assert.equal(strict.threshold, -5)
    assert.equal(strict.isSpam, true)
  })

  it('a large message is streamed whole (Content-length matches what is sent)', async () => {
    const big = message(`${'All work and no play makes Jack a dull boy. '.repeat(20)}\r\n`.repeat(2000))
    const chunks = Array.from({ length: Math.ceil(big.length / 16384) }, (_, i) =>
      big.subarray(i * 16384, (i + 1) * 16384),
    )
    const r = await spamdHeaders(
      { stream: Readable.from(chunks), length: big.length },
      { connect, target: { path: spamd.socket }, timeoutMs: 60_000 },
    )
    assert.equal(typeof r.score, 'number')
  })

  it('spamd down: unreachable; a user with spaces is refused before connecting', async () => {
    const { server, port } = await fakeSpamd(undefined)
    await new Promise<void>((r) => server.close(() => r()))
    await assert.rejects(
      spamdHeaders(asMessage(message('x\r\n')), { connect, target: { host: '127.0.0.1', port }, timeoutMs: 2000 }),
      (e: ScannerError) => e.failure === 'unreachable',
    )
    await assert.rejects(
      spamdHeaders(asMessage(message('x\r\n')), {
        connect,
        target: { host: '127.0.0.1', port: spamd.port },
        timeoutMs: 2000,
        user: 'a b',
      }),
      (e: ScannerError) => e.failure === 'refused',
    )
  })

  it('a daemon that accepts and never answers: timeout at the deadline', async () => {
    const { server, port } = await fakeSpamd((s) => s.resume())
    try {
      await assert.rejects(
        spamdHeaders(asMessage(message('x\r\n')), { connect, target: { host: '127.0.0.1', port }, timeoutMs: 300 }),
        (e: ScannerError) => e.failure === 'timeout',
      )
    } finally {
      server.close()
    }
  })

  it('garbage, an error status and an oversized reply are failures, not verdicts', async () => {
    const cases: [string, string | Buffer, ScannerError['failure']][] = [
      ['garbage', 'HTTP/1.1 200 OK\r\n\r\n', 'malformed'],
      ['error status', 'SPAMD/1.0 76 Bad header line: xx\r\n', 'refused'],
      ['no Spam line', 'SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n', 'malformed'],
      [
        'short body',
        'SPAMD/1.1 0 EX_OK\r\nContent-length: 50\r\nSpam: True ; 9.0 / 5.0\r\n\r\nX-Spam-Flag: YES\r\n',
        'malformed',
      ],
      ['oversized', Buffer.alloc(2 * 1024 * 1024, 'a'), 'oversized'],
      ['closed at once', '', 'closed'],
    ]
    for (const [label, answer, failure] of cases) {
      const { server, port } = await fakeSpamd((s) => {
        s.resume()
        s.end(answer)
      })
      try {
        await assert.rejects(
          spamdHeaders(asMessage(message('x\r\n')), { connect, target: { host: '127.0.0.1', port }, timeoutMs: 5000 }),
          (e: ScannerError) => {
            assert.equal(e.failure, failure, `${label}: ${e.message}`)
            return true
          },
        )
      } finally {
        server.close()
      }
    }
  })
})

describe('parseSpamdReply', () => {
  it('unfolds the fields and reads the Spam line', () => {
    const r = parseSpamdReply(
      Buffer.from(
        'SPAMD/1.1 0 EX_OK\r\nContent-length: 89\r\nSpam: False ; -1.2 / 5.0\r\n\r\n' +
          'X-Spam-Status: No, score=-1.2 required=5.0 tests=A,\r\n\tB autolearn=ham\r\nX-Spam-Level: \r\n\r\n',
      ),
    )
    assert.deepEqual(r, {
      isSpam: false,
      score: -1.2,
      threshold: 5,
      fields: [
        { name: 'X-Spam-Status', value: 'No, score=-1.2 required=5.0 tests=A,\tB autolearn=ham' },
        { name: 'X-Spam-Level', value: '' },
      ],
    })
  })
})
