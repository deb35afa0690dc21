/**
 * The set-up most plugin tests repeat: a server that is closed whatever the test does, and a
 * client that has been greeted and has said EHLO.
 */
import type { SmtpTestClient } from './client.ts'
import { startTestServer, type TestServer, type TestServerOptions } from './test-server.ts'

/**
 * Starts a test server, runs `fn` with it and closes it, also when `fn` throws.
 *
 * @example
 * await withTestServer({ plugins: [acceptAllRecipients(), myQueue()] }, async (srv) => { ... })
 */
export async function withTestServer<T>(opts: TestServerOptions, fn: (srv: TestServer) => Promise<T>): Promise<T> {
  const srv = await startTestServer(opts)
  try {
    return await fn(srv)
  } finally {
    await srv.close()
  }
}

/** A client of `srv` that has read the 220 greeting and got 250 to `EHLO <helo>`. */
export async function openSession(srv: TestServer, helo = 'client.example'): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send(`EHLO ${helo}`, 250)
  return c
}
