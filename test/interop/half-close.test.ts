/**
 * Exim's smtp transport sends `MAIL, RCPT, BDAT n LAST + content, QUIT` in one write and then
 * shuts down its sending side (shutdown(SHUT_WR)) while it reads the replies. The server must keep
 * writing until its own QUIT reply: found with Exim (test/interop/exim.test.ts), reproduced here
 * without it, with a queue that takes a moment as a durable one does.
 */
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'

const slowDataPost = definePlugin({
  name: 'data/test-slow',
  options: {},
  setup: () => ({
    hooks: {
      dataPost: async () => {
        await new Promise((r) => setTimeout(r, 200))
        return pass()
      },
    },
  }),
})

/** Everything the server writes until it closes (bounded by timeoutMs). */
function collect(s: Socket, timeoutMs = 10_000): Promise<string> {
  let got = ''
  s.on('data', (b: Buffer) => {
    got += b.toString('latin1')
  })
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      s.destroy()
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(got)}`))
    }, timeoutMs)
    s.on('close', () => {
      clearTimeout(t)
      resolve(got)
    })
  })
}

const replyCodes = (wire: string): string[] =>
  wire
    .split('\r\n')
    .filter((l) => /^\d{3} /.test(l))
    .map((l) => l.slice(0, 3))

describe('a client that half-closes after a pipelined QUIT', () => {
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients(), slowDataPost()], tls: true })
  })
  after(async () => srv?.close())

  for (const mode of ['BDAT', 'DATA'] as const) {
    test(`${mode}: every reply arrives, the message is queued once`, async () => {
      const before = srv.queued.length
      const s = connect({ port: srv.port, host: '127.0.0.1', allowHalfOpen: true })
      const wire = collect(s)
      await new Promise((r) => s.once('connect', r))
      s.write('EHLO client.test\r\n')
      await new Promise((r) => setTimeout(r, 100))
      const body = 'Subject: half-close\r\n\r\nhello\r\n'
      if (mode === 'BDAT') {
        s.end(`MAIL FROM:<a@t.test>\r\nRCPT TO:<u@t.test>\r\nBDAT ${body.length} LAST\r\n${body}QUIT\r\n`)
      } else {
        s.write('MAIL FROM:<a@t.test>\r\nRCPT TO:<u@t.test>\r\nDATA\r\n')
        await new Promise((r) => setTimeout(r, 100))
        s.end(`${body}.\r\n`) // the end of data, then the sending side closes
      }
      const codes = replyCodes(await wire)
      assert.deepEqual(
        codes,
        mode === 'BDAT' ? ['220', '250', '250', '250', '250', '221'] : ['220', '250', '250', '250', '354', '250'],
      )
      assert.equal(srv.queued.length, before + 1)
    })
  }
})
