import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { renderReply } from '../../protocol/reply.ts'
import {
  Replies,
  type SmtpTestClient,
  startTestServer,
  type TestServer,
  type TestServerOptions,
} from '../../testing/index.ts'
import { acceptRcpt, receivedPattern, sendMail } from '../test-support.ts'
import authFlatFile, { dummyEntry, verifyEntry } from './auth-flat-file.ts'
import { verifyPassword } from './password-hash.ts'

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const plain = (user: string, pass: string) => b64(`\0${user}\0${pass}`)
const raw = (r: { raw: string } | undefined) => r?.raw
const line = renderReply

// 'Hello world!' (SHA-crypt test vector, 5000 rounds) and 'tr0ub4dor' with 80000 rounds.
const BOB = '{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5'
const PASSWORDS = ['alice@example.com:s3cret:with:colons', `bob@example.com:${BOB}`, 'Carol@Example.com:{PLAIN}c4rol']

async function server(extra: Partial<TestServerOptions> = {}): Promise<TestServer> {
  return startTestServer({
    plugins: [acceptRcpt({ relay_only: true }), authFlatFile()],
    config: { flat_auth_pw: PASSWORDS },
    policies: { authRequiresTls: false },
    ...extra,
  })
}

async function greet(srv: TestServer): Promise<SmtpTestClient> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  return c
}

async function withClient(run: (c: SmtpTestClient, srv: TestServer) => Promise<void>, extra = {}) {
  const srv = await server(extra)
  try {
    const c = await greet(srv)
    await run(c, srv)
    await c.quit()
  } finally {
    await srv.close()
  }
}

const OK = line(Replies.authOk)
const FAILED = line(Replies.authFailed)

describe('auth/auth_flat_file mechanisms', () => {
  it('PLAIN with an initial response (password containing colons)', () =>
    withClient(async (c) => {
      assert.equal(raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 235)), OK)
    }))

  it('PLAIN without an initial response', () =>
    withClient(async (c) => {
      assert.equal(raw(await c.send('AUTH PLAIN', 334)), '334 \r\n')
      assert.equal(raw(await c.send(plain('alice@example.com', 's3cret:with:colons'), 235)), OK)
    }))

  it('LOGIN', () =>
    withClient(async (c) => {
      assert.equal(raw(await c.send('AUTH LOGIN', 334)), '334 VXNlcm5hbWU6\r\n')
      assert.equal(raw(await c.send(b64('alice@example.com'), 334)), '334 UGFzc3dvcmQ6\r\n')
      assert.equal(raw(await c.send(b64('s3cret:with:colons'), 235)), OK)
    }))

  it('CRAM-MD5 with a clear-text password (digest computed here)', () =>
    withClient(async (c) => {
      const challenge = Buffer.from((await c.send('AUTH CRAM-MD5', 334))?.text ?? '', 'base64').toString('utf8')
      assert.match(challenge, /^<[0-9a-f]{32}\.\d+@mx\.test>$/)
      const digest = createHmac('md5', 'c4rol').update(challenge).digest('hex')
      assert.equal(raw(await c.send(b64(`carol@example.com ${digest}`), 235)), OK)
    }))

  it('CRAM-MD5 with a wrong digest, and for a hashed password, fails', () =>
    withClient(
      async (c) => {
        const ch = Buffer.from((await c.send('AUTH CRAM-MD5', 334))?.text ?? '', 'base64').toString('utf8')
        const bad = createHmac('md5', 'wrong').update(ch).digest('hex')
        assert.equal(raw(await c.send(b64(`carol@example.com ${bad}`), 535)), FAILED)
        const ch2 = Buffer.from((await c.send('AUTH CRAM-MD5', 334))?.text ?? '', 'base64').toString('utf8')
        const bob = createHmac('md5', 'Hello world!').update(ch2).digest('hex')
        assert.equal(raw(await c.send(b64(`bob@example.com ${bob}`), 535)), FAILED)
      },
      { limits: { authFailures: 10 } },
    ))

  it('hashed passwords and case-insensitive user names', () =>
    withClient(async (c) => {
      assert.equal(raw(await c.send(`AUTH PLAIN ${plain('BOB@example.COM', 'Hello world!')}`, 235)), OK)
    }))

  it('EHLO offers PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256, and neither CRAM-MD5 nor SCRAM when every password is hashed', async () => {
    await withClient(async (c) => {
      const ehlo = await c.send('EHLO again.test', 250)
      assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256'), ehlo?.raw)
    })
    await withClient(
      async (c) => {
        const ehlo = await c.send('EHLO again.test', 250)
        assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN'), ehlo?.raw)
      },
      { config: { flat_auth_pw: [`bob@example.com:${BOB}`] } },
    )
  })

  it('a malformed flat_auth_pw line stops the start without showing the line', async () => {
    await assert.rejects(
      server({ config: { flat_auth_pw: ['alice@example.com:ok', 'nocolon-secret'] } }),
      (e: Error) => {
        assert.match(e.message, /<config flat_auth_pw>:2: expected user@domain:password/)
        assert.doesNotMatch(e.message, /nocolon-secret/)
        return true
      },
    )
  })
})

