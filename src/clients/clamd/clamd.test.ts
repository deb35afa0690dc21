import assert from 'node:assert/strict'
import { createServer, type Server, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type Clamd, EICAR, EICAR_NAME, startClamd } from '../../../test/peers/clamd.ts'
import { connect } from '../../net/index.ts'
import type { ScannerError } from '../exchange.ts'
import { clamdScan, clamdVersion, parseClamdReply } from './clamd.ts'

const mail = (body: string) => `From: a@sender.test\r\nTo: b@local.test\r\nSubject: x\r\n\r\n${body}\r\n`

async function fakeClamd(answer: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {})
    answer(s)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const a = server.address()
  return { server, port: typeof a === 'object' && a !== null ? a.port : 0 }
}

describe('clamd client (zINSTREAM) against Debian clamd with a test signature database', () => {
  let clamd: Clamd
  let small: Clamd
  before(async () => {
    ;[clamd, small] = await Promise.all([startClamd(), startClamd({ settings: { StreamMaxLength: '64K' } })])
  })
  after(() => Promise.all([clamd.close(), small.close()]))

  it('EICAR is found, clean mail is OK; over the Unix socket and TCP', async () => {
    for (const target of [{ path: clamd.socket }, { host: '127.0.0.1', port: clamd.port }]) {
      assert.deepEqual(
        await clamdScan(Readable.from([Buffer.from(mail(EICAR))]), { connect, target, timeoutMs: 10_000 }),
        {
          infected: true,
          names: [EICAR_NAME],
        },
      )
      assert.deepEqual(
        await clamdScan(Readable.from([Buffer.from(mail('hello'))]), { connect, target, timeoutMs: 10_000 }),
        { infected: false },
      )
    }
    assert.match(
      await clamdVersion({ connect, target: { path: clamd.socket }, timeoutMs: 5000 }),
      /^ClamAV 1\.\d+\.\d+/,
    )
  })

  it('EICAR at the end of a large message, in many chunks, is found', async () => {
    const filler = Buffer.from(mail('x'.repeat(76)).repeat(20_000))
    const parts = [filler.subarray(0, 300_000), filler.subarray(300_000), Buffer.from(`${EICAR}\r\n`)]
    const r = await clamdScan(Readable.from(parts), { connect, target: { path: clamd.socket }, timeoutMs: 30_000 })
    assert.deepEqual(r, { infected: true, names: [EICAR_NAME] })
  })

  it("a message over clamd's StreamMaxLength is refused by clamd: an error, never clean", async () => {
    const big = Buffer.from(mail('y'.repeat(200_000)))
    await assert.rejects(
      clamdScan(Readable.from([big]), { connect, target: { path: small.socket }, timeoutMs: 10_000 }),
      // clamd answers and closes mid-stream: its reply, or our write's EPIPE if that comes first.
      (e: ScannerError) => {
        assert.match(`${e.failure}: ${e.message}`, /^refused: .*size limit exceeded|^closed: .*EPIPE/)
        return true
      },
    )
  })

  it('clamd stopped in the middle of a run: unreachable; paused: timeout', async () => {
    const target = { path: clamd.socket }
    await clamd.stop()
    try {
      await assert.rejects(
        clamdScan(Readable.from([Buffer.from(mail('x'))]), { connect, target, timeoutMs: 2000 }),
        (e: ScannerError) => e.failure === 'unreachable',
      )
    } finally {
      await clamd.start()
    }
    clamd.pause()
    try {
      await assert.rejects(
        clamdScan(Readable.from([Buffer.from(mail('x'))]), { connect, target, timeoutMs: 500 }),
        (e: ScannerError) => e.failure === 'timeout',
      )
    } finally {
      clamd.resume()
    }
    assert.deepEqual(await clamdScan(Readable.from([Buffer.from(mail('x'))]), { connect, target, timeoutMs: 10_000 }), {
      infected: false,
    })
  })

  it('garbage and oversized replies are failures', async () => {
    const cases: [string, string | Buffer, ScannerError['failure']][] = [
      ['garbage', 'I am not clamd\0', 'malformed'],
      ['control characters in a name', 'stream: Evil\x01Name FOUND\0', 'malformed'],
      ['oversized', Buffer.alloc(100_000, 'a'), 'oversized'],
      ['closed at once', '', 'closed'],
    ]
    for (const [label, answer, failure] of cases) {
      const { server, port } = await fakeClamd((s) => {
        s.resume()
        s.end(answer)
      })
      try {
        await assert.rejects(
          clamdScan(Readable.from([Buffer.from(mail('x'))]), {
            connect,
            target: { host: '127.0.0.1', port },
            timeoutMs: 5000,
          }),
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

describe('parseClamdReply', () => {
  const cases = [
    { name: 'clean', reply: 'stream: OK\0', want: { infected: false } },
    {
      name: 'found',
      reply: 'stream: Win.Test.EICAR_HDB-1 FOUND\0',
      want: { infected: true, names: ['Win.Test.EICAR_HDB-1'] },
    },
    {
      name: 'all matches',
      reply: 'stream: A FOUND\0stream: B FOUND\0',
      want: { infected: true, names: ['A', 'B'] },
    },
  ] as const
  for (const c of cases) it(c.name, () => assert.deepEqual(parseClamdReply(Buffer.from(c.reply)), c.want))
})
