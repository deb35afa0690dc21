/**
 * Per-listener chains, as docs/configuration.md shows them: one server, a port-25 listener
 * whose sessions run the DNSBL and greylisting checks, and a submission listener whose
 * authenticated users are not subject to them; selected by listener name, by role, and by
 * `!role`. Real sessions on real listeners; the config/plugins file is the operator's.
 */
import assert from 'node:assert/strict'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { makeCertificate } from '../../src/testing/certs.ts'
import { type SmtpTestClient, startTestServer, type TestServer } from '../../src/testing/index.ts'

const api = pathToFileURL(join(import.meta.dirname, '../../src/index.ts')).href

// Stand-ins with the replies of the real checks: a DNSBL hit and a first-time triplet.
const dnsblPlugin = `
import { definePlugin, pass, reject } from '${api}'
export default definePlugin({
  name: 'test/dnsbl',
  options: {},
  setup: () => ({
    hooks: {
      mail: (_ctx, from) =>
        from.address?.domain === 'listed.test'
          ? reject({ code: 554, enhanced: '5.7.1', text: 'Listed in dnsbl.test' })
          : pass(),
    },
  }),
})
`
const greylistPlugin = `
import { defer, definePlugin } from '${api}'
export default definePlugin({
  name: 'test/greylist',
  options: {},
  setup: () => ({ hooks: { rcpt: () => defer({ code: 450, enhanced: '4.7.1', text: 'Greylisted, try again later' }) } }),
})
`

const plugins = `# every listener
relay
# port 25 only, by its name
[mx] test/dnsbl
# every listener but authenticated submission
[!submission,smtps] test/greylist
[submission] auth_flat_file
rcpt_ok
`

