import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { withTestServer } from '../../testing/index.ts'
import { ask } from '../test-support.ts'
import quitFortune from './quit-fortune.ts'

describe("quit_fortune (with Debian's fortune program)", () => {
  it('answers QUIT after HELO with the 221 and a fortune, one "  / " line per line of it', () =>
    withTestServer({ plugins: [quitFortune()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('HELO client.test', 250)
      const raw = await ask(c, 'QUIT')
      const lines = raw.split('\r\n').slice(0, -1)
      assert.equal(lines[0], '221-2.0.0 mx.test closing connection.')
      assert.ok(lines.length >= 2, raw)
      for (const l of lines.slice(1, -1)) assert.match(l, /^221-2\.0\.0 {3}\/ /)
      assert.match(lines.at(-1) ?? '', /^221 2\.0\.0 {3}\/ /)
      await c.closed()
    }))

  it('answers QUIT after EHLO, or without the program, with the plain 221', async () => {
    await withTestServer({ plugins: [quitFortune()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal(await ask(c, 'QUIT'), '221 2.0.0 mx.test closing connection\r\n')
    })
    await withTestServer({ plugins: [quitFortune({ fortune: '/nonexistent/fortune' })] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('HELO client.test', 250)
      assert.equal(await ask(c, 'QUIT'), '221 2.0.0 mx.test closing connection\r\n')
    })
  })
})
