/**
 * The AUTH backend contract (src/host/auth.ts) as a client meets it: password backends asked in
 * order after qpsmtpd's hooks, a backend that names the user, a backend that is down, slow or
 * throwing (454 4.7.0, never 535, never accepted), and a backend that runs the exchange itself
 * over the core's channel (authSasl), offered in EHLO only through the mechanisms it names.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { authenticated } from '../../src/host/auth.ts'
import { definePlugin, type FailurePolicy } from '../../src/host/define-plugin.ts'
import type { AuthMechanismsHook, AuthPasswordHook, AuthSaslHook } from '../../src/host/hook-map.ts'
import { accept, defer, pass, reject } from '../../src/host/verdict.ts'
import { renderReply } from '../../src/protocol/reply.ts'
import {
  acceptAllRecipients,
  Replies,
  type SmtpTestClient,
  startTestServer,
  type TestServer,
} from '../../src/testing/index.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const plain = (user: string, password: string) => b64(`\0${user}\0${password}`)
const line = renderReply

function passwordBackend(
  name: string,
  hook: AuthPasswordHook,
  opts: { timeoutMs?: number; onFailure?: FailurePolicy } = {},
) {
  return definePlugin({ name, options: {}, ...opts, setup: () => ({ hooks: { authPassword: hook } }) })()
}

async function session(
  plugins: ReturnType<typeof passwordBackend>[],
  run: (c: SmtpTestClient, srv: TestServer) => Promise<void>,
) {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients(), ...plugins],
    policies: { authRequiresTls: false },
    timeouts: { authFailureDelayMs: 0 },
    limits: { authFailures: 10 },
  })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await run(c, srv)
  } finally {
    await srv.close()
  }
}

describe('authPassword backends', () => {
  const first = passwordBackend('test/first', (_ctx, l) =>
    l.user === 'alice' ? (l.password === 'a' ? accept() : reject()) : pass(),
  )
  const second = passwordBackend('test/second', (_ctx, l) =>
    l.user === 'Bob' && l.password === 'b' ? authenticated('bob@example.com') : pass(),
  )

  it('offer PLAIN and LOGIN, asked in configuration order; pass hands on, reject ends', () =>
    session([first, second], async (c, srv) => {
      assert.ok((await c.send('EHLO client.test', 250))?.lines.includes('AUTH PLAIN LOGIN'))
      assert.equal((await c.send(`AUTH PLAIN ${plain('alice', 'b')}`, 535))?.raw, line(Replies.authFailed))
      assert.equal((await c.send(`AUTH PLAIN ${plain('nobody', 'x')}`, 535))?.raw, line(Replies.authFailed))
      await c.send('AUTH LOGIN', '334 VXNlcm5hbWU6')
      await c.send(b64('Bob'), '334 UGFzc3dvcmQ6')
      assert.equal((await c.send(b64('b'), 235))?.raw, line(Replies.authOk))
      assert.ok(srv.logs.some((e) => e.message === 'authenticated bob@example.com with LOGIN'))
    }))

  it('come after the qpsmtpd hooks (authPlain, auth)', async () => {
    const legacy = definePlugin({
      name: 'test/legacy',
      options: {},
      setup: () => ({ hooks: { authPlain: (_ctx, c) => (c.user === 'alice' ? accept() : pass()) } }),
    })
    await session([first, legacy()], async (c) => {
      await c.send(`AUTH PLAIN ${plain('alice', 'wrong for first')}`, 235)
    })
  })

  for (const [what, backend] of [
    ['defer()', passwordBackend('test/down', () => defer())],
    ['a throw', passwordBackend('test/throws', () => Promise.reject(new Error('directory unreachable')))],
    [
      'a throw with onFailure pass',
      passwordBackend('test/throws', () => Promise.reject(new Error('x')), { onFailure: 'pass' }),
    ],
    ['a timeout', passwordBackend('test/slow', () => new Promise(() => {}), { timeoutMs: 50 })],
    ['defer() with a 451', passwordBackend('test/odd', () => defer({ code: 451, text: 'busy' }))],
  ] as const)
    it(`a backend that fails (${what}): 454 4.7.0, later backends not asked, no failure counted`, () =>
      session([backend, first], async (c, srv) => {
        for (let i = 0; i < 12; i++)
          assert.equal((await c.send(`AUTH PLAIN ${plain('alice', 'a')}`, 454))?.raw, line(Replies.authTempFail))
        assert.ok(!srv.logs.some((e) => e.message.startsWith('authenticated')))
      }))

  it("a backend's error that quotes the password: 454, and the log shows **** in its place", () =>
    session(
      [
        passwordBackend('test/leaky', (_ctx, l) => {
          throw new Error(`bind failed for ${l.user} with password ${l.password} (${b64(l.password)})`)
        }),
      ],
      async (c, srv) => {
        await c.send(`AUTH PLAIN ${plain('alice', 'Sup3r-s3cret')}`, 454)
        const failure = srv.logs.find((e) => e.message.startsWith('hook authPassword failed'))
        assert.equal(failure?.message, 'hook authPassword failed: bind failed for alice with password **** (****)')
        assert.ok(!srv.logs.some((e) => e.message.includes('Sup3r-s3cret') || e.message.includes(b64('Sup3r-s3cret'))))
      },
    ))

  it('authenticated() with a name that could forge a log line is a failure (454)', () =>
    session([passwordBackend('test/bad-name', () => authenticated('evil\r\nX-Forged: 1'))], async (c, srv) => {
      await c.send(`AUTH PLAIN ${plain('alice', 'a')}`, 454)
      assert.ok(srv.logs.some((e) => /authenticated\(\) with an unusable user name/.test(e.message)))
    }))
})

describe('authSasl backends', () => {
  /** Runs X-TWO: two challenges; the second response must be `yes` for user alice. */
  const mechanisms: AuthMechanismsHook = (ctx) =>
    ctx.connection.helo?.host === 'none.test' ? [] : ['X-TWO', 'PLAIN', 'bad name!']
  const authSasl: AuthSaslHook = async (_ctx, channel) => {
    if (channel.mechanism !== 'X-TWO') return pass()
    const user = channel.initialResponse ?? (await channel.challenge('who?'))
    if (user === undefined) return reject()
    const answer = await channel.challenge(`sure, ${user.toString()}?`)
    if (answer === undefined) return reject()
    return answer.toString() === 'yes' && user.toString() === 'alice' ? authenticated('alice') : reject()
  }
  const twoStep = (timeoutMs = 5000) =>
    definePlugin({
      name: 'test/two-step',
      options: {},
      timeoutMs,
      setup: () => ({ hooks: { authMechanisms: mechanisms, authSasl } }),
    })()

  it('EHLO lists the mechanisms it names (SASL names only); the exchange runs over 334s', () =>
    session([twoStep()], async (c, srv) => {
      assert.ok((await c.send('EHLO client.test', 250))?.lines.includes('AUTH X-TWO PLAIN'))
      assert.ok(srv.logs.some((e) => e.message.endsWith('not SASL mechanism names, left out: ["bad name!"]')))
      await c.send('AUTH X-TWO', `334 ${b64('who?')}`)
      await c.send(b64('alice'), `334 ${b64('sure, alice?')}`)
      await c.send(b64('yes'), 235)
      assert.ok(srv.logs.some((e) => e.message === 'authenticated alice with X-TWO'))
    }))

  it('an initial response is handed over; a wrong answer is 535; * cancels with 501', () =>
    session([twoStep()], async (c) => {
      await c.send(`AUTH X-TWO ${b64('alice')}`, `334 ${b64('sure, alice?')}`)
      await c.send(b64('no'), 535)
      await c.send('AUTH X-TWO', 334)
      assert.equal((await c.send('*', 501))?.raw, line(Replies.authCancelled))
      await c.send(`AUTH X-TWO ${b64('alice')}`, 334)
      assert.equal((await c.send('!!', 501))?.raw, line(Replies.authBadBase64))
    }))

  it('a backend that times out waiting for the client: 454, and the next line is a command again', () =>
    session([twoStep(200)], async (c) => {
      await c.send('AUTH X-TWO', 334)
      assert.equal((await c.reply()).raw, line(Replies.authTempFail))
      await c.send('NOOP', 250)
      await c.send(`AUTH X-TWO ${b64('alice')}`, 334)
      await c.send(b64('yes'), 235)
    }))

  it('no mechanisms named: no AUTH in EHLO, AUTH is 503', () =>
    session([twoStep()], async (c) => {
      assert.doesNotMatch((await c.send('EHLO none.test', 250))?.raw ?? '', /AUTH/)
      assert.equal((await c.send('AUTH X-TWO', 503))?.raw, line(Replies.authNotAvailable))
    }))

  it('accept() without naming the user is a failure (the core does not know who it is)', async () => {
    const lazy = definePlugin({
      name: 'test/lazy',
      options: {},
      setup: () => ({ hooks: { authMechanisms: () => ['X-LAZY'], authSasl: () => accept() } }),
    })
    await session([lazy()], async (c) => {
      await c.send('AUTH X-LAZY', 454)
    })
  })
})
