import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { startP0f } from '../../../test/peers/p0f.ts'
import { p0fAnswerBytes } from '../../clients/p0f/p0f-test-support.ts'
import { Karma, P0f, type P0fFingerprint } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import greylisting from '../greylisting/index.ts'
import { acceptRcpt, plainMessage, sendMail, summaryLine } from '../test-support.ts'
import p0f from './p0f.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})
/** A path for an API socket, in a temp dir of its own. */
const socketPath = () => {
  const d = mkdtempSync(join(tmpdir(), 'qtsmtpd-p0f-test-'))
  dirs.push(d)
  return join(d, 'p0f.sock')
}

/** What the connect hooks left in the P0f key, and the karma, as the first rcpt hook sees them. */
function observer() {
  const seen: { fp: P0fFingerprint | undefined; karma: number }[] = []
  const plugin = definePlugin({
    name: 'test/observe',
    options: {},
    setup: () => ({
      hooks: {
        rcpt: (ctx) => {
          seen.push({ fp: ctx.connection.notes.get(P0f), karma: ctx.get(Karma) })
          return pass()
        },
      },
    }),
  })
  return { seen, plugin }
}

/**
 * A server with ident/p0f on `socket` (its other plugins from `opts`), then Debian's p0f sniffing
 * `lo` for the server's port, answering on that socket; both closed after `fn`.
 */
async function withP0f(
  socket: string,
  opts: TestServerOptions,
  fn: (srv: TestServer, daemon: Awaited<ReturnType<typeof startP0f>>) => Promise<void>,
): Promise<void> {
  const srv = await startTestServer(opts)
  try {
    const daemon = await startP0f({ port: srv.port, socket })
    try {
      await fn(srv, daemon)
    } finally {
      await daemon.close()
    }
  } finally {
    await srv.close()
  }
}

const MESSAGE = plainMessage('See you at noon.\r\n')

describe('ident/p0f with Debian p0f 3 sniffing the loopback interface', () => {
  it('a loopback client is Linux: the P0f key, X-P0F-Genre on top (a forged one removed), the summary line', async () => {
    const socket = socketPath()
    const o = observer()
    await withP0f(socket, { plugins: [p0f({ p0f_socket: socket }), o.plugin(), acceptRcpt()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const forged = plainMessage('See you at noon.\r\n', { 'X-P0F-Genre': 'Windows forged' })
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], forged)).code, 250)
      await c.quit()
      const fp = o.seen[0]?.fp
      assert.match(fp?.genre ?? '', /^Linux \S/, JSON.stringify(fp))
      assert.equal(fp?.genre, `${fp?.answer?.osName} ${fp?.answer?.osFlavor}`)
      assert.equal(fp?.detail, fp?.answer?.osFlavor)
      assert.equal(fp?.distance, 0)
      const text = srv.queued[0]?.text ?? ''
      assert.ok(text.startsWith(`X-P0F-Genre: ${fp?.genre}\r\nReceived: from client.test `), text.slice(0, 200))
      assert.ok(text.endsWith(`\r\n${MESSAGE}`), text)
      assert.doesNotMatch(text, /forged|X-P0F-Link-Type/)
      const genre = (fp?.genre ?? '').replaceAll('.', '\\.')
      assert.match(await summaryLine(srv), new RegExp(`ident/p0f:pass\\(${genre}, distance 0\\)`))
      assert.equal(srv.metrics.value('qtsmtpd_ident_lookups_total', { plugin: 'ident/p0f', outcome: 'found' }), 1)
    })
  })

  /** The reply to RCPT of a loopback client, with this p0f_blocked_operating_systems list. */
  async function rcptReply(list: readonly string[], relayClient = false): Promise<string> {
    const socket = socketPath()
    const relay = definePlugin({
      name: 'test/relay-client',
      options: {},
      setup: () => ({
        hooks: {
          connect: (ctx) => {
            ctx.connection.relayClient = relayClient
            return pass()
          },
        },
      }),
    })
    let raw = ''
    await withP0f(
      socket,
      {
        plugins: [relay(), p0f({ p0f_socket: socket }), acceptRcpt()],
        config: { p0f_blocked_operating_systems: list },
      },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<a@sender.test>', 250)
        raw = (await c.send('RCPT TO:<b@local.test>', /^/))?.raw ?? ''
        await c.quit()
      },
    )
    return raw
  }

  it('p0f_blocked_operating_systems: a /pattern/ (any case) or the exact genre refuses each recipient; relay clients are spared', async () => {
    const BLOCKED = '550 5.7.1 OS Blocked\r\n'
    assert.equal(await rcptReply(['# Windows desktops', 'Windows 7 or 8', '/^linux/']), BLOCKED)
    assert.match(await rcptReply(['Solaris 10', '/windows/', 'Linux']), /^250 /)
    assert.match(await rcptReply(['/linux/'], true), /^250 /)
    const socket = socketPath()
    const o = observer()
    await withP0f(socket, { plugins: [p0f({ p0f_socket: socket }), o.plugin(), acceptRcpt()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<a@sender.test>', 250)
      await c.send('RCPT TO:<b@local.test>', 250)
      await c.quit()
    })
    const genre = o.seen[0]?.fp?.genre
    assert.ok(genre !== undefined)
    assert.equal(await rcptReply([genre]), BLOCKED)
  })
})

