import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, ask } from '../test-support.ts'
import badmailfromto from './badmailfromto.ts'

const PAIRS = ['stalker@bad.example\tvictim@local.test', '@spam.example  boss@local.test']

describe('badmailfromto', () => {
  it('refuses a recipient for the listed sender only, as if it did not exist', () =>
    withTestServer({ plugins: [badmailfromto(), acceptRcpt()], config: { badmailfromto: PAIRS } }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<Stalker@Bad.example>', 250)
      assert.equal(
        await ask(c, 'RCPT TO:<Victim@local.test>'),
        '550 5.1.1 mail to victim@local.test not accepted here\r\n',
      )
      await c.send('RCPT TO:<other@local.test>', 250)
      await c.send('RSET', 250)
      await c.send('MAIL FROM:<friend@bad.example>', 250)
      await c.send('RCPT TO:<victim@local.test>', 250)
      await c.send('RSET', 250)
      await c.send('MAIL FROM:<anyone@spam.example>', 250)
      assert.equal(await ask(c, 'RCPT TO:<boss@local.test>'), '550 5.1.1 mail to boss@local.test not accepted here\r\n')
      await c.send('RSET', 250)
      await c.send('MAIL FROM:<>', 250)
      await c.send('RCPT TO:<victim@local.test>', 250)
      await c.quit()
    }))

  it('a line without a recipient stops the start at file:line', () =>
    assert.rejects(
      startTestServer({
        plugins: [badmailfromto()],
        config: { badmailfromto: ['a@b.example c@d.example', 'lonely@b.example'] },
      }),
      (e: unknown) =>
        e instanceof ConfigError && e.message === '<config badmailfromto>:2: expected a sender and a recipient',
    ))
})