const plain = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`).toString('base64')

describe('per-listener chains', () => {
  let dir: string
  let srv: TestServer
  const port = (i: number) => srv.ports[i] as number
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-listener-chains-'))
    await mkdir(join(dir, 'config'))
    await mkdir(join(dir, 'plugins/test'), { recursive: true })
    await writeFile(join(dir, 'plugins/test/dnsbl.ts'), dnsblPlugin)
    await writeFile(join(dir, 'plugins/test/greylist.ts'), greylistPlugin)
    const files: Record<string, string> = {
      plugins,
      plugin_dirs: join(dir, 'plugins'),
      me: 'mx.test',
      rcpthosts: 'local.test',
      flat_auth_pw: 'alice@local.test:secret',
      tls_before_auth: '0',
    }
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'config', name), `${text}\n`)
    srv = await startTestServer({
      configDir: join(dir, 'config'),
      listeners: [
        { host: '127.0.0.1', port: 0, role: 'smtp', name: 'mx' },
        { host: '127.0.0.1', port: 0, role: 'submission', name: 'msa' },
        { host: '127.0.0.1', port: 0, role: 'smtp', name: 'backup-mx' },
      ],
    })
  })
  after(async () => {
    await srv?.close()
    await rm(dir, { recursive: true, force: true })
  })

  const session = async (i: number): Promise<{ c: SmtpTestClient; ehlo: string }> => {
    const c = await srv.connect({ port: port(i) })
    await c.expect(220)
    const ehlo = (await c.send('EHLO client.test', 250))?.raw ?? ''
    return { c, ehlo }
  }

  it('port 25 (mx): the DNSBL refuses a listed sender, greylisting defers the rest, no AUTH', async () => {
    const { c, ehlo } = await session(0)
    assert.doesNotMatch(ehlo, /AUTH/)
    assert.equal((await c.send('MAIL FROM:<x@listed.test>', 554))?.raw, '554 5.7.1 Listed in dnsbl.test\r\n')
    await c.send('MAIL FROM:<x@sender.test>', 250)
    assert.equal((await c.send('RCPT TO:<u@local.test>', 450))?.raw, '450 4.7.1 Greylisted, try again later\r\n')
    await c.quit()
  })

  it('submission (msa): AUTH is offered, and neither the DNSBL nor greylisting runs', async () => {
    const { c, ehlo } = await session(1)
    assert.match(ehlo, /^250[- ]AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256\r$/m)
    await c.send(`AUTH PLAIN ${plain('alice@local.test', 'secret')}`, 235)
    await c.send('MAIL FROM:<alice@listed.test>', 250)
    await c.send('RCPT TO:<friend@elsewhere.test>', 250)
    await c.send('DATA', 354)
    c.write('Subject: from the road\r\n\r\nhi\r\n.\r\n')
    await c.expect(250)
    assert.equal(srv.queued.at(-1)?.from, 'alice@listed.test')
    await c.quit()
  })

  it('another smtp listener (backup-mx): greylisting by role, the DNSBL was for mx by name', async () => {
    const { c, ehlo } = await session(2)
    assert.doesNotMatch(ehlo, /AUTH/)
    await c.send('MAIL FROM:<x@listed.test>', 250)
    assert.equal((await c.send('RCPT TO:<u@local.test>', 450))?.raw, '450 4.7.1 Greylisted, try again later\r\n')
    await c.quit()
  })

  it('plugins are set up once; listeners with the same chain share one runner', () => {
    const names = srv.runtime.runner.plugins.map((p) => p.name)
    assert.deepEqual(names.filter((n) => n.startsWith('test/')).sort(), ['test/dnsbl', 'test/greylist'])
    const a = srv.runtime.runnerFor({ name: 'other-mx', role: 'smtp' })
    const b = srv.runtime.runnerFor({ name: 'backup-mx', role: 'smtp' })
    assert.equal(a, b)
    assert.notEqual(a, srv.runtime.runnerFor({ name: 'mx', role: 'smtp' }))
    assert.deepEqual(
      srv.runtime.runnerFor({ name: 'msa', role: 'submission' }).plugins.map((p) => p.name),
      names.filter((n) => n !== 'test/dnsbl' && n !== 'test/greylist'),
    )
  })
})

describe('listener selector errors name the line', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-listener-errors-'))
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'config/me'), 'mx.test\n')
    const cert = await makeCertificate('localhost')
    await mkdir(join(dir, 'cert'))
    await copyFile(cert.certFile, join(dir, 'cert/cert.pem'))
    await copyFile(cert.keyFile, join(dir, 'cert/key.pem'))
    await rm(cert.dir, { recursive: true, force: true })
  })
  after(() => rm(dir, { recursive: true, force: true }))

  const startWith = async (pluginLines: string) => {
    await writeFile(join(dir, 'config/plugins'), pluginLines)
    return startTestServer({
      configDir: join(dir, 'config'),
      listeners: [
        { host: '127.0.0.1', port: 0, role: 'smtp', name: 'mx' },
        { host: '127.0.0.1', port: 0, role: 'submission', name: 'msa' },
      ],
    })
  }
  const cases = [
    {
      name: 'a word that is neither a role nor a listener',
      lines: 'relay\n[submision] rcpt_ok\n',
      want: `plugins:2: listener selector [submision]: "submision" is neither a role (smtp, submission, smtps) nor the name of a listener (mx, msa)`,
    },
    {
      name: 'a plugin whose hooks serve the whole server',
      lines: '[smtp] logging/warn\nrcpt_ok\n',
      want: 'plugins:1: plugin logging/warn: a listener selector cannot limit its logging hook, which serves the whole server; remove the selector',
    },
    {
      name: 'a plugin without session hooks (tls serves every listener)',
      lines: 'rcpt_ok\n[smtp] tls cert/cert.pem cert/key.pem\n',
      want: 'plugins:2: plugin tls has no session hooks a listener selector could limit (it serves every listener)',
    },
    {
      name: 'bad syntax',
      lines: '[smtp rcpt_ok\n',
      want: 'plugins:1: listener selector without its closing ]; a listener selector is a list of roles (smtp, submission, smtps) or listener names, e.g. [smtp] or [!submission,smtps], before the plugin name',
    },
  ]
  for (const k of cases) {
    it(k.name, async () => {
      await assert.rejects(startWith(k.lines), (e: Error) => {
        assert.equal(e.message, `${join(dir, 'config')}/${k.want}`)
        return true
      })
    })
  }
})
