import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { rawConnect } from '../../../test/protocol/raw-connect.ts'
import { type FakeClock, fakeClock } from '../../clock/index.ts'
import { KarmaHistory } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import type { Store } from '../../store/index.ts'
import type { SmtpTestClient } from '../../testing/client.ts'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import authFlatFile from '../auth/auth-flat-file.ts'
import karma from '../karma/index.ts'
import { failingStore, storeKinds, TestStores } from '../state-test-support.ts'
import { acceptRcpt, summaryLine } from '../test-support.ts'
import limit from './index.ts'

const stores = new TestStores()
const servers: TestServer[] = []
after(async () => {
  for (const s of servers) await s.close()
  await stores.close()
})

const MINUTE = 60_000
const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64')

/** Sets the client's karma history, as the karma plugin would. */
const history = definePlugin({
  name: 'test/history',
  options: { value: opt.number({ default: 0 }) },
  setup: ({ options }) => ({
    hooks: {
      preConnection: (ctx) => {
        ctx.connection.notes.set(KarmaHistory, options.value)
        return pass()
      },
    },
  }),
})

async function server(
  limits: readonly string[],
  extra: TestServerOptions & { clock?: FakeClock; store?: Store } = {},
): Promise<TestServer> {
  const srv = await startTestServer({
    ...extra,
    config: { limits, flat_auth_pw: ['alice@mx.test:right'], ...extra.config },
    policies: { authRequiresTls: false },
    plugins: [...(extra.plugins ?? []), limit(), authFlatFile(), acceptRcpt()],
  })
  servers.push(srv)
  return srv
}

