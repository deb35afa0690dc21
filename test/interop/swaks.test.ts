/**
 * Interoperability with swaks (Debian package swaks): plain, pipelining, STARTTLS, implicit
 * TLS, AUTH PLAIN and LOGIN over TLS, an 8-bit body, and byte-exact DATA with --no-data-fixup.
 * Each run is a child process with an argument vector and a hard timeout.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import {
  AUTH_PASSWORD,
  AUTH_USER,
  explain,
  firstField,
  receivedWith,
  runClient,
  skipUnless,
  testUsersAuth,
  UTF8_PASSWORD,
  UTF8_USER,
  withoutOwnReceived,
} from './helpers.ts'

const SWAKS = '/usr/bin/swaks'

describe('swaks', { skip: skipUnless(SWAKS, 'swaks') }, () => {
  let srv: TestServer
  let dir: string

  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients(), testUsersAuth()], tls: true })
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-swaks-'))
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  /** Runs swaks against the server and returns the one message it queued. */
  async function swaks(args: readonly string[], port = srv.port) {
    const before = srv.queued.length
    const r = await runClient(
      SWAKS,
      ['--server', `127.0.0.1:${port}`, '--helo', 'client.test', '--timeout', '20', ...args],
      { timeoutMs: 30_000 },
    )
    assert.equal(r.code, 0, explain(r))
    assert.equal(srv.queued.length, before + 1, explain(r))
    return { run: r, msg: srv.queued[before]! }
  }

  test('plain ESMTP: envelope, Received with ESMTP and the client HELO', async () => {
    const { msg, run } = await swaks(['--from', 'a@t.test', '--to', 'u@t.test'])
    assert.match(run.stdout, /<- {2}250 2\.0\.0 Queued as \S+/)
    assert.equal(msg.from, 'a@t.test')
    assert.deepEqual(msg.to, ['u@t.test'])
    assert.equal(receivedWith(msg.data), 'ESMTP')
    assert.match(firstField(msg.data), /^Received: from client\.test \(.*\[127\.0\.0\.1\]\)/)
    assert.match(firstField(msg.data), /for <u@t\.test>;/)
    assert.match(msg.text, /\r\n\r\nThis is a test mailing\r\n/)
  })

  test('--pipeline: several recipients in one group, replies in order', async () => {
    const { msg, run } = await swaks(['--pipeline', '--from', 'a@t.test', '--to', 'u1@t.test,u2@t.test,u3@t.test'])
    // swaks pipelines MAIL, every RCPT and DATA, then reads the replies.
    assert.match(run.stdout, / -> MAIL FROM:<a@t\.test>\n -> RCPT TO:<u1@t\.test>\n -> RCPT TO:<u2@t\.test>/)
    assert.match(
      run.stdout,
      /<- {2}250 2\.1\.0[^\n]*\n<- {2}250 2\.1\.5[^\n]*\n<- {2}250 2\.1\.5[^\n]*\n<- {2}250 2\.1\.5/,
    )
    assert.deepEqual(msg.to, ['u1@t.test', 'u2@t.test', 'u3@t.test'])
    assert.equal(receivedWith(msg.data), 'ESMTP')
    assert.doesNotMatch(firstField(msg.data), /\sfor </, 'no "for" with several recipients')
  })

  test('STARTTLS (-tls): ESMTPS and the TLS version in Received', async () => {
    const { msg, run } = await swaks(['-tls', '--from', 'a@t.test', '--to', 'u@t.test'])
    assert.match(run.stdout, /=== TLS started with cipher TLSv1\.[23]/)
    assert.equal(receivedWith(msg.data), 'ESMTPS')
    assert.match(firstField(msg.data), /TLSv1\.[23]/)
  })

  test('implicit TLS (-tlsc) on the smtps port: ESMTPS', async () => {
    assert.ok(srv.smtpsPort)
    const { msg } = await swaks(['-tlsc', '--from', 'a@t.test', '--to', 'u@t.test'], srv.smtpsPort)
    assert.equal(receivedWith(msg.data), 'ESMTPS')
  })

  test('AUTH PLAIN over STARTTLS with a UTF-8 user name and password: ESMTPSA', async () => {
    const { msg, run } = await swaks([
      '-tls',
      '--auth',
      'PLAIN',
      '--auth-user',
      UTF8_USER,
      '--auth-password',
      UTF8_PASSWORD,
      '--from',
      AUTH_USER,
      '--to',
      'u@t.test',
    ])
    assert.match(run.stdout, /<~ {2}235 2\.7\.0/)
    assert.equal(receivedWith(msg.data), 'ESMTPSA')
    assert.equal(msg.from, AUTH_USER)
  })

  test('AUTH LOGIN over implicit TLS: ESMTPSA', async () => {
    const { msg, run } = await swaks(
      [
        '-tlsc',
        '--auth',
        'LOGIN',
        '--auth-user',
        AUTH_USER,
        '--auth-password',
        AUTH_PASSWORD,
        '--from',
        AUTH_USER,
        '--to',
        'u@t.test',
      ],
      srv.smtpsPort,
    )
    assert.match(run.stdout, /<~ {2}334 VXNlcm5hbWU6/)
    assert.equal(receivedWith(msg.data), 'ESMTPSA')
  })

  test('STARTTLS, AUTH LOGIN and --pipeline together: ESMTPSA', async () => {
    const { msg, run } = await swaks([
      '-tls',
      '--pipeline',
      '--auth',
      'LOGIN',
      '--auth-user',
      AUTH_USER,
      '--auth-password',
      AUTH_PASSWORD,
      '--from',
      AUTH_USER,
      '--to',
      'u1@t.test,u2@t.test',
    ])
    assert.match(run.stdout, /~> MAIL FROM:<alice@example\.test>\n ?~> RCPT TO:<u1@t\.test>/)
    assert.deepEqual(msg.to, ['u1@t.test', 'u2@t.test'])
    assert.equal(receivedWith(msg.data), 'ESMTPSA')
  })

  test('AUTH with a wrong password: 535, nothing queued', async () => {
    const before = srv.queued.length
    const r = await runClient(
      SWAKS,
      [
        '--server',
        `127.0.0.1:${srv.port}`,
        '--timeout',
        '20',
        '-tls',
        '--auth',
        'PLAIN',
        '--auth-user',
        AUTH_USER,
        '--auth-password',
        'wrong',
        '--from',
        AUTH_USER,
        '--to',
        'u@t.test',
      ],
      { timeoutMs: 30_000 },
    )
    assert.notEqual(r.code, 0)
    assert.match(r.stdout, /<~\* {1}535 5\.7\.8/)
    assert.equal(srv.queued.length, before)
  })

  test('AUTH is not offered over plaintext: swaks refuses to send', async () => {
    const before = srv.queued.length
    const r = await runClient(
      SWAKS,
      [
        '--server',
        `127.0.0.1:${srv.port}`,
        '--timeout',
        '20',
        '--auth',
        'PLAIN',
        '--auth-user',
        AUTH_USER,
        '--auth-password',
        AUTH_PASSWORD,
        '--to',
        'u@t.test',
      ],
      { timeoutMs: 30_000 },
    )
    assert.notEqual(r.code, 0)
    assert.match(r.stdout + r.stderr, /Host did not advertise authentication/)
    assert.doesNotMatch(r.stdout, /<- {2}250-AUTH/)
    assert.equal(srv.queued.length, before)
  })

  test('8-bit body (--body @file) arrives unchanged', async () => {
    const body = 'Grüße aus Köln — ünïcödé\r\n8-bit: \u00e9\u00e8\u00ea, 日本語\r\n'
    const file = join(dir, 'body.txt')
    await writeFile(file, body)
    const { msg } = await swaks([
      '--from',
      'a@t.test',
      '--to',
      'u@t.test',
      '--body',
      `@${file}`,
      '--add-header',
      'Content-Type: text/plain; charset=utf-8',
    ])
    assert.ok(msg.data.includes(Buffer.from(`\r\n\r\n${body}`)), msg.text)
  })

  test('byte-exact DATA with --data @file --no-data-fixup (dot-stuffing undone)', async () => {
    const wire = Buffer.concat([
      Buffer.from(
        'From: a@t.test\r\nTo: u@t.test\r\nSubject: exact bytes\r\nX-Folded: one\r\n\ttwo\r\n\r\n' +
          '..leading dot (stuffed)\r\n...two dots (stuffed)\r\n.\t\r\n \r\n' +
          'trailing spaces   \r\ntab\there\r\n',
      ),
      Buffer.from([0xc3, 0xa9, 0x0d, 0x0a, 0xff, 0xfe, 0x0d, 0x0a]), // 8-bit bytes, not valid UTF-8 at the end
      Buffer.from('last line without anything special\r\n.\r\n'),
    ])
    const expected = Buffer.concat([
      Buffer.from(
        'From: a@t.test\r\nTo: u@t.test\r\nSubject: exact bytes\r\nX-Folded: one\r\n\ttwo\r\n\r\n' +
          '.leading dot (stuffed)\r\n..two dots (stuffed)\r\n\t\r\n \r\n' + // RFC 5321 4.5.2: the first dot goes
          'trailing spaces   \r\ntab\there\r\n',
      ),
      Buffer.from([0xc3, 0xa9, 0x0d, 0x0a, 0xff, 0xfe, 0x0d, 0x0a]),
      Buffer.from('last line without anything special\r\n'),
    ])
    const file = join(dir, 'case.eml')
    await writeFile(file, wire)
    const { msg } = await swaks(['--from', 'a@t.test', '--to', 'u@t.test', '--data', `@${file}`, '-ndf'])
    assert.deepEqual(withoutOwnReceived(msg.data), expected)
  })

  test('byte-exact: a headers-only message from the null sender', async () => {
    const file = join(dir, 'headers-only.eml')
    await writeFile(file, 'Subject: only a header\r\n.\r\n')
    const { msg } = await swaks(['--from', '<>', '--to', 'u@t.test', '--data', `@${file}`, '-ndf'])
    assert.equal(msg.from, '')
    assert.deepEqual(withoutOwnReceived(msg.data), Buffer.from('Subject: only a header\r\n'))
  })
})
