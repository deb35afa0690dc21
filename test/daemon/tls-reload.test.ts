/**
 * Certificates are reloaded without a restart: replace the files the `tls` plugin names,
 * send SIGHUP, and new connections get the new certificate (open ones keep theirs).
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, rmSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { makeCertificate } from '../../src/testing/certs.ts'
import { freePort } from '../peers/free-port.ts'
import { makeConfig, startCli } from './harness.ts'

const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

/** STARTTLS on a fresh connection; returns the server certificate's SHA-256 fingerprint. */
async function fingerprint(port: number): Promise<string> {
  const plain = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.once('error', reject)
  })
  let buffer = ''
  const next = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        buffer += d.toString('latin1')
        if (re.test(buffer)) {
          plain.off('data', onData)
          buffer = ''
          resolve()
        }
      }
      plain.on('data', onData)
      setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(buffer)}`)), 5000).unref()
    })
  await next(/^220 .*\r\n$/m)
  plain.write('EHLO client.test\r\n')
  await next(/^250 .*\r\n$/m)
  plain.write('STARTTLS\r\n')
  await next(/^220 .*\r\n$/m)
  const secure = await new Promise<import('node:tls').TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: 'localhost' }, () => resolve(s))
    s.once('error', reject)
  })
  const fp = secure.getPeerCertificate().fingerprint256
  secure.destroy()
  return fp
}

describe('certificate reload', { timeout: 60_000 }, () => {
  test('SIGHUP picks up replaced certificate files for new connections', async () => {
    const cfg = makeConfig(['tls', 'rcpt_ok'])
    cleanup.push(cfg.remove)
    const ssl = join(cfg.config, 'ssl')
    mkdirSync(ssl)
    const first = await makeCertificate('localhost')
    const second = await makeCertificate('localhost')
    cleanup.push(() => {
      for (const c of [first, second]) rmSync(c.dir, { recursive: true, force: true })
    })
    const install = (c: typeof first) => {
      copyFileSync(c.certFile, join(ssl, 'qpsmtpd-server.crt'))
      copyFileSync(c.keyFile, join(ssl, 'qpsmtpd-server.key'))
    }
    install(first)
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const before = await fingerprint(port)

    install(second)
    const mark = cli.lines.length
    cli.kill('SIGHUP')
    await cli.waitFor(/configuration reloaded; new connections use it/, 15_000, mark)
    const afterReload = await fingerprint(port)
    assert.notEqual(afterReload, before)
    cli.kill('SIGTERM')
    assert.equal((await cli.exited()).code, 0)
  })
})
