import assert from 'node:assert/strict'
import { type AddressInfo, createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type Clamd, EICAR, EICAR_NAME, startClamd } from '../../../test/peers/clamd.ts'
import { Karma, Naughty } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMail, sendMailSession, summaryLine } from '../test-support.ts'
import clamdscan from './clamdscan.ts'

const CLEAN = plainMessage('Here are the minutes of Tuesday.\r\n')
const INFECTED = plainMessage(`${EICAR}\r\n`)
/** EICAR as a base64 attachment: the part clamd decodes is the 68-byte file itself. */
const ATTACHMENT = plainMessage(
  [
    '--b1',
    'Content-Type: text/plain',
    '',
    'see attached',
    '--b1',
    'Content-Type: application/octet-stream; name="eicar.com"',
    'Content-Transfer-Encoding: base64',
    '',
    Buffer.from(EICAR).toString('base64'),
    '--b1--',
    '',
  ].join('\r\n'),
  { 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="b1"' },
)
const received = /^Received: from client\.test /

function observer() {
  const seen: { karma: number; naughty: readonly string[] }[] = []
  const plugin = definePlugin({
    name: 'test/observe',
    options: {},
    setup: () => ({
      hooks: {
        dataPost: (ctx) => {
          seen.push({ karma: ctx.get(Karma), naughty: [...ctx.get(Naughty)] })
          return pass()
        },
      },
    }),
  })
  return { seen, plugin }
}

describe('virus/clamdscan against Debian clamd (a signature database of our own)', () => {
  let clamd: Clamd
  let small: Clamd
  before(async () => {
    ;[clamd, small] = await Promise.all([startClamd(), startClamd({ settings: { StreamMaxLength: '64K' } })])
  })
  after(() => Promise.all([clamd.close(), small.close()]))

  it('EICAR is refused (in the body, then as an attachment on the same connection, the client naughty by then); a clean message gets X-Virus-* on top, the rest byte for byte', async () => {
    await withTestServer({ plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket })] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal(
        (await sendMail(c, 'a@sender.test', ['b@local.test'], INFECTED)).raw,
        `554 5.7.1 Virus found: ${EICAR_NAME}\r\n`,
      )
      assert.match(
        (await sendMail(c, 'a@sender.test', ['b@local.test'], ATTACHMENT)).raw,
        /^554 5\.7\.1 Virus found: Test\.EICAR\.(?:HDB|NDB)/,
      )
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], CLEAN)).code, 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
      const text = srv.queued[0]?.text ?? ''
      const head = 'X-Virus-Checked: by ClamAV 1.4.6 on mx.test\r\nX-Virus-Found: No\r\n'
      assert.ok(text.startsWith(head.replace('1.4.6', /ClamAV (\S+)/.exec(text)?.[1] ?? '')), text.slice(0, 120))
      const rest = text.slice(text.indexOf('Received: '))
      assert.match(rest, received)
      assert.ok(rest.endsWith(CLEAN))
      const summary = await summaryLine(srv)
      assert.match(summary, new RegExp(`virus/clamdscan:fail\\(virus ${EICAR_NAME.replaceAll('.', '\\.')}, \\d+ ms\\)`))
      assert.match(summary, /virus\/clamdscan:pass\(clean, \d+ ms\)/)
    })
  })

  it('deny_viruses no marks the message; the client is naughty and loses karma; TCP with clamd_port', async () => {
    const o = observer()
    await withTestServer(
      {
        plugins: [
          acceptRcpt(),
          clamdscan({ clamd_host: '127.0.0.1', clamd_port: String(clamd.port), deny_viruses: 'no' }),
          o.plugin(),
        ],
      },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], INFECTED)).code, 250)
        assert.ok(
          srv.queued[0]?.text.startsWith(`X-Virus-Details: ${EICAR_NAME}\r\nX-Virus-Found: Yes\r\nReceived: `),
          srv.queued[0]?.text.slice(0, 100),
        )
        assert.equal(o.seen[0]?.karma, -1)
        assert.deepEqual(o.seen[0]?.naughty, [`(virus/clamdscan) virus ${EICAR_NAME}`])
      },
    )
  })

  it('EICAR at the end of a 3 MB message is found: the message is streamed whole', async () => {
    const body = `${'This line fills the message up to a few megabytes, nothing to see.\r\n'.repeat(45_000)}${EICAR}\r\n`
    await withTestServer(
      {
        plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket, max_size: '8192' })],
        spoolMemoryThreshold: 65_536,
      },
      async (srv) => {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], plainMessage(body))
        assert.equal(r.raw, `554 5.7.1 Virus found: ${EICAR_NAME}\r\n`)
      },
    )
  })

  it('max_size skips larger messages; a message over clamd StreamMaxLength is a failure (451), never clean', async () => {
    const big = plainMessage(`${EICAR}\r\n${'padding to pass 64 KB and then some more of it\r\n'.repeat(2000)}`)
    await withTestServer(
      { plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket, max_size: '64' })] },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], big)).code, 250)
        assert.match(await summaryLine(srv), /virus\/clamdscan:skip\(too large \(\d+ > 65536 bytes\)\)/)
        assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Virus/)
      },
    )
    await withTestServer(
      { plugins: [acceptRcpt(), clamdscan({ clamd_socket: small.socket, max_size: '1024' })] },
      async (srv) => {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], big)
        assert.equal(r.raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
        assert.equal(srv.queued.length, 0)
        // clamd answers and closes mid-stream: its reply, or our write's EPIPE if that comes first.
        assert.match(
          await summaryLine(srv),
          /virus\/clamdscan:error\((?:refused: clamd: INSTREAM size limit exceeded\. ERROR|closed: \S+ broke the connection: write EPIPE)/,
        )
      },
    )
  })

  it('scan_all 0 scans only multipart messages', async () => {
    await withTestServer(
      { plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket, scan_all: '0' })] },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], INFECTED)).code, 250)
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], ATTACHMENT)).code, 554)
        assert.match(await summaryLine(srv), /virus\/clamdscan:skip\(not multipart\)/)
      },
    )
  })

  it('clamd down: 451 (default), accepted unscanned with defer_on_error 0; paused: 451 at the deadline; stopped mid-scan: 451', async () => {
    await clamd.stop()
    try {
      for (const [options, want] of [
        [{}, 451],
        [{ defer_on_error: '1' }, 451],
        [{ defer_on_error: '0' }, 250],
        [{ on_error: 'pass' }, 250],
      ] as const)
        await withTestServer(
          { plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket, ...options })] },
          async (srv) => {
            const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], INFECTED)
            assert.equal(r.code, want, JSON.stringify(options))
            assert.match(await summaryLine(srv), /virus\/clamdscan:error\(unreachable: /)
            assert.ok(srv.logs.some((e) => e.level === 4 && /^virus scanner failed: unreachable/.test(e.message)))
          },
        )
    } finally {
      await clamd.start()
    }
    await withTestServer(
      { plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket, timeout: '0.5' })] },
      async (srv) => {
        clamd.pause()
        try {
          const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], CLEAN)
          assert.equal(r.raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
          assert.match(await summaryLine(srv), /virus\/clamdscan:error\(timeout: /)
        } finally {
          clamd.resume()
        }
      },
    )
    await withTestServer({ plugins: [acceptRcpt(), clamdscan({ clamd_socket: clamd.socket })] }, async (srv) => {
      clamd.pause()
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const reply = sendMail(c, 'a@sender.test', ['b@local.test'], CLEAN)
      await new Promise((r) => setTimeout(r, 300))
      await clamd.stop()
      assert.equal((await reply).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
      assert.equal(srv.queued.length, 0)
      await clamd.start()
    })
  })

  it("a daemon's garbage: 451, logged, nothing stored", async () => {
    const fake = createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => {})
      s.resume()
      s.end('stream: maybe, who knows\0')
    })
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
    try {
      const port = (fake.address() as AddressInfo).port
      await withTestServer(
        { plugins: [acceptRcpt(), clamdscan({ clamd_host: '127.0.0.1', clamd_port: String(port) })] },
        async (srv) => {
          const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], CLEAN)
          assert.equal(r.raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
          assert.equal(srv.queued.length, 0)
          assert.ok(
            srv.logs.some((e) => /^virus scanner failed: malformed: clamd answered "stream: maybe/.test(e.message)),
          )
        },
      )
    } finally {
      fake.close()
    }
  })
})