describe('auth/auth_flat_file failures', () => {
  it('unknown user and wrong password get the same reply', () =>
    withClient(
      async (c) => {
        assert.equal(raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 'wrong')}`, 535)), FAILED)
        assert.equal(raw(await c.send(`AUTH PLAIN ${plain('nobody@example.com', 'wrong')}`, 535)), FAILED)
        await c.send('AUTH LOGIN', 334)
        await c.send(b64('nobody@example.com'), 334)
        assert.equal(raw(await c.send(b64('x'), 535)), FAILED)
      },
      { limits: { authFailures: 10 } },
    ))

  // Not timed (a loaded machine makes any bound flaky): each outcome must verify one hashed entry.
  it('unknown user costs what a wrong password costs: one verification of a hashed entry', async () => {
    const stored = PASSWORDS.map((p) => p.slice(p.indexOf(':', p.indexOf('@')) + 1))
    const dummy = dummyEntry(stored)
    assert.equal(dummy, BOB, 'the first hashed entry')
    const verified = async (entry: string | undefined, given: string) => {
      const seen: string[] = []
      const ok = await verifyEntry(entry, given, dummy, async (s, g) => {
        seen.push(s)
        return verifyPassword(s, g)
      })
      return { ok, seen }
    }
    assert.deepEqual(await verified(undefined, 'Hello world!'), { ok: false, seen: [BOB] }, 'unknown user')
    assert.deepEqual(await verified(BOB, 'wrong'), { ok: false, seen: [BOB] }, 'hashed entry, wrong password')
    assert.deepEqual(await verified(BOB, 'Hello world!'), { ok: true, seen: [BOB] }, 'hashed entry, right password')
    const clear = stored[0] as string
    assert.deepEqual(await verified(clear, 'wrong'), { ok: false, seen: [clear, BOB] }, 'clear text pays for the dummy')
    assert.deepEqual(await verified(clear, 's3cret:with:colons'), { ok: true, seen: [clear, BOB] })
    // Without a hashed entry the dummy is a random clear-text one, as cheap as the real ones.
    assert.match(dummyEntry(['{PLAIN}x', 'clear']), /^\{PLAIN\}[0-9a-f]{32}$/)
  })

  it('* cancels (501), bad base64 is 501 5.5.2', () =>
    withClient(async (c) => {
      await c.send('AUTH LOGIN', 334)
      assert.equal(raw(await c.send('*', 501)), line(Replies.authCancelled))
      assert.equal(raw(await c.send('AUTH PLAIN !!!!', 501)), line(Replies.authBadBase64))
      await c.send('AUTH PLAIN', 334)
      assert.equal(raw(await c.send('AHVzZXIAcGFzcw', 501)), line(Replies.authBadBase64))
      assert.equal(raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 235)), OK)
    }))

  it('a second AUTH is 503, and AUTH inside a transaction is 503', async () => {
    await withClient(async (c) => {
      await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 235)
      assert.equal(
        raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 503)),
        line(Replies.authAlready),
      )
    })
    await withClient(async (c) => {
      await c.send('MAIL FROM:<a@example.org>', 250)
      assert.equal(
        raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 503)),
        line(Replies.authInTxn),
      )
    })
  })

  it('the failure limit closes the session with 421', () =>
    withClient(
      async (c) => {
        assert.equal(raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 'bad1')}`, 535)), FAILED)
        assert.equal(
          raw(await c.send(`AUTH PLAIN ${plain('nobody@example.com', 'bad2')}`, 421)),
          line(Replies.authTooManyFailures),
        )
        await c.closed()
      },
      { limits: { authFailures: 2 } },
    ))

  it('over plain text AUTH is refused with 538 5.7.11 by default', async () => {
    const srv = await server({ policies: {} })
    try {
      const c = await greet(srv)
      assert.equal(
        raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 538)),
        line(Replies.authNeedsTls),
      )
      await c.quit()
    } finally {
      await srv.close()
    }
  })
})

