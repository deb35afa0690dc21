/**
 * PROXY protocol end to end: from a trusted address the header's client reaches plugins, the
 * logs and the Received header; without a valid header in time a trusted peer is dropped; from
 * an untrusted address a PROXY header gets 421; a v2 header whose CRC32C TLV does not match
 * is dropped. Behind a real HAProxy (Debian haproxy) with `send-proxy`, `send-proxy-v2`, its
 * `crc32c` option, and TLS terminated by HAProxy (SSL and AUTHORITY TLVs).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { type ProxiedConnection, ProxyInfo } from '../../src/host/connection-keys.ts'
import type { Peer } from '../../src/host/context.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { crc32c } from '../../src/net/crc32c.ts'
import { parseProxyHeader, V2_SIGNATURE } from '../../src/server/proxy-protocol.ts'
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

/** A v2 PROXY header for TCP/IPv4 with a CRC32C TLV (`damage` alters it after the sum). */
function v2WithCrc(src: [number, number, number, number], sport: number, damage?: (h: Buffer) => void): Buffer {
  const body = Buffer.alloc(12 + 7)
  Buffer.from(src).copy(body, 0)
  Buffer.from([198, 51, 100, 25]).copy(body, 4)
  body.writeUInt16BE(sport, 8)
  body.writeUInt16BE(25, 10)
  body.set([0x03, 0x00, 0x04], 12)
  const head = Buffer.from([0x21, 0x11, 0, body.length])
  const h = Buffer.concat([V2_SIGNATURE, head, body])
  h.writeUInt32BE(crc32c(h), h.length - 4)
  damage?.(h)
  return h
}

/** Reads SMTP replies off a raw socket until `re` matches all that came. */
function replies(socket: import('node:net').Socket): (re: RegExp) => Promise<void> {
  let out = ''
  socket.on('data', (d: string) => {
    out += d
  })
  return async (re) => {
    for (let i = 0; i < 150 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 20))
    assert.match(out, re)
  }
}

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

  test('v2 with a CRC32C TLV: a matching checksum is served as the client in the header', async () => {
    const raw = await rawConnect(srv.port)
    raw.socket.write(v2WithCrc([192, 0, 2, 77], 40077))
    const waitFor = replies(raw.socket)
    await waitFor(/^220 /m)
    raw.socket.write('EHLO client.test\r\n')
    await waitFor(/^250 /m)
    raw.socket.write('MAIL FROM:<a@client.test>\r\nRCPT TO:<u@mx.test>\r\nDATA\r\n')
    await waitFor(/^354 /m)
    raw.socket.write('Subject: crc\r\n\r\nhi\r\n.\r\nQUIT\r\n')
    await raw.closed
    assert.match(srv.queued.at(-1)?.text ?? '', /^Received: from client\.test \(unknown \[192\.0\.2\.77\]\)/)
    assert.deepEqual(seen.at(-1)?.remote, { ip: '192.0.2.77', port: 40077 })
  })

  test('v2 with a CRC32C TLV that does not match: dropped without a word, and the log says why', async () => {
    const connects = seen.length
    // The client address altered after the proxy summed the header (a bit flipped in transit).
    const raw = await rawConnect(srv.port)
    raw.socket.write(v2WithCrc([192, 0, 2, 78], 40078, (h) => (h[16] = 193)))
    raw.socket.write('EHLO client.test\r\n')
    assert.equal(await raw.closed, '')
    assert.equal(seen.length, connects, 'no session started: no connect hook ran')
    assert.ok(
      srv.logs.some((e) =>
        /^PROXY protocol error from 127\.0\.0\.1: v2 header: CRC32C mismatch \(header says 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\): altered in transit or a broken proxy; closing$/.test(
          e.message,
        ),
      ),
      srv.logs.map((e) => e.message).join('\n'),
    )
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
  const ports = { v1: 0, v2: 0, tls: 0, crc: 0, crcCapture: 0 }
  let haproxyLog = ''
  /** Stands in for qtsmtpd behind the crc32c backend: keeps the first bytes HAProxy sends. */
  let headerSink: Server
  const captured: Buffer[] = []

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
    ports.crc = await freePort()
    ports.crcCapture = await freePort()
    headerSink = createServer((sock) => {
      const chunks: Buffer[] = []
      sock.on('data', (d: Buffer) => {
        chunks.push(d)
        const all = Buffer.concat(chunks)
        const r = parseProxyHeader(all)
        if (r.status === 'incomplete') return
        captured.push(r.status === 'done' ? all.subarray(0, r.length) : all)
        sock.destroy()
      })
      sock.on('error', () => {})
    })
    const capturePort = await new Promise<number>((r) =>
      headerSink.listen(0, '127.0.0.1', () => r((headerSink.address() as { port: number }).port)),
    )
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
frontend f_crc
  bind 127.0.0.1:${ports.crc}
  default_backend b_crc
backend b_crc
  server s1 127.0.0.1:${srv.port} send-proxy-v2 proxy-v2-options crc32c
frontend f_crc_capture
  bind 127.0.0.1:${ports.crcCapture}
  default_backend b_crc_capture
backend b_crc_capture
  server s1 127.0.0.1:${capturePort} send-proxy-v2 proxy-v2-options crc32c
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
    headerSink.close()
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

  test('proxy-v2-options crc32c: the checksummed header is verified and the message delivered', async () => {
    const c = await SmtpTestClient.connect(ports.crc)
    await send(c, 'via haproxy crc32c')
    assert.match(srv.queued.at(-1)?.text ?? '', /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)/)
    assert.equal(seen.at(-1)?.proxy?.version, 2, haproxyLog)
    assert.equal(seen.at(-1)?.local.port, ports.crc)
  })

  test("HAProxy's checksummed header, altered by one bit, is dropped and logged", async () => {
    const client = await rawConnect(ports.crcCapture)
    for (let i = 0; i < 150 && captured.length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    client.socket.destroy()
    const header = captured[0]
    assert.ok(header !== undefined, `HAProxy sent a header; log:\n${haproxyLog}`)
    // It carries a CRC32C TLV (type 3, length 4) after the 12-byte IPv4 address block.
    assert.deepEqual([...header.subarray(28, 31)], [0x03, 0x00, 0x04], header.toString('hex'))
    assert.equal(parseProxyHeader(header).status, 'done')
    const altered = Buffer.from(header)
    altered[24] = (altered[24] as number) ^ 0x01 // the client's port
    const raw = await rawConnect(srv.port)
    raw.socket.write(altered)
    assert.equal(await raw.closed, '')
    const logged = srv.logs.filter((e) =>
      /PROXY protocol error from 127\.0\.0\.1: v2 header: CRC32C mismatch/.test(e.message),
    )
    assert.equal(logged.length, 1)
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
