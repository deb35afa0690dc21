/**
 * Relative paths in config files and plugin arguments are taken from the directory holding the
 * config directory (qpsmtpd's install directory), whatever the working directory: under systemd
 * it is `/`, and `queue/maildir ./var/maildir` must not deliver into `/var/maildir`.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { makeCertificate } from '../../src/testing/certs.ts'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { startCli } from '../daemon/harness.ts'
import { freePort, waitForPort } from '../peers/free-port.ts'

describe('relative paths, started from another working directory', () => {
  const root = mkdtempSync(join(tmpdir(), 'qtsmtpd-install-'))
  const elsewhere = mkdtempSync(join(tmpdir(), 'qtsmtpd-cwd-'))
  after(() => {
    rmSync(root, { recursive: true, force: true })
    rmSync(elsewhere, { recursive: true, force: true })
  })

  it('mail, spool, log file, help texts and certificates are found under the install directory', async () => {
    const config = join(root, 'config')
    for (const d of [config, join(root, 'help'), join(root, 'log')]) mkdirSync(d, { recursive: true })
    mkdirSync(join(root, 'ssl'))
    await makeCertificate('localhost', join(root, 'ssl'))
    const files: Record<string, string> = {
      me: 'mx.test',
      rcpthosts: 'example.com',
      loglevel: '6',
      spool_dir: 'var/spool',
      logging: 'logging/file loglevel LOGINFO log/qtsmtpd.log',
      plugins: [
        'tls ssl/localhost.crt ssl/localhost.key',
        'help help_dir help',
        'rcpt_ok',
        'queue/maildir ./var/maildir',
      ].join('\n'),
    }
    for (const [k, v] of Object.entries(files)) writeFileSync(join(config, k), `${v}\n`)
    writeFileSync(join(root, 'help', 'mail'), 'MAIL FROM:<address> starts a message\n')

    const port = await freePort()
    const cli = startCli(['--config', config, '--listen', `127.0.0.1:${port}`], { cwd: elsewhere })
    try {
      await waitForPort(port)
      const c = await SmtpTestClient.connect(port)
      await c.expect(220)
      const ehlo = await c.send('EHLO client.test', 250)
      assert.match(ehlo?.raw ?? '', /STARTTLS/)
      assert.equal((await c.send('HELP MAIL', 214))?.raw, '214 2.0.0 MAIL FROM:<address> starts a message\r\n')
      await c.send('MAIL FROM:<a@client.test>', 250)
      await c.send('RCPT TO:<u@example.com>', 250)
      await c.send('DATA', 354)
      await c.send('Subject: where\r\n\r\nunder the install directory\r\n.', /^250 2\.0\.0 Queued as /)
      await c.send('QUIT', 221)
      await c.closed()

      const delivered = readdirSync(join(root, 'var/maildir/new'))
      assert.equal(delivered.length, 1)
      assert.match(readFileSync(join(root, 'var/maildir/new', delivered[0] as string), 'utf8'), /under the install/)
      assert.ok(existsSync(join(root, 'var/spool')), 'spool_dir under the install directory')
      assert.deepEqual(readdirSync(elsewhere), [], 'nothing in the working directory')
      cli.kill('SIGTERM')
      await cli.exited(30_000)
      const logged = readFileSync(join(root, 'log/qtsmtpd.log'), 'utf8')
      assert.match(logged, /ready: pid \d+, listening on 127\.0\.0\.1:/)
      // Set-up lines of the plugins after config/logging's go to its file too, not to stderr.
      assert.match(logged, / tls: TLS certificate .*ssl\/localhost\.crt\n/)
      assert.ok(!cli.lines.some((l) => l.includes('TLS certificate')), cli.lines.join('\n'))
    } finally {
      cli.kill('SIGKILL')
    }
  })
})