describe('auth/auth_flat_file over TLS', () => {
  it('AUTH after STARTTLS makes a relay client and the Received field says ESMTPSA', async () => {
    const srv = await server({ policies: {}, tls: true })
    try {
      const c = await greet(srv)
      await c.send('MAIL FROM:<alice@example.com>', 250)
      assert.equal(raw(await c.send('RCPT TO:<someone@foreign.test>', 550)), '550 5.7.1 Relaying denied\r\n')
      await c.send('RSET', 250)
      await c.startTls()
      await c.send('EHLO client.test', 250)
      assert.equal(raw(await c.send(`AUTH PLAIN ${plain('alice@example.com', 's3cret:with:colons')}`, 235)), OK)
      const r = await sendMail(c, 'alice@example.com', ['someone@foreign.test'], 'Subject: relayed\r\n\r\nhi\r\n')
      const id = /Queued as ([0-9a-z]{22})/.exec(r.raw)?.[1] ?? ''
      assert.match(r.raw, /^250 2\.0\.0 Queued as /)
      assert.equal(srv.queued.length, 1)
      assert.match(
        srv.queued[0]?.text ?? '',
        new RegExp(
          `^${receivedPattern({ helo: 'client.test', me: 'mx.test', id, recipient: 'someone@foreign.test', withProtocol: 'ESMTPSA', tls: true })}` +
            // RFC 8601 auth method: the core reports the SMTP AUTH of the session.
            'Authentication-Results: mx\\.test;\\r\\n\\tauth=pass \\(PLAIN\\) smtp\\.auth=alice@example\\.com\\r\\n' +
            `Subject: relayed\\r\\n\\r\\nhi\\r\\n$`,
        ),
      )
      await c.quit()
    } finally {
      await srv.close()
    }
  })
})

describe('auth/auth_flat_file at start-up', () => {
  const neverOffered = /^AUTH is never offered: auth\/auth_flat_file would answer it, but tls_before_auth is on/
  const warnings = (srv: TestServer) => srv.logs.filter((e) => e.level <= 4).map((e) => e.message)

  it('without TLS and with tls_before_auth on, a warning names the reason and both remedies', async () => {
    const srv = await server({ policies: {} })
    try {
      const warning = warnings(srv).find((m) => neverOffered.test(m))
      assert.ok(warning, warnings(srv).join('\n'))
      assert.match(warning, /load the tls plugin, or set tls_before_auth 0 to allow AUTH without TLS$/)
      const c = await greet(srv)
      assert.doesNotMatch((await c.send('EHLO client.test', 250))?.raw ?? '', /AUTH/)
      await c.quit()
    } finally {
      await srv.close()
    }
  })

  for (const [what, extra] of [
    ['with the tls plugin', { policies: {}, tls: true }],
    ['with tls_before_auth 0', {}],
  ] as const) {
    it(`${what}: no warning`, async () => {
      const srv = await server(extra)
      try {
        assert.deepEqual(warnings(srv), [])
      } finally {
        await srv.close()
      }
    })
  }

  it('no flat_auth_pw: a warning that every AUTH will be refused', async () => {
    const srv = await server({ config: {} })
    try {
      assert.ok(warnings(srv).includes('no flat_auth_pw file: every AUTH will be refused'), warnings(srv).join('\n'))
    } finally {
      await srv.close()
    }
  })
})
