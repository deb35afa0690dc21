/**
 * Draining (SmtpServer.close, what SIGTERM does): it stops accepting, waits for the open
 * sessions themselves, and closes the ones left at the deadline with 421. Waiting means
 * sleeping until a session ends: the drain used to wake every 50 ms to look (issue 11), which
 * the first test sees as timers created while nothing happens.
 */
import assert from 'node:assert/strict'
import { createHook } from 'node:async_hooks'
import { after, describe, test } from 'node:test'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'

/** Counts the timers created while it is on. */
function timerCounter(): { readonly count: number; stop(): void } {
  let count = 0
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') count++
    },
  }).enable()
  return {
    get count() {
      return count
    },
    stop: () => hook.disable(),
  }
}

describe('drain', { timeout: 30_000 }, () => {
  const servers: TestServer[] = []
  after(async () => {
    for (const s of servers) await s.close()
  })

  test('the drain sleeps until the last session ends, then ends at once', async () => {
    const srv = await startTestServer()
    servers.push(srv)
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    const idleFor = new Promise((r) => setTimeout(r, 1000))
    const timers = timerCounter()
    const draining = srv.server.close(60_000)
    await idleFor
    // One timer: the drain's deadline. Polling made twenty in this second.
    const created = timers.count
    timers.stop()
    assert.ok(created <= 1, `${created} timers created while the session was idle`)
    await c.send('QUIT', 221)
    await c.closed()
    assert.deepEqual(await draining, { finished: 1, forced: 0 })
  })

  test('a session still open at the deadline gets 421 and the drain counts it', async () => {
    const srv = await startTestServer()
    servers.push(srv)
    const idle = await srv.connect()
    await idle.expect(220)
    const result = await srv.server.close(200)
    assert.deepEqual(result, { finished: 0, forced: 1 })
    const r = await idle.expect(421)
    assert.equal(r.raw, '421 4.3.2 Service shutting down; closing connection\r\n')
    await idle.closed()
  })
})
