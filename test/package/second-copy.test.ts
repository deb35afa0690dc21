/**
 * A plugin that brings its own copy of qtsmtpd (vendored, or another version in its own
 * node_modules) must not fail open: its `Naughty` is another object than the server's, and a
 * ported badmailfrom with `reject naughty` records the listed sender through it. The copy is
 * qtsmtpd built the way the package is (tsconfig.build.json, as `npm run prepack` does) into
 * the plugin's node_modules in a temporary directory; the server runs from the sources.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { readConfigDir } from '../../src/server/load-config.ts'
import { openSession, startTestServer, type TestServer } from '../../src/testing/index.ts'

const repo = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)

// A port of qpsmtpd's check_badmailfrom, written against the package API of its own copy.
const badmailfromCopy = `import { definePlugin, rejectAs, rejectOptions, pass } from 'qtsmtpd'

export default definePlugin({
  name: 'mail/badmailfrom-copy',
  options: { ...rejectOptions },
  setup({ options, config, log }) {
    log.info('qtsmtpd from ' + import.meta.resolve('qtsmtpd'))
    const listed = new Set(config.lines('badmailfrom').map((l) => l.toLowerCase()))
    return {
      hooks: {
        mail: (ctx, from) =>
          from.address !== null && listed.has((from.address.local + '@' + from.address.domain).toLowerCase())
            ? rejectAs(ctx, options, 'sender listed in badmailfrom')
            : pass(),
      },
    }
  },
})
`

// Another version of qtsmtpd that declared the naughty note per transaction.
const conflictingKey = `import { defineKey, definePlugin } from 'qtsmtpd'

export const Naughty = defineKey('naughty', { scope: 'transaction', initial: () => [] })
export default definePlugin({ name: 'mail/other-naughty', options: {}, setup: () => ({ hooks: {} }) })
`

describe('a plugin with its own copy of qtsmtpd', { timeout: 120_000 }, () => {
  let tmp: string
  let srv: TestServer
  let tmpConfig: string
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'qtsmtpd-second-copy-'))
    const plugin = join(tmp, 'plugins', 'badmailfrom-copy')
    const copy = join(plugin, 'node_modules', 'qtsmtpd')
    await mkdir(copy, { recursive: true })
    await run(join(repo, 'node_modules', '.bin', 'tsc'), [
      '-p',
      join(repo, 'tsconfig.build.json'),
      '--outDir',
      join(copy, 'dist'),
    ])
    await copyFile(join(repo, 'package.json'), join(copy, 'package.json'))
    await symlink(join(repo, 'node_modules'), join(copy, 'node_modules'))
    await writeFile(join(plugin, 'package.json'), '{ "type": "module" }\n')
    await writeFile(join(plugin, 'index.js'), badmailfromCopy)
    const other = join(tmp, 'plugins', 'other-naughty')
    await mkdir(other)
    await symlink(join(plugin, 'node_modules'), join(other, 'node_modules'))
    await writeFile(join(other, 'package.json'), '{ "type": "module" }\n')
    await writeFile(join(other, 'index.js'), conflictingKey)
    const config = join(tmp, 'config')
    await mkdir(config)
    const files: Record<string, string> = {
      me: 'mx.test',
      rcpthosts: 'local.test',
      badmailfrom: 'listed@spam.test',
      plugin_dirs: join(tmp, 'plugins'),
      plugins: 'badmailfrom-copy reject naughty\nnaughty reject mail\nrcpt_ok\n',
    }
    for (const [name, text] of Object.entries(files)) await writeFile(join(config, name), `${text}\n`)
    srv = await startTestServer({ configDir: config })
    tmpConfig = config
  })
  after(async () => {
    await srv?.close()
    await rm(tmp, { recursive: true, force: true })
  })

  test('really is a second copy', () => {
    const where = srv.logs.find((l) => l.message.startsWith('qtsmtpd from '))?.message
    assert.equal(where, `qtsmtpd from file://${tmp}/plugins/badmailfrom-copy/node_modules/qtsmtpd/dist/index.js`)
  })

  test('mail from a sender it marks naughty is refused by naughty, and nothing is queued', async () => {
    const c = await openSession(srv)
    const refused = await c.send('MAIL FROM:<listed@spam.test>', 550)
    assert.equal(refused?.raw, '550 5.7.1 (mail/badmailfrom-copy) sender listed in badmailfrom\r\n')
    await c.closed()
    assert.equal(srv.queued.length, 0)
  })

  test('mail from other senders goes through', async () => {
    const c = await openSession(srv)
    await c.send('MAIL FROM:<friend@ok.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    c.write('Subject: t\r\n\r\nhello\r\n.\r\n')
    await c.expect(250)
    assert.equal(srv.queued.length, 1)
  })

  test('a key of the same name with another scope stops the start at its plugins line', async () => {
    await writeFile(join(tmpConfig, 'plugins'), 'naughty\nother-naughty\nrcpt_ok\n')
    await assert.rejects(readConfigDir(tmpConfig), (e: Error) => {
      assert.match(
        e.message,
        new RegExp(
          `^${tmpConfig}/plugins:2: cannot load .*other-naughty/index\\.js: key "naughty" is defined with scope transaction, but it already is with scope connection`,
        ),
      )
      return true
    })
  })
})
