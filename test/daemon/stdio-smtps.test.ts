/**
 * `qtsmtpd --stdio --role smtps`: implicit TLS on stdin/stdout, for port 465 under the real
 * tcpserver (ucspi-tcp) and systemd-socket-activate (`--inetd`, one process per connection).
 * The client gets TLS first, then a session as on an smtps listener: AUTH offered, no
 * STARTTLS, the TLS version and cipher in the Received header; a client that does not finish
 * the handshake within tls_handshake_timeout is closed. Clients: Node's TLS client and
 * openssl s_client (which reports a close without TLS close_notify as "unexpected eof").
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { Duplex } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { freePort } from '../peers/free-port.ts'
import { sClient } from '../peers/openssl-s-client.ts'
import { rawConnect } from '../protocol/raw-connect.ts'
import { bin, installCertificate, makeConfig, startCli, type TestConfig } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

const authPlain = Buffer.from('\0alice@example.com\0secret').toString('base64')
const receivedOverTls =
  /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n\tby mx\.test \(qtsmtpd\) with ESMTPSA id \S+\r\n\t\(version=TLSv1\.[23] cipher=[A-Z0-9_-]+\)\r\n/

/** A configuration with a certificate, AUTH and a 1.5 s handshake timeout. */
async function smtpsConfig(): Promise<TestConfig> {
  const cfg = makeConfig(['tls', 'auth/auth_flat_file', 'rcpt_ok'], {
    flat_auth_pw: 'alice@example.com:secret',
    'smtpd.conf': 'tls_handshake_timeout 1500ms',
  })
  cleanup.push(cfg.remove)
  await installCertificate(cfg)
  return cfg
}

/** Starts a UCSPI/inetd-style super-server running `qtsmtpd --stdio --role smtps` per connection. */
function superServer(command: string, args: string[]): { child: ChildProcess; log: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString()
  })
  cleanup.push(() => child.kill('SIGKILL'))
  return { child, log: () => log }
}

const stdioSmtps = (cfg: TestConfig) => [process.execPath, bin, '--stdio', '--role', 'smtps', '--config', cfg.config]

async function tlsClient(port: number): Promise<SmtpTestClient> {
  for (let i = 0; i < 100; i++) {
    const c = await SmtpTestClient.connect(port, '127.0.0.1', { tls: true, servername: 'mx.test' }).catch(
      () => undefined,
    )
    if (c !== undefined) return c
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`no TLS server on ${port}`)
}

/** EHLO (AUTH, no STARTTLS), AUTH PLAIN, a message to a foreign domain (a relay client's right). */
async function authenticatedDelivery(c: SmtpTestClient): Promise<void> {
  await c.expect(/^220 mx\.test /, 15_000)
  const ehlo = await c.send('EHLO client.test', 250)
  assert.ok(ehlo?.lines.includes('AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256-PLUS SCRAM-SHA-256'), ehlo?.raw)
  assert.ok(!ehlo?.lines.includes('STARTTLS'), 'no STARTTLS inside TLS')
  await c.send('STARTTLS', /^503 5\.5\.1 /)
  await c.send(`AUTH PLAIN ${authPlain}`, /^235 2\.7\.0 /)
  await c.send('MAIL FROM:<alice@example.com>', 250)
  await c.send('RCPT TO:<someone@elsewhere.test>', 250)
  await c.send('DATA', 354)
  await c.send('Subject: smtps on stdio\r\n\r\nhello over TLS\r\n.', /^250 2\.0\.0 Queued as /)
  await c.send('QUIT', 221)
  await c.closed()
}

describe('--stdio --role smtps under tcpserver', { timeout: 90_000 }, () => {
  let cfg: TestConfig
  let port: number
  let tcp: ReturnType<typeof superServer>
  before(async () => {
    cfg = await smtpsConfig()
    port = await freePort()
    tcp = superServer('tcpserver', ['-v', '-R', '-H', '-c', '10', '127.0.0.1', String(port), ...stdioSmtps(cfg)])
  })

  test('TLS first, then AUTH offered, no STARTTLS, and the Received header names the TLS', async () => {
    await authenticatedDelivery(await tlsClient(port))
    const [msg] = cfg.messages()
    assert.ok(msg !== undefined, `a message was delivered; log:\n${tcp.log()}`)
    assert.match(msg, receivedOverTls)
    assert.match(msg, /hello over TLS/)
    assert.match(tcp.log(), /summary ip=127\.0\.0\.1 helo=client\.test tls=TLSv1\.[23] auth=alice@example\.com /)
  })

  test('openssl s_client: the dialogue, and the close comes with a TLS close_notify', async () => {
    const client = sClient(port, { servername: 'mx.test' })
    cleanup.push(client.kill)
    await client.waitFor(/^220 mx\.test /m)
    client.send('EHLO client.test')
    await client.waitFor(/^250 /m)
    client.send('QUIT')
    const { code, out, err } = await client.exited()
    assert.match(out, /^250-AUTH PLAIN /m)
    assert.doesNotMatch(out, /STARTTLS/)
    assert.match(out, /^221 /m)
    assert.equal(code, 0, err)
    assert.doesNotMatch(err, /unexpected eof/)
  })

  test('a client that does not start the handshake within tls_handshake_timeout is closed', async () => {
    const raw = await rawConnect(port)
    const t0 = Date.now()
    assert.equal(await raw.closed, '', 'no cleartext greeting, nothing at all')
    assert.ok(Date.now() - t0 >= 1000, 'waited for the handshake timeout')
    for (let i = 0; i < 50 && !/no handshake within 1500 ms/.test(tcp.log()); i++)
      await new Promise((r) => setTimeout(r, 100))
    assert.match(tcp.log(), /implicit TLS handshake failed: no handshake within 1500 ms/)
    assert.match(tcp.log(), /tcpserver: end \d+ status 0/)
  })

  test('a cleartext client gets no cleartext greeting', async () => {
    const raw = await rawConnect(port)
    raw.socket.write('EHLO client.test\r\n')
    assert.doesNotMatch(await raw.closed, /220|250/)
  })
})

