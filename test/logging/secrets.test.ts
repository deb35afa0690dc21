/**
 * Secrets never reach a log: a start-up whose config/plugins holds a password (smtp-forward's
 * AUTH at the next hop) and a client secret (auth/oauth2's), sessions that authenticate with
 * PLAIN and LOGIN (right and wrong passwords, a CRAM-MD5 attempt, an AUTH line too long), SCRAM
 * (wrong, then right), XOAUTH2 (a bad bearer token), a password Dovecot's auth service refuses,
 * and a message relayed with AUTH to a
 * real next hop (aiosmtpd over STARTTLS), all at LOGDEBUG through every output: the text and JSON
 * files, syslog over UDP, stderr and the built-in writer. Each output is searched for the
 * passwords as written and base64-encoded.
 */
import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { openStore } from '../../src/store/open.ts'
import { makeCertificate, type TestCertificate } from '../../src/testing/certs.ts'
import { scramLogin, startTestServer } from '../../src/testing/index.ts'
import { type Sink, startSink } from '../peers/aiosmtpd.ts'
import { type DovecotAuth, startDovecotAuth } from '../peers/dovecot-auth.ts'

const userPassword = 'Us3r-Passw0rd-xyzzy'
const nextHopPassword = 'N3xtH0p-s3cret-plugh'
const bearerToken = 'T0ken.0f-alice-quux'
const introspectionSecret = 'Intr0spect-s3cret-zork'
const dovecotPassword = 'D0vecot-pass-grue'
const b64 = (s: string) => Buffer.from(s).toString('base64')
const secrets = [
  userPassword,
  nextHopPassword,
  bearerToken,
  introspectionSecret,
  dovecotPassword,
  b64(dovecotPassword),
  b64(userPassword),
  b64(`\0alice@example.com\0${userPassword}`),
  b64(`user=alice@example.com\x01auth=Bearer ${bearerToken}\x01\x01`),
  b64(`alice@example.com:${introspectionSecret}`),
]