describe('ident/p0f and the plugins that read its answer', () => {
  it("greylisting's p0f option: a Linux client is greylisted under genre,linux, not under genre,windows", async () => {
    for (const [criteria, reply] of [
      ['genre,linux', '450 4.7.1 This mail is temporarily denied\r\n'],
      ['genre,windows', '250 2.1.0 Sender OK\r\n'],
    ] as const) {
      const socket = socketPath()
      await withP0f(
        socket,
        { plugins: [p0f({ p0f_socket: socket }), greylisting({ p0f: criteria }), acceptRcpt()] },
        async (srv) => {
          const c = await srv.connect()
          await c.expect(220)
          await c.send('EHLO client.test', 250)
          assert.equal((await c.send('MAIL FROM:<a@sender.test>', /^/))?.raw, reply, criteria)
          await c.quit()
        },
      )
    }
  })

  it('smite_os: a client whose OS matches loses a karma point; XCLIENT for a host p0f never saw clears the answer', async () => {
    const socket = socketPath()
    const o = observer()
    await withP0f(
      socket,
      {
        plugins: [p0f({ p0f_socket: socket, smite_os: 'LINUX' }), o.plugin(), acceptRcpt()],
        config: { xclient_trusted: ['127.0.0.0/8'] },
      },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<a@sender.test>', 250)
        await c.send('RCPT TO:<b@local.test>', 250)
        await c.send('RSET', 250)
        await c.send('XCLIENT ADDR=192.0.2.9', 220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<a@sender.test>', 250)
        await c.send('RCPT TO:<b@local.test>', 250)
        await c.quit()
      },
    )
    assert.match(o.seen[0]?.fp?.genre ?? '', /^Linux /)
    assert.equal(o.seen[0]?.karma, -1)
    assert.deepEqual(o.seen[1], { fp: undefined, karma: -1 })
  })
})

/** A stand-in p0f on a Unix socket: answers each query with `answer(n)` (n counts queries). */
async function fakeP0f(
  answer: (n: number) => Buffer | 'close' | 'silent',
): Promise<{ socket: string; queries: () => number; close(): Promise<void> }> {
  const socket = socketPath()
  let n = 0
  const server: Server = createServer((conn) => {
    conn.on('error', () => {})
    conn.once('data', () => {
      conn.end(answer(++n))
    })
  })
  await new Promise<void>((resolve) => server.listen(socket, resolve))
  return {
    socket,
    queries: () => n,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
      }),
  }
}