describe('--stdio --role smtps under systemd-socket-activate --inetd', { timeout: 90_000 }, () => {
  test('Accept=yes: one process per connection, the client from the socket on fd 0', async () => {
    const cfg = await smtpsConfig()
    const port = await freePort()
    const activator = superServer('systemd-socket-activate', [
      '--inetd',
      '--accept',
      '-l',
      `127.0.0.1:${port}`,
      ...stdioSmtps(cfg),
    ])
    await authenticatedDelivery(await tlsClient(port))
    const [msg] = cfg.messages()
    assert.ok(msg !== undefined, `a message was delivered; log:\n${activator.log()}`)
    assert.match(msg, receivedOverTls)
  })
})

describe('--stdio --role smtps over pipes', { timeout: 60_000 }, () => {
  test('TLS on stdin/stdout that are not a socket (a wrapper that passes bytes through)', async () => {
    const cfg = await smtpsConfig()
    const child = spawn(process.execPath, [bin, '--stdio', '--role', 'smtps', '--config', cfg.config], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { ...process.env, TCPREMOTEIP: '192.0.2.44', TCPREMOTEPORT: '40000', TCPLOCALPORT: '465' },
    })
    cleanup.push(() => child.kill('SIGKILL'))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const pipes = Duplex.from({ readable: child.stdout, writable: child.stdin })
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: pipes, rejectUnauthorized: false, servername: 'mx.test' }, () => resolve(s))
      s.once('error', reject)
    })
    let out = ''
    secure.setEncoding('utf8')
    secure.on('data', (d: string) => {
      out += d
    })
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 150 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100))
      assert.match(out, re)
    }
    await waitFor(/^220 /m)
    secure.write('EHLO client.test\r\n')
    await waitFor(/^250 /m)
    secure.write(`AUTH PLAIN ${authPlain}\r\n`)
    await waitFor(/^235 /m)
    secure.write('MAIL FROM:<alice@example.com>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n')
    await waitFor(/^354 /m)
    secure.write('Subject: pipes\r\n\r\nhi\r\n.\r\nQUIT\r\n')
    await waitFor(/^221 /m)
    assert.equal(await exited, 0)
    assert.match(
      cfg.messages()[0] ?? '',
      /^Received: from client\.test \(unknown \[192\.0\.2\.44\]\)\r\n\tby mx\.test \(qtsmtpd\) with ESMTPSA id \S+\r\n\t\(version=TLSv1\.3 /,
    )
  })
})

describe('--role: wrong uses are refused before any session', () => {
  test('smtps without a certificate: exit 2 and the reason', async () => {
    const cfg = makeConfig(['rcpt_ok'])
    cleanup.push(cfg.remove)
    const cli = startCli(['--stdio', '--role', 'smtps', '--config', cfg.config])
    assert.equal((await cli.exited(30_000)).code, 2)
    assert.ok(
      cli.lines.some((l) => l.includes('--role smtps needs a certificate: load the tls plugin')),
      cli.lines.join('\n'),
    )
  })

  for (const [args, message] of [
    [['--role', 'smtps'], '--role is for --stdio; a listener takes its role in --listen HOST:PORT/ROLE'],
    [['--stdio', '--role', 'lmtp'], '--role lmtp: expected smtp, submission or smtps'],
  ] as const)
    test(`${args.join(' ')}: exit 1`, async () => {
      const cli = startCli([...args, '--config', '/nonexistent'])
      assert.equal((await cli.exited(30_000)).code, 1)
      assert.ok(
        cli.lines.some((l) => l.includes(message)),
        cli.lines.join('\n'),
      )
    })
})
