/**
 * Interoperability with Python's smtplib (python3): plain, starttls(), implicit TLS, login()
 * with PLAIN and LOGIN, send_message with SMTPUTF8 addresses, and a 50 MiB message stored
 * byte-exact (SHA-256 of what smtplib handed to DATA against SHA-256 of what was queued).
 * The client is test/interop/clients/smtplib_client.py, run with an argument vector.
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
  clientsDir,
  explain,
  firstField,
  receivedWith,
  runClient,
  sha256,
  skipUnless,
  testUsersAuth,
  withoutOwnReceived,
} from './helpers.ts'

const PYTHON = '/usr/bin/python3'
const SCRIPT = join(clientsDir, 'smtplib_client.py')
const BIG = 50 * 1024 * 1024

interface ClientOutput {
  features: string[]
  features_tls?: string[]
  starttls?: [number, string]
  auth?: [number, string]
  data?: [number, string]
  refused?: Record<string, unknown>
  sent_sha256?: string
  sent_length?: number
  sent_b64?: string
  error?: string
}

/** 50 MiB of CRLF lines of varied length, some starting with a dot, some 8-bit. */
function bigMessage(): Buffer {
  const lines: string[] = ['From: a@t.test', 'To: u@t.test', 'Subject: fifty MiB', '', '']
  for (let i = 0; i < 2000; i++) {
    const pad = 'x'.repeat((i * 37) % 900)
    lines.push(i % 7 === 0 ? `.${i} dot line ${pad}` : i % 11 === 0 ? `${i} grüße ${pad}` : `${i} ${pad}`)
  }
  const block = Buffer.from(`${lines.slice(4).join('\r\n')}\r\n`)
  const head = Buffer.from(`${lines.slice(0, 4).join('\r\n')}\r\n\r\n`)
  const out = Buffer.alloc(BIG)
  head.copy(out, 0)
  let at = head.length
  while (at < BIG) at += block.copy(out, at, 0, Math.min(block.length, BIG - at))
  // End on a complete line.
  out.write('\r\n', BIG - 2, 'latin1')
  return out
}

