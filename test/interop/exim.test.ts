/**
 * Interoperability with Exim's smtp transport, the one client here that speaks BDAT: Exim uses
 * CHUNKING (RFC 3030) whenever the server offers it (`hosts_try_chunking = *`), and logs `K` on
 * the delivery line when it did. Debian's Exim is unpacked beside Postfix by test/peers/exim.sh
 * (needs apt access the first time; the test is skipped when that fails). Exim delivers a message
 * submitted with -odi -bm to our server on 127.0.0.1: over plaintext through a recording relay
 * (to see BDAT on the wire) and over STARTTLS, including a 5 MiB message in several chunks.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { acceptAllRecipients, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { eximBinary } from '../peers/exim-peer.ts'
import { explain, firstField, receivedWith, runClient, sha256, startRecordingProxy } from './helpers.ts'

function findExim(): string | undefined {
  try {
    return eximBinary()
  } catch {
    return undefined
  }
}

const exim = process.getuid?.() === 0 ? findExim() : undefined

describe('exim (BDAT client)', {
  skip: exim === undefined && 'exim could not be unpacked (test/peers/exim.sh)',
}, () => {
  let srv: TestServer
  let dir: string

  before(async () => {
    srv = await startTestServer({ plugins: [acceptAllRecipients()], tls: true })
    dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-exim-client-'))
    const uid = Number(execFileSync('id', ['-u', 'Debian-exim'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'Debian-exim'], { encoding: 'utf8' }).trim())
    for (const d of ['spool', 'log']) {
      mkdirSync(join(dir, d))
      chownSync(join(dir, d), uid, gid)
    }
    chownSync(dir, uid, gid)
  })
  after(async () => {
    await srv?.close()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  /** An Exim config that sends everything to 127.0.0.1:port; `tls` requires STARTTLS. */
  function config(name: string, port: number, tls: boolean): string {
    const conf = join(dir, `${name}.conf`)
    writeFileSync(
      conf,
      [
        `exim_path = ${exim}`,
        'exim_user = Debian-exim',
        'exim_group = Debian-exim',
        `spool_directory = ${dir}/spool`,
        `log_file_path = ${dir}/log/${name}-%slog`,
        'primary_hostname = exim.client.test',
        'keep_environment =',
        'begin routers',
        'out:',
        '  driver = manualroute',
        '  route_list = * 127.0.0.1',
        '  self = send',
        '  transport = smtp',
        'begin transports',
        'smtp:',
        '  driver = smtp',
        `  port = ${port}`,
        '  allow_localhost',
        '  hosts_try_chunking = *',
        '  tls_verify_certificates =',
        tls ? '  hosts_require_tls = *' : '  hosts_avoid_tls = *',
        '',
      ].join('\n'),
    )
    return conf
  }

  /** Submits a message to Exim, which delivers it at once (-odi); returns the new queued message. */
  async function deliver(name: string, port: number, tls: boolean, input: Buffer) {
    const before = srv.queued.length
    const r = await runClient(
      exim!,
      ['-C', config(name, port, tls), '-odi', '-f', 'a@t.test', '-i', 'u@t.test', 'v@t.test'],
      { input, timeoutMs: 30_000 },
    )
    const mainlog = readFileSync(join(dir, 'log', `${name}-mainlog`), 'utf8')
    assert.equal(r.code, 0, `${explain(r)}\n${mainlog}`)
    assert.equal(srv.queued.length, before + 1, mainlog)
    // `K` on the delivery line: Exim used CHUNKING. C="..." is our final reply.
    assert.match(mainlog, /=> u@t\.test .* K C="250 2\.0\.0 Queued as \S+"/, mainlog)
    return { msg: srv.queued[before]!, mainlog }
  }

  test('plaintext: BDAT ... LAST on the wire, envelope and body intact', async () => {
    const proxy = await startRecordingProxy(srv.port)
    try {
      const body = 'hello from exim\n.leading dot\nGrüße\n'
      const { msg } = await deliver('plain', proxy.port, false, Buffer.from(`Subject: via exim\n\n${body}`))
      const wire = Buffer.concat(proxy.fromClient).toString('latin1')
      assert.match(wire, /\r\nBDAT \d+ LAST\r\n/)
      assert.doesNotMatch(wire, /\r\nDATA\r\n/)
      assert.equal(msg.from, 'a@t.test')
      assert.deepEqual(msg.to, ['u@t.test', 'v@t.test'])
      assert.equal(receivedWith(msg.data), 'ESMTP')
      assert.match(firstField(msg.data), /^Received: from exim\.client\.test /)
      assert.ok(msg.text.endsWith(`\r\n\r\n${body.replaceAll('\n', '\r\n')}`), msg.text)
    } finally {
      await proxy.close()
    }
  })

  test('STARTTLS, 5 MiB in BDAT chunks: body byte-exact, ESMTPS, clean TLS close', async () => {
    const line = `${'0123456789'.repeat(7)}\n.dot\n`
    const body = line.repeat(Math.ceil((5 * 1024 * 1024) / line.length))
    const { msg, mainlog } = await deliver('tls', srv.port, true, Buffer.from(`Subject: big via exim\n\n${body}`))
    assert.equal(receivedWith(msg.data), 'ESMTPS')
    const at = msg.data.indexOf('\r\n\r\n')
    assert.equal(sha256(msg.data.subarray(at + 4)), sha256(body.replaceAll('\n', '\r\n')))
    // The server ends TLS with close_notify after QUIT (GnuTLS otherwise logs "The TLS connection
    // was non-properly terminated").
    assert.doesNotMatch(mainlog, /TLS error/, mainlog)
  })
})
