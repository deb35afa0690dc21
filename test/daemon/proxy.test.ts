/**
 * PROXY protocol end to end: from a trusted address the header's client reaches plugins, the
 * logs and the Received header; without a valid header in time a trusted peer is dropped; from
 * an untrusted address a PROXY header gets 421. Behind a real HAProxy (Debian haproxy) with
 * `send-proxy`, `send-proxy-v2`, and TLS terminated by HAProxy (SSL and AUTHORITY TLVs).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { type ProxiedConnection, ProxyInfo } from '../../src/host/connection-keys.ts'
import type { Peer } from '../../src/host/context.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { makeCertificate } from '../../src/testing/certs.ts'
import { SmtpTestClient, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { freePort } from '../peers/free-port.ts'
import { rawConnect } from '../protocol/raw-connect.ts'

interface Seen {
  remote: Peer
  local: Peer
  proxy: ProxiedConnection | undefined
}

function capture(seen: Seen[]) {
  return definePlugin({
    name: 'test/capture-connect',
    options: {},
    setup: () => ({
      hooks: {
        connect: (ctx) => {
          seen.push({ remote: ctx.connection.remote, local: ctx.connection.local, proxy: ctx.get(ProxyInfo) })
          return pass()
        },
      },
    }),
  })
}

async function send(c: SmtpTestClient, subject: string): Promise<void> {
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  await c.send('MAIL FROM:<a@client.test>', 250)
  await c.send('RCPT TO:<u@mx.test>', 250)
  await c.send('DATA', 354)
  await c.send(`Subject: ${subject}\r\n\r\nbody\r\n.`, 250)
  await c.send('QUIT', 221)
}

const rcptAll = definePlugin({
  name: 'test/rcpt-all',
  options: {},
  setup: () => ({ hooks: { rcpt: () => ({ kind: 'accept' }) } }),
})

describe('PROXY protocol from a trusted address', { timeout: 30_000 }, () => {
  const seen: Seen[] = []
  let srv: TestServer
  before(async () => {
    srv = await startTestServer({
      plugins: [capture(seen)(), rcptAll()],
      config: { proxy_trusted: ['127.0.0.1'] },
      serverLimits: { proxyTimeoutMs: 500, maxConnectionsPerIp: 2 },
    })
  })
  after(() => srv.close())

  test('v1: the client from the header reaches plugins, the Received header and the logs', async () => {
    const raw = await rawConnect(srv.port)
    raw.socket.write('PROXY TCP4 192.0.2.7 198.51.100.25 40001 25\r\n')
    // Drive the raw socket as an SMTP client.
    const lines: string[] = []
    raw.socket.on('data', (d: string) => lines.push(d))
    const waitFor = async (re: RegExp) => {
      for (let i = 0; i < 100 && !re.test(lines.join('')); i++) await new Promise((r) => setTimeout(r, 20))
      assert.match(lines.join(''), re)
    }
    await waitFor(/^220 /m)
    raw.socket.write('EHLO client.test\r\n')
    await waitFor(/^250 /m)
    raw.socket.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n')
    await waitFor(/^354 /m)
    raw.socket.write('Subject: v1\r\n\r\nhi\r\n.\r\n')
    await waitFor(/^250 2\.0\.0 /m)
    raw.socket.write('QUIT\r\n')
    await raw.closed
    const msg = srv.queued.at(-1)?.text ?? ''
    assert.match(msg, /^Received: from client\.test \(unknown \[192\.0\.2\.7\]\)/)
    const s = seen.find((x) => x.remote.ip === '192.0.2.7')
    assert.deepEqual(s?.remote, { ip: '192.0.2.7', port: 40001 })
    assert.deepEqual(s?.local, { ip: '198.51.100.25', port: 25 })
    assert.equal(s?.proxy?.version, 1)
    assert.equal(s?.proxy?.proxy.ip, '127.0.0.1')
    assert.ok(srv.logs.some((e) => /summary ip=192\.0\.2\.7 /.test(e.message)))
  })

  test('the header and the first command in one write', async () => {
    const raw = await rawConnect(srv.port)
    raw.socket.write('PROXY TCP6 2001:db8::7 2001:db8::25 40002 25\r\nQUIT\r\n')
    // The QUIT was sent before the greeting: refused as a pipelining/early-talker violation,
    // but only once the header is consumed (the header itself is not "early talk").
    const out = await raw.closed
    assert.match(out, /^220 /)
    assert.ok(seen.some((x) => x.remote.ip === '2001:db8::7'))
  })

  test('per-address limits apply to the client in the header', async () => {
    const conns = []
    for (let i = 0; i < 3; i++) {
      const raw = await rawConnect(srv.port)
      conns.push(raw)
      raw.socket.write(`PROXY TCP4 203.0.113.9 198.51.100.25 ${5000 + i} 25\r\n`)
    }
    assert.match(await conns[0]!.firstLine, /^220 /)
    assert.match(await conns[1]!.firstLine, /^220 /)
    assert.equal(await conns[2]!.closed, '421 4.7.0 Too many connections from your address, try again later\r\n')
    for (const c of conns) c.socket.destroy()
  })

  test('a trusted peer without a valid header in time is dropped without a word', async () => {
    for (const first of ['EHLO client.test\r\n', 'PROXY TCP4 1.2.3.4\r\n', '']) {
      const raw = await rawConnect(srv.port)
      if (first) raw.socket.write(first)
      const t0 = Date.now()
      assert.equal(await raw.closed, '')
      if (!first) assert.ok(Date.now() - t0 >= 400, 'waited for the timeout')
    }
    assert.ok(
      srv.logs.some((e) => /PROXY protocol error from 127\.0\.0\.1: no PROXY header within 500 ms/.test(e.message)),
    )
  })
})

describe('PROXY protocol from an untrusted address', () => {
  test('v1 or v2 header: 421 and close', async () => {
    const srv = await startTestServer({ plugins: [rcptAll()] })
    try {
      for (const header of [
        Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.25 40001 25\r\n'),
        Buffer.from('0d0a0d0a000d0a515549540a2111000cc000020701020304138900190', 'hex'),
      ]) {
        const raw = await rawConnect(srv.port)
        assert.match(await raw.firstLine, /^220 /)
        raw.socket.write(header)
        const out = await raw.closed
        assert.match(out, /\r\n421 4\.7\.0 PROXY protocol header from an untrusted address; closing connection\r\n$/)
      }
    } finally {
      await srv.close()
    }
  })
})

describe('behind a real HAProxy', { timeout: 60_000 }, () => {
  const seen: Seen[] = []
  let srv: TestServer
  let dir: string
  let haproxy: ReturnType<typeof spawn> | undefined
  const ports = { v1: 0, v2: 0, tls: 0 }
  let haproxyLog = ''

  before(async () => {
    srv = await startTestServer({
      plugins: [capture(seen)(), rcptAll()],
      config: { proxy_trusted: ['127.0.0.1/32', '::1'] },
    })
    dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-haproxy-'))
    const cert = await makeCertificate('mx.example', dir)
    writeFileSync(join(dir, 'combined.pem'), readFileSync(cert.certFile, 'utf8') + readFileSync(cert.keyFile, 'utf8'))
    ports.v1 = await freePort()
    ports.v2 = await freePort()
    ports.tls = await freePort()
    const cfg = `
global
  maxconn 100
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend f_v1
  bind 127.0.0.1:${ports.v1}
  default_backend b_v1
backend b_v1
  server s1 127.0.0.1:${srv.port} send-proxy
frontend f_v2
  bind 127.0.0.1:${ports.v2}
  default_backend b_v2
backend b_v2
  server s1 127.0.0.1:${srv.port} send-proxy-v2
frontend f_tls
  bind 127.0.0.1:${ports.tls} ssl crt ${join(dir, 'combined.pem')}
  default_backend b_tls
backend b_tls
  server s1 127.0.0.1:${srv.port} send-proxy-v2 proxy-v2-options ssl,ssl-cipher,authority
`
    writeFileSync(join(dir, 'haproxy.cfg'), cfg)
    haproxy = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] })
    haproxy.stderr?.on('data', (d: Buffer) => {
      haproxyLog += d.toString()
    })
    for (let i = 0; i < 100; i++) {
      const ok = await rawConnect(ports.tls).then(
        (c) => {
          c.socket.destroy()
          return true
        },
        () => false,
      )
      if (ok) break
      await new Promise((r) => setTimeout(r, 100))
    }
  })
  after(async () => {
    haproxy?.kill('SIGKILL')
    await srv.close()
    rmSync(dir, { recursive: true, force: true })
  })

  for (const v of ['v1', 'v2'] as const) {
    test(`send-proxy${v === 'v2' ? '-v2' : ''}: the Received header carries the client address HAProxy saw`, async () => {
      const c = await SmtpTestClient.connect(ports[v])
      await send(c, `via haproxy ${v}`)
      const msg = srv.queued.at(-1)?.text ?? ''
      assert.match(msg, /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)/)
      const s = seen.at(-1)
      assert.equal(s?.proxy?.version, v === 'v1' ? 1 : 2, haproxyLog)
      assert.equal(s?.local.port, ports[v], 'the destination is the HAProxy frontend')
    })
  }

  for (const v of ['v1', 'v2'] as const)
    test(`a client at 127.0.0.5 through ${v} is seen as 127.0.0.5, not as HAProxy`, async () => {
      const raw = await rawConnect(ports[v], '127.0.0.1', '127.0.0.5')
      const clientPort = raw.socket.localPort
      const out: string[] = []
      raw.socket.on('data', (d: string) => out.push(d))
      const waitFor = async (re: RegExp) => {
        for (let i = 0; i < 150 && !re.test(out.join('')); i++) await new Promise((r) => setTimeout(r, 20))
        assert.match(out.join(''), re)
      }
      await waitFor(/^220 /m)
      raw.socket.write('EHLO client.test\r\n')
      await waitFor(/^250 /m)
      raw.socket.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n')
      await waitFor(/^354 /m)
      raw.socket.write('Subject: from .5\r\n\r\nhi\r\n.\r\n')
      await waitFor(/^250 2\.0\.0 /m)
      raw.socket.write('QUIT\r\n')
      await raw.closed
      assert.match(srv.queued.at(-1)?.text ?? '', /^Received: from client\.test \(unknown \[127\.0\.0\.5\]\)/)
      assert.deepEqual(seen.at(-1)?.remote, { ip: '127.0.0.5', port: clientPort })
    })

  test('TLS terminated by HAProxy: SSL and AUTHORITY TLVs reach plugins', async () => {
    const socket = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
      const s = tlsConnect(
        { port: ports.tls, host: '127.0.0.1', servername: 'mx.example', rejectUnauthorized: false },
        () => resolve(s),
      )
      s.once('error', reject)
    })
    let out = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => {
      out += d
    })
    for (let i = 0; i < 150 && !/^220 /m.test(out); i++) await new Promise((r) => setTimeout(r, 20))
    assert.match(out, /^220 /m)
    socket.end('QUIT\r\n')
    await new Promise((r) => socket.once('close', r))
    const p = seen.at(-1)?.proxy
    assert.equal(p?.version, 2)
    assert.equal(p?.tlvs.authority, 'mx.example')
    assert.equal(p?.tlvs.ssl?.ssl, true)
    assert.match(p?.tlvs.ssl?.version ?? '', /^TLSv1\.[23]$/)
    assert.match(p?.tlvs.ssl?.cipher ?? '', /^[A-Z0-9_-]+$/)
  })
})