describe('python smtplib', { skip: skipUnless(PYTHON, 'python3') }, () => {
  let srv: TestServer
  let dir: string

  before(async () => {
    srv = await startTestServer({
      plugins: [acceptAllRecipients(), testUsersAuth()],
      tls: true,
      limits: { messageSize: 64 * 1024 * 1024 },
    })
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-smtplib-'))
  })
  after(async () => {
    await srv?.close()
    if (dir) await rm(dir, { recursive: true, force: true })
  })

  async function smtplib(args: readonly string[], opts: { port?: number; timeoutMs?: number } = {}) {
    const before = srv.queued.length
    const r = await runClient(PYTHON, [SCRIPT, '--port', String(opts.port ?? srv.port), ...args], {
      timeoutMs: opts.timeoutMs ?? 30_000,
    })
    assert.equal(r.code, 0, explain(r))
    const out = JSON.parse(r.stdout) as ClientOutput
    assert.equal(out.data?.[0], 250, explain(r))
    assert.match(out.data?.[1] ?? '', /^2\.0\.0 Queued as \S+/)
    assert.deepEqual(out.refused, {})
    assert.equal(srv.queued.length, before + 1)
    const msg = srv.queued[before]!
    if (out.sent_b64 !== undefined)
      assert.deepEqual(withoutOwnReceived(msg.data), Buffer.from(out.sent_b64, 'base64'), 'stored bytes = sent bytes')
    return { out, msg }
  }

  test('plain: EHLO keywords, envelope and exact bytes', async () => {
    const { out, msg } = await smtplib(['--from', 'a@t.test', '--to', 'u@t.test', '--to', 'v@t.test'])
    for (const k of ['pipelining', 'size', '8bitmime', 'smtputf8', 'enhancedstatuscodes', 'chunking', 'starttls'])
      assert.ok(out.features.includes(k), `${k} in ${out.features.join(' ')}`)
    assert.ok(!out.features.includes('auth'), 'no AUTH before TLS')
    assert.equal(msg.from, 'a@t.test')
    assert.deepEqual(msg.to, ['u@t.test', 'v@t.test'])
    assert.equal(receivedWith(msg.data), 'ESMTP')
    assert.match(firstField(msg.data), /^Received: from py\.client\.test /)
  })

  test('20 messages on one connection (transaction state reset after each)', async () => {
    const before = srv.queued.length
    const r = await runClient(
      PYTHON,
      [SCRIPT, '--port', String(srv.port), '--repeat', '20', '--from', 'a@t.test', '--to', 'u@t.test'],
      { timeoutMs: 30_000 },
    )
    assert.equal(r.code, 0, explain(r))
    const sent = srv.queued.slice(before)
    assert.equal(sent.length, 20)
    assert.equal(new Set(sent.map((m) => m.id)).size, 20)
    for (const m of sent) assert.deepEqual(m.to, ['u@t.test'])
  })

  test('starttls(): STARTTLS not offered again, ESMTPS', async () => {
    const { out, msg } = await smtplib(['--tls', 'starttls', '--from', 'a@t.test', '--to', 'u@t.test'])
    assert.equal(out.starttls?.[0], 220)
    assert.ok(!out.features_tls?.includes('starttls'))
    assert.ok(out.features_tls?.includes('auth'), 'AUTH offered after TLS')
    assert.equal(receivedWith(msg.data), 'ESMTPS')
  })

  test('starttls() + login() (smtplib picks its mechanism): ESMTPSA', async () => {
    const { out, msg } = await smtplib([
      '--tls',
      'starttls',
      '--user',
      AUTH_USER,
      '--password',
      AUTH_PASSWORD,
      '--from',
      AUTH_USER,
      '--to',
      'u@t.test',
    ])
    assert.equal(out.auth?.[0], 235)
    assert.equal(receivedWith(msg.data), 'ESMTPSA')
  })

  for (const mech of ['PLAIN', 'LOGIN']) {
    test(`implicit TLS + AUTH ${mech}: ESMTPSA`, async () => {
      const { out, msg } = await smtplib(
        [
          '--tls',
          'implicit',
          '--auth-mech',
          mech,
          '--user',
          AUTH_USER,
          '--password',
          AUTH_PASSWORD,
          '--from',
          AUTH_USER,
          '--to',
          'u@t.test',
        ],
        { port: srv.smtpsPort! },
      )
      assert.equal(out.auth?.[0], 235)
      assert.equal(receivedWith(msg.data), 'ESMTPSA')
    })
  }

  test('login() with a wrong password: SMTPAuthenticationError, nothing queued', async () => {
    const before = srv.queued.length
    const r = await runClient(
      PYTHON,
      [
        SCRIPT,
        '--port',
        String(srv.port),
        '--tls',
        'starttls',
        '--user',
        AUTH_USER,
        '--password',
        'nope',
        '--from',
        'a@t.test',
        '--to',
        'u@t.test',
      ],
      { timeoutMs: 30_000 },
    )
    assert.equal(r.code, 1, explain(r))
    assert.match((JSON.parse(r.stdout) as ClientOutput).error ?? '', /SMTPAuthenticationError.*535/)
    assert.equal(srv.queued.length, before)
  })

  test("send_message with SMTPUTF8 addresses (mail_options=['SMTPUTF8']): UTF8SMTP", async () => {
    const from = 'josé@exämple.test'
    const to = 'пользователь@пример.test'
    const { msg } = await smtplib(['--smtputf8', '--from', from, '--to', to, '--subject', 'Größe ✓'])
    assert.equal(msg.from, from)
    assert.deepEqual(msg.to, [to])
    assert.equal(receivedWith(msg.data), 'UTF8SMTP')
    assert.match(msg.text, /\r\nFrom: josé@exämple\.test\r\n/)
    assert.match(firstField(msg.data), /\sfor <пользователь@пример\.test>;/)
  })

  test('SMTPUTF8 over STARTTLS with AUTH: UTF8SMTPSA', async () => {
    const { msg } = await smtplib([
      '--tls',
      'starttls',
      '--user',
      AUTH_USER,
      '--password',
      AUTH_PASSWORD,
      '--smtputf8',
      '--from',
      'ünï@exämple.test',
      '--to',
      'u@t.test',
    ])
    assert.equal(receivedWith(msg.data), 'UTF8SMTPSA')
  })

  test('a 50 MiB message is stored byte-exact', { timeout: 180_000 }, async () => {
    const data = bigMessage()
    const file = join(dir, 'big.eml')
    await writeFile(file, data)
    const want = sha256(data)
    const { out, msg } = await smtplib(['--raw-file', file, '--from', 'a@t.test', '--to', 'u@t.test'], {
      timeoutMs: 150_000,
    })
    assert.equal(out.sent_length, BIG)
    assert.equal(out.sent_sha256, want)
    const stored = withoutOwnReceived(msg.data)
    assert.equal(stored.length, BIG)
    assert.equal(sha256(stored), want)
    srv.queued.length = 0 // let the 50 MiB go
  })
})