let dir: string
let sink: Sink
let cert: TestCertificate
/** A token introspection endpoint (RFC 7662) that knows one token. */
let endpoint: Server
let dovecot: DovecotAuth
before(async () => {
  dovecot = await startDovecotAuth({ dave: `{PLAIN}${dovecotPassword}` })
  dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-secrets-'))
  cert = await makeCertificate()
  sink = await startSink({ cert, requireTls: true, auth: `relayuser:${nextHopPassword}` })
  endpoint = createServer(async (req, res) => {
    let body = ''
    for await (const chunk of req) body += String(chunk)
    const good = new URLSearchParams(body).get('token') === bearerToken
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(good ? { active: true, username: 'alice@example.com' } : { active: false }))
  })
  await new Promise<void>((r) => endpoint.listen(0, '127.0.0.1', r))
})
after(async () => {
  await dovecot?.stop()
  endpoint?.closeAllConnections()
  endpoint?.close()
  await sink?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('secrets in logs', { timeout: 60_000 }, () => {
  it('no password, clear or base64, in any log output at LOGDEBUG', async () => {
    const datagrams: Buffer[] = []
    const udp = createSocket('udp4')
    udp.on('message', (m) => datagrams.push(m))
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()))
    const config = join(dir, 'config')
    await mkdir(config)
    const files: Record<string, string> = {
      me: 'mx.test',
      rcpthosts: 'example.com',
      loglevel: '7',
      tls_before_auth: '0',
      'smtpd.conf': 'auth_failure_limit 10\nauth_failure_delay 0',
      flat_auth_pw: `alice@example.com:${userPassword}\n`,
      plugins: [
        `logging/file loglevel LOGDEBUG ${join(dir, 'all.log')}`,
        `logging/file:2 loglevel LOGDEBUG format json ${join(dir, 'all.json')}`,
        `logging/syslog loglevel LOGDEBUG logsock udp server 127.0.0.1:${udp.address().port}`,
        'logging/warn LOGDEBUG',
        'auth/auth_flat_file',
        `auth/dovecot ${dovecot.socket}`,
        `auth/oauth2 http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/ client_id alice@example.com client_secret ${introspectionSecret}`,
        'rcpt_ok',
        `queue/smtp-forward 127.0.0.1 ${sink.port} tls required tls_ca ${cert.certFile} tls_servername localhost ` +
          `auth_user relayuser auth_password ${nextHopPassword}`,
      ].join('\n'),
    }
    for (const [name, text] of Object.entries(files)) await writeFile(join(config, name), `${text}\n`)

    const stderr: string[] = []
    const original = process.stderr.write.bind(process.stderr)
    process.stderr.write = ((chunk: string | Uint8Array) => {
      stderr.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    let builtin: string[] = []
    try {
      const srv = await startTestServer({ configDir: config, memoryQueue: false, logLevel: 7 })
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send(`AUTH PLAIN ${b64(`\0alice@example.com\0wrong-${userPassword}`)}`, 535)
      await c.send('AUTH LOGIN', 334)
      await c.send(b64('alice@example.com'), 334)
      await c.send(b64(`${userPassword}x`), 535)
      await c.send(`AUTH CRAM-MD5 ${b64(`alice@example.com ${userPassword}`)}`, /^[45]\d\d /)
      // Dovecot checks what the flat file does not know; its refusals are delayed (auth penalty).
      await c.send(`AUTH PLAIN ${b64(`\0dave\0${dovecotPassword}x`)}`, 535)
      await scramLogin(c, { user: 'alice@example.com', password: `${userPassword}!` })
      await scramLogin(c, { user: 'alice@example.com', password: `${userPassword}?`, initialResponse: false })
      await c.send(`AUTH XOAUTH2 ${b64(`user=alice@example.com\x01auth=Bearer ${bearerToken}x\x01\x01`)}`, 334)
      await c.send('', 535)
      await c.send(`AUTH PLAIN ${b64(`\0alice@example.com\0${userPassword}`)}`, 235)
      await c.send('MAIL FROM:<alice@example.com>', 250)
      await c.send('RCPT TO:<bob@elsewhere.test>', 250)
      await c.send('DATA', 354)
      c.write(`Subject: relayed\r\n\r\n${userPassword} in the body is the client's business\r\n.\r\n`)
      await c.expect(250)
      await c.quit()
      await c.closed()
      await srv.close()
      builtin = srv.logs.map((e) => e.message)
    } finally {
      process.stderr.write = original
      udp.close()
    }
    const [m] = (await sink.messages()).slice(-1)
    assert.equal(m?.auth, true, 'the next hop saw AUTH')
    const outputs: Record<string, string> = {
      'logging/file': await readFile(join(dir, 'all.log'), 'utf8'),
      'logging/file format json': await readFile(join(dir, 'all.json'), 'utf8'),
      'logging/syslog': datagrams.map((d) => d.toString('utf8')).join('\n'),
      stderr: stderr.join(''),
      'built-in output': builtin.join('\n'),
    }
    // Each output really holds the session, so the search below has something to search.
    for (const [name, text] of Object.entries(outputs).filter(([n]) => n !== 'built-in output'))
      assert.match(text, /authenticated alice@example\.com with PLAIN/, name)
    assert.match(outputs['logging/file'] ?? '', /refused cmd=AUTH ip=127\.0\.0\.1 helo=client\.test reply="535 /)
    for (const [name, text] of Object.entries(outputs))
      for (const secret of secrets) assert.ok(!text.includes(secret), `${name} holds "${secret}"`)
  })

  it('a redis:// store setting with a password: its warnings and errors, Redis down, name it without', async () => {
    const password = 'St0re-pass-frotz'
    const said: string[] = []
    const settings = [
      `redis://:${password}@127.0.0.1:1/2 timeout=200ms connect_timeout=200ms`,
      `redis://user:${password}@127.0.0.1:1 timeout=200ms connect_timeout=200ms`,
      `redis://user:${password}@127.0.0.1:1 timeout=bogus`,
    ]
    for (const setting of settings) {
      try {
        const store = await openStore(setting, {
          origin: { file: 'config/smtpd.conf', line: 3 },
          baseDir: dir,
          stateDir: dir,
          onWarning: (m) => said.push(m),
        })
        await store.get('k').catch((e: Error) => said.push(e.message))
        await store.close()
      } catch (e) {
        said.push((e as Error).message)
      }
    }
    assert.ok(
      said.some((m) => m.startsWith('store redis://:***@127.0.0.1:1/2 unavailable: ')),
      said.join('\n'),
    )
    assert.ok(
      said.some((m) => m.startsWith('store redis://user:***@127.0.0.1:1: get: ')),
      said.join('\n'),
    )
    assert.ok(said.some((m) => m === 'config/smtpd.conf:3: store: timeout=bogus: expected a duration (500ms, 1s)'))
    for (const m of said) assert.ok(!m.includes(password), m)
  })
})