describe('ident/p0f when p0f fails: a deadline and the on_error policy', () => {
  /** The greeting (and, if the session goes on, the summary line's p0f result) for one connection. */
  async function greeting(options: Parameters<typeof p0f>[0]): Promise<{ raw: string; result: string }> {
    const srv = await startTestServer({ plugins: [p0f(options), acceptRcpt()] })
    try {
      const c = await srv.connect()
      const raw = (await c.reply(30_000)).raw
      if (!raw.startsWith('220')) return { raw, result: '' }
      await c.quit()
      const result = /results=\[ident\/p0f:([^\]]*)\]/.exec(await summaryLine(srv))?.[1] ?? ''
      assert.equal(srv.metrics.value('qtsmtpd_ident_lookups_total', { plugin: 'ident/p0f', outcome: 'failed' }), 1)
      return { raw, result }
    } finally {
      await srv.close()
    }
  }
  const UNAVAILABLE = '421 4.3.0 p0f unavailable, try again later\r\n'

  it('p0f stopped: pass greets the client without a fingerprint; defer answers 421 and closes', async () => {
    const socket = socketPath()
    const daemon = await startP0f({ port: 9, socket })
    await daemon.stop()
    const passed = await greeting({ p0f_socket: socket })
    assert.match(passed.raw, /^220 /)
    assert.match(passed.result, /^error\(unreachable: .*p0f\.sock.*\(passed\)\)$/)
    assert.equal((await greeting({ p0f_socket: socket, on_error: 'defer' })).raw, UNAVAILABLE)
    await daemon.close()
  })

  it('p0f paused (accepts, never answers): the timeout ends the wait', async () => {
    const socket = socketPath()
    const daemon = await startP0f({ port: 9, socket })
    daemon.pause()
    try {
      const passed = await greeting({ p0f_socket: socket, timeout: '0.3' })
      assert.match(passed.raw, /^220 /)
      assert.match(passed.result, /^error\(timeout: .* no complete reply within 300 ms \(passed\)\)$/)
      assert.equal((await greeting({ p0f_socket: socket, timeout: '0.3', on_error: 'defer' })).raw, UNAVAILABLE)
    } finally {
      daemon.resume()
      await daemon.close()
    }
  })

  const broken = [
    {
      name: 'garbage',
      answer: Buffer.alloc(232, 'A'),
      result: /^error\(malformed: p0f answered with magic 0x41414141 \(passed\)\)$/,
    },
    {
      name: 'a truncated answer',
      answer: p0fAnswerBytes().subarray(0, 100),
      result: /^error\(closed: .* closed the connection before a complete reply \(passed\)\)$/,
    },
    {
      name: 'an oversized answer',
      answer: Buffer.concat([p0fAnswerBytes(), Buffer.alloc(100)]),
      result: /^error\(oversized: .* reply larger than 232 bytes \(passed\)\)$/,
    },
    {
      name: 'a refused query',
      answer: p0fAnswerBytes({ status: 0 }),
      result: /^error\(refused: p0f refused the query as malformed \(passed\)\)$/,
    },
  ]
  for (const b of broken)
    it(`a p0f that answers ${b.name} fails the lookup`, async () => {
      const fake = await fakeP0f(() => b.answer)
      try {
        const { raw, result } = await greeting({ p0f_socket: fake.socket })
        assert.match(raw, /^220 /)
        assert.match(result, b.result)
      } finally {
        await fake.close()
      }
    })

  it('a host p0f has not seen is asked again within nomatch_wait, then skipped', async () => {
    const fake = await fakeP0f((n) =>
      n < 3 ? p0fAnswerBytes({ status: 0x20 }) : p0fAnswerBytes({ strings: ['Linux', '3.x'], distance: 2 }),
    )
    const o = observer()
    try {
      const srv = await startTestServer({ plugins: [p0f({ p0f_socket: fake.socket }), o.plugin(), acceptRcpt()] })
      try {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<a@sender.test>', 250)
        await c.send('RCPT TO:<b@local.test>', 250)
        await c.quit()
        assert.equal(fake.queries(), 3)
        assert.equal(o.seen[0]?.fp?.genre, 'Linux 3.x')
      } finally {
        await srv.close()
      }
    } finally {
      await fake.close()
    }
    const never = await fakeP0f(() => p0fAnswerBytes({ status: 0x20 }))
    try {
      const srv = await startTestServer({
        plugins: [p0f({ p0f_socket: never.socket, nomatch_wait: '100' }), acceptRcpt()],
      })
      try {
        const c = await srv.connect()
        await c.expect(220)
        await c.quit()
        assert.match(await summaryLine(srv), /ident\/p0f:skip\(no match\)/)
        // 20 ms, 40 ms, then the 40 ms left: four questions.
        assert.equal(never.queries(), 4)
      } finally {
        await srv.close()
      }
    } finally {
      await never.close()
    }
  })

  it('version 2 and a bad smite_os pattern stop the start', async () => {
    await assert.rejects(
      startTestServer({ plugins: [p0f({ p0f_socket: '/run/p0f.sock', version: '2' })] }),
      /p0f 2 is not supported/,
    )
    await assert.rejects(
      startTestServer({ plugins: [p0f({ p0f_socket: '/run/p0f.sock', smite_os: '(?=windows)' })] }),
      /option "smite_os": pattern \(\?=windows\): /,
    )
  })
})
