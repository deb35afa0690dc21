/**
 * SCRAM-SHA-256 and SCRAM-SHA-256-PLUS run by the core (RFC 5802, RFC 7677, RFC 9266) with the
 * secrets auth_flat_file hands over (stored keys and clear text), through a client written from
 * the RFCs (src/testing/scram.ts): the proofs both ways, the channel binding to TLS 1.3 and its
 * downgrades, and unknown users that cannot be told from known ones by what the server sends.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scramCredentials } from '../../src/host/auth.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { defer } from '../../src/host/verdict.ts'
import authFlatFile from '../../src/plugins/auth/auth-flat-file.ts'
import { deriveScramKeys, formatScramSecret, type ScramKeys } from '../../src/protocol/scram.ts'
import { resolveKeys } from '../../src/session/auth/scram.ts'
import { localAuthShared } from '../../src/session/auth/shared.ts'
import {
  acceptAllRecipients,
  memoryStore,
  type SmtpTestClient,
  scramLogin,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../src/testing/index.ts'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const stored = formatScramSecret(
  await deriveScramKeys('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096),
)
const USERS = [
  `stored@example.com:${stored}`,
  'clear@example.com:c1ear text',
  'crypt@example.com:{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
]

async function withSession(
  run: (c: SmtpTestClient, srv: TestServer) => Promise<void>,
  opts: Partial<TestServerOptions> & { starttls?: boolean } = {},
): Promise<void> {
  const srv = await startTestServer({
    plugins: [acceptAllRecipients(), authFlatFile()],
    config: { flat_auth_pw: USERS },
    policies: opts.starttls ? {} : { authRequiresTls: false },
    timeouts: { authFailureDelayMs: 0 },
    limits: { authFailures: 10 },
    tls: opts.starttls === true,
    ...opts,
  })
  try {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    if (opts.starttls) {
      await c.startTls()
      await c.send('EHLO client.test', 250)
    }
    await run(c, srv)
    await c.quit()
  } finally {
    await srv.close()
  }
}

describe('SCRAM-SHA-256 against auth_flat_file', () => {
  it('is offered beside PLAIN LOGIN CRAM-MD5; stored keys and clear text both log in, the server proves itself', () =>
    withSession(async (c, srv) => {
      const ehlo = await c.send('EHLO client.test', 250)
      assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256'), ehlo?.raw)
      const r = await scramLogin(c, { user: 'stored@example.com', password: 'pencil' })
      assert.equal(r.reply.raw, '235 2.7.0 Authentication successful\r\n')
      assert.equal(r.serverVerified, true)
      assert.deepEqual(r.serverFirst?.salt, 'W22ZaJ0SNY7soEsUEjb6gQ==')
      assert.ok(srv.logs.some((e) => e.message === 'authenticated stored@example.com with SCRAM-SHA-256'))
    }))

  it('clear text, without an initial response', () =>
    withSession(async (c) => {
      const r = await scramLogin(c, { user: 'CLEAR@example.com', password: 'c1ear text', initialResponse: false })
      assert.equal(r.reply.code, 235)
      assert.equal(r.serverVerified, true)
    }))

  it('a wrong password, an unknown user and a hashed entry: 535 after the whole exchange, made-up salts stable', async () => {
    const salts: string[] = []
    // Two servers (two worker processes, two nodes) on one store make up the same salts.
    const store = memoryStore()
    for (let round = 0; round < 2; round++)
      await withSession(
        async (c) => {
          for (const [user, password] of [
            ['stored@example.com', 'wrong'],
            ['nobody@example.com', 'pencil'],
            ['crypt@example.com', 'Hello world!'],
          ] as const) {
            const r = await scramLogin(c, { user, password })
            assert.equal(r.reply.raw, '535 5.7.8 Authentication credentials invalid\r\n', user)
            assert.equal(r.serverFirst?.iterations, 4096, `${user}: the same iteration count as real users`)
            if (user !== 'stored@example.com') salts.push(r.serverFirst?.salt ?? '')
          }
        },
        { store },
      )
    assert.equal(salts[0], salts[2])
    assert.equal(salts[1], salts[3])
    assert.notEqual(salts[0], salts[1])
    assert.match(salts[0] ?? '', /^[A-Za-z0-9+/]{22}==$/)
  })

  it('PLAIN and LOGIN check passwords against stored SCRAM keys too', () =>
    withSession(async (c) => {
      await c.send(`AUTH PLAIN ${b64('\0stored@example.com\0wrong')}`, 535)
      await c.send(`AUTH PLAIN ${b64('\0stored@example.com\0pencil')}`, 235)
    }))

  it('an authzid other than the user, and a client that wants to bind where it cannot: 535', () =>
    withSession(async (c) => {
      assert.equal(
        (await scramLogin(c, { user: 'clear@example.com', password: 'c1ear text', authzid: 'stored@example.com' }))
          .reply.code,
        535,
      )
      assert.equal(
        (await scramLogin(c, { user: 'clear@example.com', password: 'c1ear text', flag: 'p' })).reply.code,
        535,
      )
      // y over plain text: the client can bind, the server cannot (nothing offered -PLUS): fine.
      assert.equal(
        (await scramLogin(c, { user: 'clear@example.com', password: 'c1ear text', flag: 'y' })).reply.code,
        235,
      )
    }))

  it('not offered when every entry is hashed another way', () =>
    withSession(
      async (c) => {
        const ehlo = await c.send('EHLO client.test', 250)
        assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN'), ehlo?.raw)
        await c.send(`AUTH SCRAM-SHA-256 ${b64('n,,n=crypt@example.com,r=abc')}`, 504)
      },
      { config: { flat_auth_pw: [USERS[2] as string] } },
    ))

  it('malformed client messages are failures; a non-empty answer to the server-final message too', () =>
    withSession(async (c) => {
      await c.send(`AUTH SCRAM-SHA-256 ${b64('n,,m=x,n=a,r=b')}`, 535)
      await c.send('AUTH SCRAM-SHA-256', '334 ')
      await c.send(b64('n,,n=clear@example.com,r=abc'), 334)
      await c.send(b64('c=biws,r=abc,p=AAAA'), 535)
      await c.send('AUTH SCRAM-SHA-256', '334 ')
      await c.send('*', 501)
    }))

  it('a backend that cannot answer: 454 before the server-first message', async () => {
    const down = definePlugin({
      name: 'test/down',
      options: {},
      setup: () => ({ hooks: { authScram: () => defer() } }),
    })
    await withSession(
      async (c) => {
        await c.send(`AUTH SCRAM-SHA-256 ${b64('n,,n=a,r=b')}`, '454 4.7.0 Temporary authentication failure')
      },
      { plugins: [acceptAllRecipients(), down()] },
    )
  })

  it('unusable credentials from a backend: 454, logged', async () => {
    const broken = definePlugin({
      name: 'test/broken',
      options: {},
      setup: () => ({
        hooks: {
          authScram: () =>
            scramCredentials({
              iterations: 0,
              salt: Buffer.alloc(0),
              storedKey: Buffer.alloc(3),
              serverKey: Buffer.alloc(3),
            }),
        },
      }),
    })
    await withSession(
      async (c, srv) => {
        await c.send(`AUTH SCRAM-SHA-256 ${b64('n,,n=a,r=b')}`, 454)
        assert.ok(srv.logs.some((e) => /test\/broken gave unusable SCRAM credentials for "a"/.test(e.message)))
      },
      { plugins: [acceptAllRecipients(), broken()] },
    )
  })
})

describe('SCRAM-SHA-256-PLUS (tls-exporter) over STARTTLS', () => {
  it('offered over TLS 1.3 and logs in bound to the channel', () =>
    withSession(
      async (c) => {
        assert.equal(c.tlsProtocol, 'TLSv1.3')
        const ehlo = await c.send('EHLO client.test', 250)
        assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256-PLUS SCRAM-SHA-256'), ehlo?.raw)
        const r = await scramLogin(c, { user: 'stored@example.com', password: 'pencil' })
        assert.equal(r.reply.code, 235)
        assert.equal(r.serverVerified, true)
      },
      { starttls: true },
    ))

  it('binding data of another channel (a relayed exchange) is refused', () =>
    withSession(
      async (c) => {
        const r = await scramLogin(c, { user: 'stored@example.com', password: 'pencil', bindingData: Buffer.alloc(32) })
        assert.equal(r.reply.code, 535)
      },
      { starttls: true },
    ))

  it('downgrades are refused: y to SCRAM-SHA-256 while -PLUS was offered, n to -PLUS', () =>
    withSession(
      async (c) => {
        const y = await scramLogin(c, {
          user: 'stored@example.com',
          password: 'pencil',
          mechanism: 'SCRAM-SHA-256',
          flag: 'y',
        })
        assert.equal(y.reply.code, 535)
        const n = await scramLogin(c, {
          user: 'stored@example.com',
          password: 'pencil',
          mechanism: 'SCRAM-SHA-256-PLUS',
          flag: 'n',
        })
        assert.equal(n.reply.code, 535)
        const plain = await scramLogin(c, {
          user: 'stored@example.com',
          password: 'pencil',
          mechanism: 'SCRAM-SHA-256',
          flag: 'n',
        })
        assert.equal(plain.reply.code, 235)
      },
      { starttls: true },
    ))

  it('not offered over TLS 1.2 (no extended master secret to rely on)', async () => {
    const srv = await startTestServer({
      plugins: [acceptAllRecipients(), authFlatFile()],
      config: { flat_auth_pw: USERS },
      tls: true,
    })
    try {
      const { connect } = await import('node:tls')
      const socket = connect({
        port: srv.smtpsPort ?? 0,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        maxVersion: 'TLSv1.2',
      })
      const text = await new Promise<string>((resolve, reject) => {
        let got = ''
        socket.on('data', (d) => {
          got += String(d)
          if (got.startsWith('220') && !got.includes('EHLO sent')) {
            got += 'EHLO sent'
            socket.write('EHLO client.test\r\n')
          } else if (/\r\n250 [^\r]*\r\n$/.test(got)) resolve(got)
        })
        socket.on('error', reject)
      })
      socket.destroy()
      assert.match(text, /250-AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256\r\n/)
    } finally {
      await srv.close()
    }
  })
})

describe('SCRAM timing', () => {
  // Not timed (a loaded machine makes any bound flaky): every case must derive keys exactly once.
  it('stored keys, clear text, an unknown and a refused user each pay one PBKDF2', async () => {
    const shared = localAuthShared()
    const keys: ScramKeys = await deriveScramKeys('pencil', Buffer.alloc(16, 1), 4096)
    const derivations = async (found: Parameters<typeof resolveKeys>[0]) => {
      let n = 0
      const result = await resolveKeys(found, 'u', shared, async (p, s, i) => {
        n++
        return deriveScramKeys(p, s, i)
      })
      return { n, ok: result !== 'invalid' }
    }
    assert.deepEqual(await derivations({ kind: 'credentials', credentials: keys }), { n: 1, ok: true })
    assert.deepEqual(await derivations({ kind: 'credentials', credentials: { password: 'clear' } }), { n: 1, ok: true })
    assert.deepEqual(await derivations(undefined), { n: 1, ok: true })
  })
})
