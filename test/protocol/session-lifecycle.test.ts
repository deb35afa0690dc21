/**
 * The end of a session, however it comes: spool files never outlive their transaction (refused,
 * failed, abandoned mid-DATA or between BDAT chunks, server shutdown); a client that resets the
 * connection while a hook runs aborts that hook; connect hooks never run after the disconnect hooks.
 */
import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { connect as netConnect, type Socket } from 'node:net'
import { test } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { accept, pass, reject } from '../../src/host/verdict.ts'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

const spoolFiles = async (srv: TestServer): Promise<string[]> => readdir(srv.spoolDir).catch(() => [])
const idle = (srv: TestServer) => until('sessions to end', () => srv.server.connectionCount === 0)

/** dataPost: `Subject: reject` → 554, `Subject: throw` → an exception. */
const judge = definePlugin({
  name: 'test/judge',
  options: {},
  setup: () => ({
    hooks: {
      dataPost: async (_ctx, msg) => {
        const subject = msg.headers.first('subject')
        if (subject === 'reject') return reject('no thanks')
        if (subject === 'throw') throw new Error('plugin bug')
        return pass()
      },
    },
  }),
})

const body = `${'x'.repeat(200)}\r\n`.repeat(20)

async function openTxn(srv: TestServer) {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  await c.send('MAIL FROM:<a@sender.test>', 250)
  await c.send('RCPT TO:<b@local.test>', 250)
  return c
}

test('spool files are removed after refused, failed and abandoned messages', async () => {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients(), judge()],
    spoolMemoryThreshold: 64,
    logLevel: 3,
  })
  try {
    for (const subject of ['reject', 'throw']) {
      const c = await openTxn(srv)
      await c.send('DATA', 354)
      await c.send(`Subject: ${subject}\r\n\r\n${body}.`, subject === 'reject' ? 554 : 451)
      assert.deepEqual(await spoolFiles(srv), [], `after a message refused by ${subject}`)
      await c.quit()
    }

    // Disconnect in the middle of DATA.
    let c = await openTxn(srv)
    await c.send('DATA', 354)
    c.write(`Subject: cut\r\n\r\n${body}`)
    await sleep(100)
    c.destroy()
    await idle(srv)
    assert.deepEqual(await spoolFiles(srv), [], 'after a disconnect mid-DATA')

    // BDAT chunks, then: disconnect, RSET, EHLO.
    for (const after of ['disconnect', 'RSET', 'EHLO client.test']) {
      c = await openTxn(srv)
      const chunk = `Subject: chunk\r\n\r\n${body}`
      await c.send(`BDAT ${Buffer.byteLength(chunk)}\r\n${chunk}`.slice(0, -2), 250)
      if (after === 'disconnect') {
        c.destroy()
        await idle(srv)
      } else {
        await c.send(after, 250)
        // The transaction is gone: a LAST chunk has nothing to belong to.
        await c.send('BDAT 3 LAST\r\nabc'.slice(0, -2), 503)
        await c.quit()
        await idle(srv)
      }
      assert.deepEqual(await spoolFiles(srv), [], `after BDAT then ${after}`)
    }
    assert.equal(srv.queued.length, 0)
  } finally {
    await srv.close()
  }
})

test('server shutdown in the middle of DATA removes the spool file', async () => {
  const srv = await startTestServer({ plugins: [acceptAllRecipients()], spoolMemoryThreshold: 64, logLevel: 3 })
  try {
    const c = await openTxn(srv)
    await c.send('DATA', 354)
    c.write(`Subject: cut\r\n\r\n${body}`)
    await until('a spool file', async () => (await spoolFiles(srv)).length > 0)
    await srv.server.close(0)
    assert.deepEqual(await spoolFiles(srv), [])
    assert.equal(srv.queued.length, 0)
  } finally {
    await srv.close()
  }
})

test('a connection reset while a hook runs aborts the hook; the disconnect hooks run once', async () => {
  let started!: () => void
  const running = new Promise<void>((r) => {
    started = r
  })
  let abortedAfter: number | undefined
  let disconnects = 0
  const slow = definePlugin({
    name: 'test/slow-rcpt',
    options: {},
    timeoutMs: 30_000,
    setup: () => ({
      hooks: {
        rcpt: async (ctx) => {
          const t0 = Date.now()
          started()
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, 20_000)
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(t)
              abortedAfter = Date.now() - t0
              resolve()
            })
          })
          return accept()
        },
        disconnect: async () => {
          disconnects++
        },
      },
    }),
  })
  const srv = await startTestServer({ plugins: [slow()], logLevel: 3 })
  try {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = netConnect({ port: srv.port, host: '127.0.0.1' }, () => resolve(s))
      s.once('error', reject)
    })
    socket.on('error', () => {})
    socket.write('EHLO client.test\r\n')
    await sleep(50)
    socket.write('MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@local.test>\r\n')
    await running
    socket.resetAndDestroy()
    await until('the hook to be aborted', () => abortedAfter !== undefined, 3000)
    await idle(srv)
    assert.equal(disconnects, 1)
  } finally {
    await srv.close()
  }
})

test('a client gone during the connect hooks: the disconnect hooks run last, once', async () => {
  const events: string[] = []
  const slowConnect = definePlugin({
    name: 'test/slow-connect',
    options: {},
    setup: () => ({
      hooks: {
        connect: async () => {
          events.push('connect-1')
          await sleep(300)
          return pass()
        },
      },
    }),
  })
  const watcher = definePlugin({
    name: 'test/watcher',
    options: {},
    setup: () => ({
      hooks: {
        connect: async () => {
          events.push('connect-2')
          return pass()
        },
        disconnect: async () => {
          events.push('disconnect')
        },
      },
    }),
  })
  const srv = await startTestServer({ plugins: [slowConnect(), watcher()], logLevel: 3 })
  try {
    const socket = netConnect({ port: srv.port, host: '127.0.0.1' })
    socket.on('error', () => {})
    await new Promise((r) => socket.once('connect', r))
    socket.end()
    await until('the session to start', () => events.length > 0)
    await idle(srv)
    assert.equal(events.filter((e) => e === 'disconnect').length, 1, events.join(','))
    assert.equal(events.at(-1), 'disconnect', events.join(','))
  } finally {
    await srv.close()
  }
})
