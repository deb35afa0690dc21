import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { openSession, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import randomError from './random-error.ts'

describe('random_error', () => {
  it('100 fails every connection at once with a temporary refusal', () =>
    withTestServer({ plugins: [randomError({ percent: 100 })] }, async (srv) => {
      for (let i = 0; i < 5; i++) {
        const c = await srv.connect()
        assert.equal((await c.reply()).raw, '421 4.7.0 random failure\r\n')
        await c.closed()
      }
    }))

  it('a negative percent never fails', () =>
    withTestServer({ plugins: [randomError({ percent: -1 }), acceptRcpt()] }, async (srv) => {
      for (let i = 0; i < 5; i++) {
        const c = await openSession(srv)
        assert.match((await sendMail(c, 's@example.org', ['u@local.test'], 'Subject: x\r\n\r\nbody\r\n')).raw, /^250 /)
        await c.quit()
      }
      assert.equal(srv.queued.length, 5)
    }))
})