async function greeted(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

/** The reply to MAIL FROM in a new session. */
async function mailFrom(srv: TestServer, sender: string): Promise<string> {
  const c = await greeted(srv)
  const r = (await c.send(`MAIL FROM:<${sender}>`, /^/))!.raw
  await c.quit()
  return r
}

for (const kind of storeKinds) {
  describe(`limit on the ${kind} store`, () => {
    it('connections per address: past the limit 421 4.7.0 and a close, on every server sharing the store, until the window slides', async () => {
      const clock = fakeClock()
      const store = await stores.open(kind, clock)
      const a = await server(['connections ip 3/1m'], { clock, store })
      const b = await server(['connections ip 3/1m'], { clock, store })
      for (const srv of [a, b, a])
        assert.match(await (await rawConnect(srv.port, '127.0.0.1', '127.0.0.2')).firstLine, /^220 /)
      for (const srv of [b, a])
        assert.equal(
          await (await rawConnect(srv.port, '127.0.0.1', '127.0.0.2')).closed,
          '421 4.7.0 Too many connections from 127.0.0.2, slow down\r\n',
        )
      assert.match(await (await rawConnect(b.port, '127.0.0.1', '127.0.0.3')).firstLine, /^220 /, 'another address')
      await clock.advance(2 * MINUTE)
      assert.match(await (await rawConnect(b.port, '127.0.0.1', '127.0.0.2')).firstLine, /^220 /, 'a minute later')
    })

    it('messages per sender: 450 4.7.1 past the limit; other senders go on', async () => {
      const clock = fakeClock()
      const srv = await server(['messages sender 2/1h'], { clock, store: await stores.open(kind, clock) })
      assert.match(await mailFrom(srv, 'a@s.test'), /^250 /)
      assert.match(await mailFrom(srv, 'A@S.test'), /^250 /)
      assert.equal(await mailFrom(srv, 'a@s.test'), '450 4.7.1 Too much mail from a@s.test, slow down\r\n')
      assert.match(await mailFrom(srv, 'b@s.test'), /^250 /)
    })
  })
}

describe('limit', () => {
  it('an IPv4 network counts all its addresses together; exempt networks are not counted', async () => {
    const srv = await server(['connections ip/8 2/1m', 'exempt 127.0.0.9'])
    for (const from of ['127.0.0.4', '127.0.0.5'])
      assert.match(await (await rawConnect(srv.port, '127.0.0.1', from)).firstLine, /^220 /)
    assert.equal(
      await (await rawConnect(srv.port, '127.0.0.1', '127.0.0.6')).closed,
      '421 4.7.0 Too many connections from 127.0.0.0/8, slow down\r\n',
    )
    assert.match(await (await rawConnect(srv.port, '127.0.0.1', '127.0.0.9')).firstLine, /^220 /)
  })

  it('recipients per recipient domain and per address, with their own replies', async () => {
    const srv = await server(['recipients rcpt_domain 2/1m', 'recipients ip 3/1m'])
    const c = await greeted(srv)
    await c.send('MAIL FROM:<a@s.test>', 250)
    await c.send('RCPT TO:<u1@mx.test>', 250)
    await c.send('RCPT TO:<u2@MX.test>', 250)
    await c.send('RCPT TO:<u3@mx.test>', '450 4.7.1 Too much mail for mx.test, try again later\r\n')
    await c.send('RCPT TO:<u@other.test>', '450 4.7.1 Too many recipients from 127.0.0.1, slow down\r\n')
    await c.quit()
    assert.match(await summaryLine(srv), /limit:fail/)
  })

  it('authenticated users have their own limits, and exempt addresses do not lift them', async () => {
    const srv = await server(['messages user 1/1h', 'messages ip 1/1h', 'exempt 127.0.0.0/8'])
    const c = await greeted(srv)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'right')}`, 235)
    await c.send('MAIL FROM:<alice@mx.test>', 250)
    await c.send('RSET', 250)
    await c.send('MAIL FROM:<alice@mx.test>', '450 4.7.1 Too much mail from alice@mx.test, slow down\r\n')
    await c.quit()
    assert.match(await mailFrom(srv, 'anyone@s.test'), /^250 /, 'the exempt address is not limited')
  })

  it('limits by karma history: good, unknown and bad clients each get theirs', async () => {
    const rules = ['messages ip 1/1h bad', 'messages ip 3/1h', 'messages ip 0/1h good']
    const counts: Record<string, number> = {}
    for (const [name, value] of [
      ['bad', -2],
      ['unknown', 0],
      ['good', 9],
    ] as const) {
      const srv = await server(rules, { plugins: [history({ value })] })
      let ok = 0
      while (ok < 10 && (await mailFrom(srv, 'a@s.test')).startsWith('250')) ok++
      counts[name] = ok
    }
    assert.deepEqual(counts, { bad: 1, unknown: 3, good: 10 })
  })

  it('AUTH failures per address: the next attempt is refused before its credentials, until the window passes', async () => {
    const clock = fakeClock()
    const srv = await server(['auth_failures ip 2/10m'], { clock })
    const c = await greeted(srv)
    for (let i = 0; i < 2; i++)
      await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'wrong')}`, '535 5.7.8 Authentication credentials invalid\r\n')
    await c.quit()
    const d = await greeted(srv)
    await d.send(
      `AUTH PLAIN ${plain('alice@mx.test', 'right')}`,
      '421 4.7.0 Too many failed authentications from 127.0.0.1, try again later\r\n',
    )
    await d.closed()
    await clock.advance(11 * MINUTE)
    const e = await greeted(srv)
    await e.send(`AUTH PLAIN ${plain('alice@mx.test', 'right')}`, 235)
    await e.quit()
  })

  it('AUTH failures per user: locked out with the same reply whatever the password', async () => {
    const srv = await server(['auth_failures user 2/1h'])
    for (let i = 0; i < 2; i++) {
      const c = await greeted(srv)
      await c.send(`AUTH PLAIN ${plain('alice@mx.test', `guess${i}`)}`, 535)
      await c.quit()
    }
    const LOCKED = '454 4.7.0 Too many failed authentications, try again later\r\n'
    const c = await greeted(srv)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'guess3')}`, LOCKED)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'right')}`, LOCKED)
    await c.send(`AUTH PLAIN ${plain('bob@mx.test', 'x')}`, 535)
    await c.quit()
  })

  it('failed AUTH attempts cost karma: three in a connection make it naughty', async () => {
    const srv = await startTestServer({
      config: { flat_auth_pw: ['alice@mx.test:right'] },
      policies: { authRequiresTls: false },
      plugins: [karma(), authFlatFile(), acceptRcpt()],
    })
    servers.push(srv)
    const c = await greeted(srv)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'a')}`, 535)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'b')}`, 535)
    await c.send(`AUTH PLAIN ${plain('alice@mx.test', 'c')}`, /^421 /)
    await c.closed()
    await summaryLine(srv)
    assert.match((await srv.store.get('karma:2130706433'))!, /^\d+:1:0:1$/)
  })

  it('a bad rules line stops the start at its line', async () => {
    const bad = [
      ['connections sender 1/1m', /connections cannot be counted per sender/],
      ['messages ip 10', /expected LIMIT\/WINDOW such as 30\/1m/],
      ['messages ip 10/0m', /expected LIMIT\/WINDOW/],
      ['floods ip 1/1m', /unknown event "floods"/],
      ['messages ip/40 1/1m', /unknown "per" ip\/40/],
      ['messages ip 1/1m great', /good, unknown or bad, not "great"/],
      ['exempt mx.example', /expected "exempt ADDRESS\[\/BITS\]"/],
    ] as const
    for (const [line, why] of bad)
      await assert.rejects(server(['messages ip 5/1m', line]), (e: Error) => {
        assert.match(e.message, /limits>?:2: /)
        assert.match(e.message, why)
        return true
      })
    await assert.rejects(
      server(['messages ip 5/1m', 'messages ip 6/1h']),
      /messages ip is already limited at .*limits>?:1/,
    )
  })

  it('the store cannot answer: no limits (on_error pass), or 421 4.3.0', async () => {
    const open = await server(['connections ip 1/1m'], { store: failingStore() })
    for (let i = 0; i < 3; i++) assert.match(await (await rawConnect(open.port)).firstLine, /^220 /)
    const strict = await startTestServer({
      config: { limits: ['connections ip 1/1m'] },
      plugins: [limit({ on_error: 'defer' })],
      store: failingStore(),
    })
    servers.push(strict)
    assert.equal(await (await rawConnect(strict.port)).closed, '421 4.3.0 Rate limits unavailable, try again later\r\n')
  })
})
