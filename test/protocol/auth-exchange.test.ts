/**
 * The AUTH exchange as the session runs it (RFC 4954): responses read with readLine, under the
 * 12,288-octet AUTH line limit, cancelled at any step, timed out like any command, and followed
 * by commands in the same write from a client that may pipeline.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept, reject } from '../../src/host/verdict.ts'
import {
  acceptAllRecipients,
  Replies,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../src/testing/index.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const rendered = (r: { code: number; enhanced?: string | undefined; lines: readonly string[] }) =>
  `${r.code} ${r.enhanced === undefined ? '' : `${r.enhanced} `}${r.lines[0]}\r\n`

/** user `u` with password `p`; anything else fails. */
const users = definePlugin({
  name: 'test/users',
  options: {},
  setup: () => ({
    hooks: {
      auth: async (_ctx, cred) => (cred.user === 'u' && cred.password === 'p' ? accept() : reject()),
    },
  }),
})

async function withServer(opts: TestServerOptions, fn: (srv: TestServer) => Promise<void>): Promise<void> {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients(), users()],
    logLevel: 3,
    ...opts,
    policies: { authRequiresTls: false, ...opts.policies },
  })
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

test('AUTH LOGIN cancelled at the password step: 501, and the session goes on', async () => {
  await withServer({}, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH LOGIN', 334)
    await c.send(b64('u'), 334)
    await c.send('*', rendered(Replies.authCancelled))
    await c.send('AUTH LOGIN', 334)
    await c.send(b64('u'), 334)
    await c.send(b64('p'), 235)
    await c.quit()
  })
})

test('a 12 KiB AUTH response is read whole; a longer one is refused and the session resynchronises', async () => {
  await withServer({}, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH PLAIN', 334)
    // 12,286 octets with the CRLF (the limit is 12,288): read as one line, then refused by the
    // PLAIN decoder (password over 1,024 bytes), not cut into a command.
    const long = b64(`\0u\0${'x'.repeat(9210)}`)
    assert.equal(long.length + 2, 12_286)
    await c.send(long, rendered(Replies.authBadBase64))
    await c.send('AUTH PLAIN', 334)
    await c.send(`${long}AAAA`, rendered(Replies.lineTooLong))
    await c.send('NOOP', 250)
    await c.send(`AUTH PLAIN ${b64('\0u\0p')}`, 235)
    await c.quit()
  })
})

test('a client that stops at the AUTH prompt gets the command timeout', async () => {
  await withServer({ timeouts: { commandMs: 500 } }, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH LOGIN', 334)
    await c.expect(rendered(Replies.timeout), 10_000)
    await c.closed()
  })
})

test('commands pipelined behind the last AUTH response are answered after it', async () => {
  await withServer({}, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH LOGIN', 334)
    await c.send(b64('u'), 334)
    c.write(`${b64('p')}\r\nMAIL FROM:<a@sender.test>\r\nRCPT TO:<b@local.test>\r\nDATA\r\n`)
    await c.expect(235)
    await c.expect(250)
    await c.expect(250)
    await c.expect(354)
    await c.send('Subject: t\r\n\r\nx\r\n.', 250)
    await c.quit()
    assert.equal(srv.queued.length, 1)
  })
})

test('an AUTH response ended by a bare LF is answered and the session ends (issue 18 F4)', async () => {
  await withServer({}, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH LOGIN', 334)
    c.write(`${b64('u')}\n${b64('p')}\n`)
    assert.equal((await c.reply()).raw, rendered(Replies.bareLf))
    await c.closed()
  })
})

test('a malformed AUTH response gets the reply for what is wrong with it, not "line too long"', async () => {
  await withServer({}, async (srv) => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('AUTH LOGIN', 334)
    await c.send('dQ\u0000==', rendered(Replies.nulInCommand))
    await c.send('AUTH LOGIN', 334)
    await c.send('dQ\r==', rendered(Replies.bareCr))
    await c.send('AUTH LOGIN', 334)
    c.write(Buffer.from([0xff, 0xfe, 0x0d, 0x0a]))
    assert.equal((await c.reply()).raw, rendered(Replies.badUtf8))
    await c.send(`AUTH PLAIN ${b64('\0u\0p')}`, 235)
    await c.quit()
  })
})
