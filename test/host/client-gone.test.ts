/**
 * A client that leaves in the middle of a chain: the plugins after the one running are not
 * called (nobody is left to answer), and the disconnect hooks still run.
 */
import assert from 'node:assert/strict'
import { connect as netConnect } from 'node:net'
import { describe, it } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { startTestServer } from '../../src/testing/index.ts'

async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await new Promise((r) => setTimeout(r, 5))
}

describe('a chain when the client has gone', () => {
  it('stops before the next plugin; disconnect hooks still run', async () => {
    let entered!: () => void
    const inFirst = new Promise<void>((r) => {
      entered = r
    })
    let disconnected!: () => void
    const disconnectRan = new Promise<void>((r) => {
      disconnected = r
    })
    const calledAfter: string[] = []
    // Answers pass once the connection is gone, as a DNS check that ignores its signal would.
    const first = definePlugin({
      name: 'test/first',
      options: {},
      setup: () => ({
        hooks: {
          rcpt: async (ctx) => {
            entered()
            await new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }))
            return pass()
          },
        },
      }),
    })
    const second = definePlugin({
      name: 'test/second',
      options: {},
      setup: () => ({
        hooks: {
          rcpt: async (_ctx, to) => {
            calledAfter.push(to.address.local)
            return pass()
          },
          disconnect: async () => disconnected(),
        },
      }),
    })
    const srv = await startTestServer({ plugins: [first(), second()] })
    try {
      const socket = netConnect({ port: srv.port, host: '127.0.0.1' })
      socket.on('error', () => {})
      let received = ''
      socket.on('data', (d) => {
        received += String(d)
      })
      await until(() => received.startsWith('220 '))
      socket.write('EHLO client.test\r\n')
      await until(() => /^250 /m.test(received))
      socket.write('MAIL FROM:<s@sender.test>\r\nRCPT TO:<u@local.test>\r\n')
      await inFirst
      // A reset, not a FIN: a FIN may be a client half-closing behind its last command.
      socket.resetAndDestroy()
      await disconnectRan
      assert.deepEqual(calledAfter, [])
      assert.ok(
        srv.logs.some((l) => l.message === 'hook rcpt not called: the client has gone'),
        'a log line says why the chain stopped',
      )
      assert.equal(
        srv.metrics.value('qtsmtpd_hook_verdicts_total', { plugin: 'test/second', hook: 'rcpt', verdict: 'pass' }),
        undefined,
      )
    } finally {
      await srv.close()
    }
  })
})
