/**
 * qpsmtpd configurations run under qtsmtpd: Debian's /etc/qpsmtpd (the qpsmtpd package) and
 * qpsmtpd's own config.sample (test/fixtures/qpsmtpd-config.sample, from its repository), each
 * started with every plugin it names and serving a session, against a DNS server on loopback.
 * config.sample loads as it is, auth/authdeny included.
 */
import assert from 'node:assert/strict'
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { PluginCatalog } from '../../src/host/loader.ts'
import { type LoopbackDns, startLoopbackDns } from '../../src/plugins/dns-test-support.ts'
import { builtinPlugins } from '../../src/plugins/index.ts'
import { withTestServer } from '../../src/testing/index.ts'

const roots: string[] = []
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix))
  roots.push(d)
  return d
}
after(() => {
  for (const d of roots) rmSync(d, { recursive: true, force: true })
})

let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      'localhost.test. 300 IN A 127.0.0.1',
      '1.0.0.127.in-addr.arpa. 300 IN PTR localhost.test.',
      'sender.test. 300 IN MX 10 localhost.test.',
    ],
    { zones: ['test', '127.in-addr.arpa'] },
  )
})
after(() => loopback?.stop())

const debian = '/etc/qpsmtpd'

describe("Debian's /etc/qpsmtpd", {
  skip: !existsSync(join(debian, 'plugins')) && 'qpsmtpd (Debian) is not installed',
}, () => {
  it('starts with every plugin it names and serves a session', async () => {
    // A private copy whose only changes keep spool and log files out of /var.
    const root = tempDir('qtsmtpd-debian-')
    const config = join(root, 'qpsmtpd')
    cpSync(debian, config, { recursive: true })
    writeFileSync(join(config, 'spool_dir'), `${join(root, 'spool')}\n`)
    writeFileSync(join(config, 'logging'), `logging/file loglevel LOGINFO ${join(root, 'qpsmtpd.log')}\n`)
    await withTestServer({ configDir: config, dns: loopback.dns }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO localhost.test', 250)
      await c.send('MAIL FROM:<a@sender.test>', 250)
      // 127.0.0.1 is in Debian's relayclients.
      await c.send('RCPT TO:<u@elsewhere.test>', 250)
      await c.send('DATA', 354)
      c.write('Subject: hello\r\n\r\nfrom Debian\r\n.\r\n')
      await c.expect(250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
    })
    const log = readFileSync(join(root, 'qpsmtpd.log'), 'utf8')
    for (const plugin of ['connect/dnsbl', 'mail/rhsbl', 'helo/checks'])
      assert.match(log, new RegExp(`${plugin.replace('/', '\\/')}`), `${plugin} ran`)
  })
})

describe("qpsmtpd 0.94's async/* plugins", () => {
  const dir = '/usr/share/qpsmtpd/plugins/async'
  it('each loads the plugin of its name without async/ (every qtsmtpd plugin is asynchronous)', {
    skip: !existsSync(dir) && 'qpsmtpd (Debian) is not installed',
  }, () => {
    const catalog = new PluginCatalog(builtinPlugins)
    const names = readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)))
    assert.deepEqual(names.sort(), [
      'dns_whitelist_soft',
      'dnsbl',
      'earlytalker',
      'queue/smtp-forward',
      'resolvable_fromhost',
      'rhsbl',
      'uribl',
    ])
    for (const name of names) {
      const base = catalog.get(name)
      assert.ok(base !== undefined, name)
      assert.equal(catalog.get(`async/${name}`)?.definition, base.definition, `async/${name}`)
    }
  })
})

describe("qpsmtpd's config.sample", () => {
  const copy = () => {
    const config = join(tempDir('qtsmtpd-sample-'), 'config')
    cpSync(join(import.meta.dirname, '../fixtures/qpsmtpd-config.sample'), config, { recursive: true })
    // logging/warn would write every session to the test's stderr.
    rmSync(join(config, 'logging'))
    return config
  }

  it('loads every plugin that is not commented out (auth_flat_file and authdeny included), and serves a session', async () => {
    const config = copy()
    await withTestServer({ configDir: config, dns: loopback.dns }, async (srv) => {
      const c = await srv.connect()
      // earlytalker waits a second before the greeting.
      await c.expect(220, 10_000)
      await c.send('EHLO localhost.test', 250)
      await c.send('MAIL FROM:<a@sender.test>', 250)
      await c.send('RCPT TO:<postmaster@localhost>', 250)
      await c.quit()
    })
  })
})
