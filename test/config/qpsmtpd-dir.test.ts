/**
 * A qpsmtpd-layout config directory (plugins by their qpsmtpd names and arguments, flat files,
 * `$include`, CIDR relayclients) runs unchanged; configuration mistakes stop the start with a
 * ConfigError naming the file and line.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, beforeEach, describe, it } from 'node:test'
import { ConfigError, ConfigErrorCode } from '../../src/config/config-error.ts'
import { readConfigDir } from '../../src/server/load-config.ts'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'

const PLUGINS = `# qpsmtpd config/plugins, as an operator wrote it
relay
count_unrecognized_commands 2

# rcpt_ok must be the last rcpt plugin
rcpt_ok
`

let root: string
let dir: string

async function writeConfig(files: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'qpsmtpd-dir-'))
})
after(() => rm(root, { recursive: true, force: true }))

let n = 0
beforeEach(async () => {
  dir = join(root, `config${++n}`)
  await mkdir(join(dir, 'rcpthosts.d'), { recursive: true })
  await writeConfig({
    plugins: PLUGINS,
    me: 'mx.local.test\n',
    rcpthosts: '# our domains\nlocal.test\n$include rcpthosts.d\n',
    'rcpthosts.d/customers': 'customer.test\n.hosted.test\n',
    relayclients: '# office network\n192.0.2.0/24\n',
  })
})

async function open(srv: TestServer) {
  const c = await srv.connect()
  await c.expect(/^220 mx\.local\.test /)
  await c.send('EHLO client.example', 250)
  return c
}

describe('a qpsmtpd config directory runs unchanged', () => {
  it('accepts local and $included domains, refuses relaying, queues the message', async () => {
    const srv = await startTestServer({ configDir: dir })
    try {
      const c = await open(srv)
      await c.send('MAIL FROM:<sender@client.example>', 250)
      await c.send('RCPT TO:<u@local.test>', '250 2.1.5 ')
      await c.send('RCPT TO:<u@mx.local.test>', '250 2.1.5 ')
      await c.send('RCPT TO:<u@customer.test>', '250 2.1.5 ')
      await c.send('RCPT TO:<u@shop.hosted.test>', '250 2.1.5 ')
      await c.send('RCPT TO:<u@hosted.test>', '550 5.7.1 Relaying denied\r\n')
      await c.send('RCPT TO:<u@elsewhere.example>', '550 5.7.1 Relaying denied\r\n')
      await c.send('DATA', 354)
      await c.send('Subject: hello\r\n\r\nbody\r\n.', 250)
      await c.quit()
      assert.equal(srv.queued.length, 1)
      assert.deepEqual(srv.queued[0]?.to, ['u@local.test', 'u@mx.local.test', 'u@customer.test', 'u@shop.hosted.test'])
    } finally {
      await srv.close()
    }
  })

  it('count_unrecognized_commands 2 takes its positional argument', async () => {
    const srv = await startTestServer({ configDir: dir })
    try {
      const c = await open(srv)
      await c.send('XFOO', 500)
      await c.send('XBAR', '521 5.5.1 ')
      await c.closed()
    } finally {
      await srv.close()
    }
  })

  it('a client in relayclients (CIDR) may relay', async () => {
    await writeConfig({ relayclients: '192.0.2.0/24\n127.0.0.0/8\n' })
    const srv = await startTestServer({ configDir: dir })
    try {
      const c = await open(srv)
      await c.send('MAIL FROM:<sender@local.test>', 250)
      await c.send('RCPT TO:<u@elsewhere.example>', '250 2.1.5 ')
      await c.quit()
    } finally {
      await srv.close()
    }
  })
})

describe('configuration mistakes name file and line', () => {
  const rejectsWith = async (code: string, message: string) => {
    await assert.rejects(readConfigDir(dir), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e))
      assert.equal(e.message, message)
      assert.equal(e.code, code)
      return true
    })
  }

  it('a bad plugin option', async () => {
    await writeConfig({ plugins: PLUGINS.replace('count_unrecognized_commands 2', 'count_unrecognized_commands two') })
    await rejectsWith(
      'SMTPD_ERR_PLUGIN_OPTION',
      `${join(dir, 'plugins')}:3: plugin count_unrecognized_commands: option "max": expected a number, got "two"`,
    )
  })

  it('an unknown option of a known plugin', async () => {
    await writeConfig({ plugins: 'relay only 1 everything 1\nrcpt_ok\n' })
    await rejectsWith('SMTPD_ERR_PLUGIN_OPTION', `${join(dir, 'plugins')}:1: plugin relay: unknown option "everything"`)
  })

  it('an unknown plugin', async () => {
    await writeConfig({ plugins: `${PLUGINS}check_nonexistent_plugin_xyz\n` })
    await rejectsWith(
      ConfigErrorCode.PluginUnknown,
      `${join(dir, 'plugins')}:7: unknown plugin "check_nonexistent_plugin_xyz": not built in, no .ts or .js file of that name in plugin_dirs (none), no npm package`,
    )
  })

  it('a malformed $include in the plugins file', async () => {
    await writeConfig({ plugins: `relay\n$include a b\nrcpt_ok\n` })
    await rejectsWith(ConfigErrorCode.Syntax, `${join(dir, 'plugins')}:2: $include takes exactly one file or directory`)
  })

  it('an $include of a missing file', async () => {
    await writeConfig({ plugins: `relay\n\n$include plugins.local\n` })
    await rejectsWith(
      ConfigErrorCode.IncludeMissing,
      `${join(dir, 'plugins')}:3: cannot $include ${join(dir, 'plugins.local')}: ENOENT`,
    )
  })

  it('a malformed $include in a file a plugin reads stops the start too', async () => {
    await writeConfig({ rcpthosts: 'local.test\n$include\n' })
    await assert.rejects(startTestServer({ configDir: dir }), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e))
      assert.equal(e.message, `${join(dir, 'rcpthosts')}:2: $include takes exactly one file or directory`)
      return true
    })
  })

  it('a bad relayclients entry stops the start', async () => {
    await writeConfig({ relayclients: '192.0.2.0/24\n192.0.2.300\n' })
    await assert.rejects(
      startTestServer({ configDir: dir }),
      new RegExp(
        `^ConfigError: ${join(dir, 'relayclients')}:2: not an IP address, CIDR or prefix: "192\\.0\\.2\\.300"$`,
      ),
    )
  })
})
