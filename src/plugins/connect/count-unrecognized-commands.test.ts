import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Replies, type TestServer, withTestServer } from '../../testing/index.ts'
import countUnrecognized from './count-unrecognized-commands.ts'

const UNKNOWN = '500 5.5.1 Error: command not recognized\r\n'

const withServer = (options: Parameters<typeof countUnrecognized>[0], fn: (srv: TestServer) => Promise<void>) =>
  withTestServer({ plugins: [countUnrecognized(options)] }, fn)

describe('connect/count-unrecognized-commands', () => {
  it('default 4: three unknown commands get 500, the fourth 521 and a disconnect', () =>
    withServer({}, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.example', 250)
      for (const verb of ['FOO', 'GET / HTTP/1.0', 'XYZZY']) assert.equal((await c.send(verb, 500))?.raw, UNKNOWN)
      await c.send('NOOP', 250)
      assert.equal((await c.send('BAR'))?.raw, undefined)
      assert.equal((await c.reply()).raw, '521 5.5.1 Closing connection, 4 unrecognized commands\r\n')
      await c.closed()
    }))

  it('positional N (qpsmtpd `count_unrecognized_commands 2`), counted across transactions', () =>
    withServer({ max: 2 }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('FOO', UNKNOWN)
      await c.send('EHLO client.example', 250)
      await c.send('MAIL FROM:<>', 250)
      await c.send('RSET', 250)
      await c.send('BAR', /^521 5\.5\.1 Closing connection, 2 unrecognized commands\r\n$/)
      await c.closed()
      // A new connection starts from zero.
      const d = await srv.connect()
      await d.expect(220)
      await d.send('FOO', UNKNOWN)
      await d.quit()
    }))

  it('the core limit still applies when the plugin allows more', () =>
    withTestServer({ plugins: [countUnrecognized({ max: 100 })], limits: { unknownCommands: 2 } }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('FOO', 500)
      await c.send('FOO', 500)
      await c.send('FOO', Replies.tooManyUnknown.code)
      await c.closed()
    }))

  it('refuses a bad N at start-up', () => {
    assert.throws(() => countUnrecognized({ max: 0 }), /option "max": must be at least 1/)
    assert.throws(() => countUnrecognized({ max: 'four' }), /option "max": expected a number/)
  })
})
