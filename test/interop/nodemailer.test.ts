/**
 * Interoperability with nodemailer's SMTP transport (devDependency): plain, STARTTLS, implicit
 * TLS, AUTH PLAIN and LOGIN, PIPELINING (seen through a recording relay), BODY=8BITMIME with raw
 * 8-bit content stored byte-exact, SMTPUTF8 addresses, and a 50 MiB raw message streamed from
 * a file. nodemailer has no BDAT/CHUNKING support, so DATA is what it uses.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import nodemailer from 'nodemailer'
import type SMTPTransport from 'nodemailer/lib/smtp-transport'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import {
  AUTH_PASSWORD,
  AUTH_USER,
  firstField,
  receivedWith,
  sha256,
  startRecordingProxy,
  testUsersAuth,
  UTF8_PASSWORD,
  UTF8_USER,
  withoutOwnReceived,
} from './helpers.ts'

const BIG = 50 * 1024 * 1024

describe('nodemailer', () => {
  let srv: TestServer
  let dir: string

  before(async () => {
    srv = await startTestServer({
      plugins: [acceptAllRecipients(), testUsersAuth()],
      tls: true,
      limits: { messageSize: 64 * 1024 * 1024 },
    })
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-nodemailer-'))
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  function transport(opts: SMTPTransport.Options = {}) {
    return nodemailer.createTransport({
      host: '127.0.0.1',
      port: srv.port,
      name: 'nm.client.test',
      connectionTimeout: 10_000,
      greetingTimeout: 10_000,
      socketTimeout: 30_000,
      tls: { rejectUnauthorized: false, servername: 'localhost' },
      ...opts,
    })
  }

  /** Sends one message and returns what the server queued for it. */
  async function send(t: ReturnType<typeof transport>, mail: Parameters<ReturnType<typeof transport>['sendMail']>[0]) {
    const before = srv.queued.length
    try {
      const info = await t.sendMail(mail)
      assert.match(info.response, /^250 2\.0\.0 Queued as \S+/)
      assert.equal(srv.queued.length, before + 1)
      return { info, msg: srv.queued[before]! }
    } finally {
      t.close()
    }
  }

  const simple = { from: 'a@t.test', to: 'u@t.test', subject: 'nodemailer', text: 'Hello from nodemailer.\n' }

  test('plain (ignoreTLS): ESMTP, envelope, HELO name', async () => {
    const { msg, info } = await send(transport({ ignoreTLS: true }), simple)
    assert.deepEqual(info.accepted, ['u@t.test'])
    assert.equal(msg.from, 'a@t.test')
    assert.deepEqual(msg.to, ['u@t.test'])
    assert.equal(receivedWith(msg.data), 'ESMTP')
    assert.match(firstField(msg.data), /^Received: from nm\.client\.test /)
    assert.match(msg.text, /\r\nSubject: nodemailer\r\n/)
  })

  test('STARTTLS (requireTLS): ESMTPS', async () => {
    const { msg } = await send(transport({ requireTLS: true }), simple)
    assert.equal(receivedWith(msg.data), 'ESMTPS')
  })

  test('implicit TLS (secure: true) on the smtps port: ESMTPS', async () => {
    const { msg } = await send(transport({ port: srv.smtpsPort!, secure: true }), simple)
    assert.equal(receivedWith(msg.data), 'ESMTPS')
  })

  for (const method of ['PLAIN', 'LOGIN']) {
    test(`AUTH ${method} after STARTTLS: ESMTPSA`, async () => {
      const { msg } = await send(
        transport({ requireTLS: true, authMethod: method, auth: { user: AUTH_USER, pass: AUTH_PASSWORD } }),
        { ...simple, from: AUTH_USER },
      )
      assert.equal(receivedWith(msg.data), 'ESMTPSA')
    })
  }

  test('AUTH PLAIN with a UTF-8 user and password over implicit TLS: ESMTPSA', async () => {
    const { msg } = await send(
      transport({
        port: srv.smtpsPort!,
        secure: true,
        authMethod: 'PLAIN',
        auth: { user: UTF8_USER, pass: UTF8_PASSWORD },
      }),
      simple,
    )
    assert.equal(receivedWith(msg.data), 'ESMTPSA')
  })

  test('AUTH with a wrong password: EAUTH, nothing queued', async () => {
    const before = srv.queued.length
    const t = transport({ requireTLS: true, auth: { user: AUTH_USER, pass: 'wrong' } })
    try {
      await assert.rejects(t.sendMail(simple), (e: Error & { code?: string; responseCode?: number }) => {
        assert.equal(e.code, 'EAUTH')
        assert.equal(e.responseCode, 535)
        return true
      })
    } finally {
      t.close()
    }
    assert.equal(srv.queued.length, before)
  })

  test('PIPELINING: MAIL, 30 RCPTs and DATA in one write; replies matched in order', async () => {
    const proxy = await startRecordingProxy(srv.port)
    try {
      const to = Array.from({ length: 30 }, (_, i) => `r${i}@t.test`)
      const { msg, info } = await send(transport({ port: proxy.port, ignoreTLS: true }), { ...simple, to })
      assert.deepEqual(info.accepted, to)
      assert.deepEqual(msg.to, to)
      const group = proxy.fromClient.map((b) => b.toString('latin1')).find((s) => s.startsWith('MAIL FROM:'))
      assert.ok(group, 'a write that starts with MAIL FROM')
      assert.equal(group.match(/^RCPT TO:/gm)?.length, 30, group)
      assert.match(group, /\r\nDATA\r\n$/)
    } finally {
      await proxy.close()
    }
  })

  test('8-bit raw message with BODY=8BITMIME: stored byte-exact', async () => {
    const raw = Buffer.concat([
      Buffer.from('From: a@t.test\r\nTo: u@t.test\r\nSubject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n'),
      Buffer.from('Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, ünïcödé, 日本語\r\n.leading dot\r\n'),
      Buffer.from([0xe9, 0x0d, 0x0a]), // latin-1 byte, not UTF-8
    ])
    const proxy = await startRecordingProxy(srv.port)
    try {
      const { msg } = await send(transport({ port: proxy.port, ignoreTLS: true }), {
        envelope: { from: 'a@t.test', to: ['u@t.test'], use8BitMime: true } as never,
        raw,
      })
      assert.deepEqual(withoutOwnReceived(msg.data), raw)
      const wire = Buffer.concat(proxy.fromClient).toString('latin1')
      assert.match(wire, /^MAIL FROM:<a@t\.test> BODY=8BITMIME\r\n/m)
    } finally {
      await proxy.close()
    }
  })

  test('SMTPUTF8 addresses over STARTTLS: UTF8SMTPS', async () => {
    const from = 'josé@exämple.test'
    const to = 'пользователь@пример.test'
    const { msg, info } = await send(transport({ requireTLS: true }), {
      from,
      to,
      subject: 'Größe ✓',
      text: 'Grüße\n',
    })
    assert.deepEqual(info.accepted, [to])
    assert.equal(msg.from, from)
    assert.deepEqual(msg.to, [to])
    assert.equal(receivedWith(msg.data), 'UTF8SMTPS')
  })

  test('SMTPUTF8 over plaintext: the client sends SMTPUTF8, UTF8SMTP', async () => {
    const proxy = await startRecordingProxy(srv.port)
    try {
      const { msg } = await send(transport({ port: proxy.port, ignoreTLS: true }), {
        ...simple,
        from: 'ñandú@exämple.test',
      })
      assert.equal(receivedWith(msg.data), 'UTF8SMTP')
      assert.match(Buffer.concat(proxy.fromClient).toString('utf8'), /^MAIL FROM:<ñandú@exämple\.test> SMTPUTF8/m)
    } finally {
      await proxy.close()
    }
  })

  test('a 50 MiB raw message streamed from a file is stored byte-exact', { timeout: 180_000 }, async () => {
    const line = Buffer.from(`${'0123456789abcdef'.repeat(6)}\r\n.dot line\r\n`)
    const data = Buffer.alloc(BIG)
    const head = Buffer.from('From: a@t.test\r\nTo: u@t.test\r\nSubject: big\r\n\r\n')
    head.copy(data)
    let at = head.length
    while (at < BIG) at += line.copy(data, at, 0, Math.min(line.length, BIG - at))
    data.write('\r\n', BIG - 2, 'latin1')
    const file = join(dir, 'big.eml')
    await writeFile(file, data)
    const want = sha256(data)
    const { msg } = await send(transport({ ignoreTLS: true, socketTimeout: 120_000 }), {
      envelope: { from: 'a@t.test', to: ['u@t.test'] },
      raw: { path: file },
    })
    const stored = withoutOwnReceived(msg.data)
    assert.equal(stored.length, BIG)
    assert.equal(sha256(stored), want)
    srv.queued.length = 0 // let the 50 MiB go
  })
})
