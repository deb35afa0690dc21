import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { acceptAllRecipients, startTestServer } from '../../testing/index.ts'
import authFlatFile from './auth-flat-file.ts'
import authdeny from './authdeny.ts'

const plain = (user: string, password: string) =>
  `AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`

describe('auth/authdeny', () => {
  it('logs every failed AUTH (never the password), lets successes be, and offers no mechanism alone', async () => {
    const srv = await startTestServer({
      plugins: [acceptAllRecipients(), authFlatFile(), authdeny()],
      config: { flat_auth_pw: ['alice@example.com:s3cret-pw'] },
      policies: { authRequiresTls: false },
      limits: { authFailures: 10 },
    })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send(plain('alice@example.com', 'wr0ng-pw'), 535)
      await c.send(plain('nobody@example.com', 'wr0ng-pw'), 535)
      await c.send('AUTH LOGIN', 334)
      await c.send('*', 501)
      await c.send(plain('alice@example.com', 's3cret-pw'), 235)
      await c.quit()
      const said = srv.logs.filter((e) => e.plugin === 'auth/authdeny').map((e) => [e.level, e.message])
      assert.deepEqual(said, [
        [4, 'fail: cannot authenticate "alice@example.com" (PLAIN)'],
        [4, 'fail: cannot authenticate "nobody@example.com" (PLAIN)'],
      ])
      assert.ok(!srv.logs.some((e) => e.message.includes('s3cret-pw') || e.message.includes('wr0ng-pw')))
    } finally {
      await srv.close()
    }
    const alone = await startTestServer({
      plugins: [acceptAllRecipients(), authdeny()],
      policies: { authRequiresTls: false },
    })
    try {
      const c = await alone.connect()
      await c.expect(220)
      assert.doesNotMatch((await c.send('EHLO client.test', 250))?.raw ?? '', /AUTH/)
      await c.quit()
    } finally {
      await alone.close()
    }
  })
})
