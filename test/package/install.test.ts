/**
 * The published package, as a new user and a plugin author meet it: `npm pack` (prepack builds
 * dist/), `npm install -g` of the tarball, and an install directory holding qtsmtpd and the
 * example plugin package (examples/qtsmtpd-plugin-vip, packed the same way: its prepack
 * compiles it against the installed qtsmtpd's declarations). The installed `qtsmtpd` loads the
 * plugin by its package name and delivers a message. Everything lives in a temporary directory
 * outside the repository, so nothing resolves to the repository's node_modules; qtsmtpd's
 * dependencies (the optional `node` package among them) come from npm's cache, which the
 * repository's own `npm install` filled.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { SmtpTestClient } from '../../src/testing/index.ts'
import { startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'

const repo = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)
const npmFlags = ['--prefer-offline', '--no-audit', '--no-fund']
// What a stock Debian has: its own (older) node, if any, and no Node.js 24 on PATH.
const systemPath = '/usr/bin:/bin'

// As docs/installing.md writes it: ES modules for the operator's own plugin files.
const siteManifest = '{ "private": true, "type": "module", "allowScripts": { "node": true } }\n'

const localPlugin = `import { definePlugin, type MailHook, pass, reject } from 'qtsmtpd'

const mail: MailHook = (_ctx, from) =>
  from.address?.domain === 'spam.test' ? reject({ code: 550, enhanced: '5.7.1', text: 'No mail from spam.test' }) : pass()

export default definePlugin({ name: 'mail/no-spam-test', options: {}, setup: () => ({ hooks: { mail } }) })
`

async function npm(cwd: string, args: readonly string[]): Promise<string> {
  const { stdout } = await run('npm', [...args], { cwd, maxBuffer: 16 * 1024 * 1024 })
  return stdout
}

async function packIn(dir: string, destination: string): Promise<string> {
  const before = new Set(await readdir(destination))
  await npm(dir, ['pack', '--pack-destination', destination])
  const made = (await readdir(destination)).filter((f) => f.endsWith('.tgz') && !before.has(f))
  assert.equal(made.length, 1, `npm pack in ${dir} made ${made.join(', ')}`)
  return join(destination, made[0] as string)
}

describe('the npm package', { timeout: 300_000 }, () => {
  let tmp: string
  let tarball: string
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'qtsmtpd-install-'))
    tarball = await packIn(repo, tmp)
  })
  after(() => rm(tmp, { recursive: true, force: true }))

  test('ships the command, the built library, the sample configuration, the units and the docs', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball])
    const files = stdout.split('\n').filter((f) => f !== '')
    for (const f of [
      'bin/qtsmtpd',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/testing/index.js',
      'dist/testing/index.d.ts',
      'dist/cli/main.js',
      'config.sample/plugins',
      'contrib/systemd/qtsmtpd.service',
      'docs/running.md',
      'README.md',
      'package.json',
    ])
      assert.ok(files.includes(`package/${f}`), `${f} is missing from the package`)
    const unwanted = files.filter((f) => /^package\/(src|test|bench|examples|\.ci)\/|\.test\.|tsconfig/.test(f))
    assert.deepEqual(unwanted, [])
  })

  test('npm install -g: the installed command runs where the system node is older', async () => {
    const prefix = join(tmp, 'global')
    await npm(tmp, ['install', '--global', '--prefix', prefix, ...npmFlags, tarball])
    const { stdout } = await run(join(prefix, 'bin/qtsmtpd'), ['--help'], { env: { PATH: systemPath }, cwd: tmp })
    assert.match(stdout, /^Usage: qtsmtpd --config DIR/)
  })

  test('a plugin package installed beside qtsmtpd is loaded by its name and mail is delivered', async () => {
    // The operator's install directory (docs/installing.md): qtsmtpd, then the plugin package.
    const site = join(tmp, 'site')
    await mkdir(site)
    await writeFile(join(site, 'package.json'), siteManifest)
    await npm(site, ['install', ...npmFlags, tarball])

    // The plugin author's checkout: its build tools from this repository, qtsmtpd as installed.
    const work = join(tmp, 'author')
    const example = join(work, 'qtsmtpd-plugin-vip')
    await cp(join(repo, 'examples/qtsmtpd-plugin-vip'), example, { recursive: true })
    await mkdir(join(work, 'node_modules/.bin'), { recursive: true })
    await mkdir(join(work, 'node_modules/@types'))
    await symlink(join(site, 'node_modules/qtsmtpd'), join(work, 'node_modules/qtsmtpd'))
    await symlink(join(repo, 'node_modules/@types/node'), join(work, 'node_modules/@types/node'))
    await symlink(join(repo, 'node_modules/typescript/bin/tsc'), join(work, 'node_modules/.bin/tsc'))
    const plugin = await packIn(example, tmp)
    const { stdout: shipped } = await run('tar', ['-tzf', plugin])
    assert.deepEqual(
      shipped
        .split('\n')
        .filter((f) => f !== '')
        .sort(),
      ['package/README.md', 'package/dist/index.d.ts', 'package/dist/index.js', 'package/package.json'],
    )
    // The author's tests run against the installed harness (qtsmtpd/testing, built to dist/).
    await run(process.execPath, ['--test', 'src/index.test.ts'], { cwd: example })

    await npm(site, ['install', ...npmFlags, plugin])
    // And a plugin file of the operator's own, in the install directory so `qtsmtpd` resolves.
    await mkdir(join(site, 'plugins/mail'), { recursive: true })
    await writeFile(join(site, 'plugins/mail/no-spam-test.ts'), localPlugin)
    const config = join(tmp, 'config')
    const maildir = join(tmp, 'maildir')
    await mkdir(config)
    await writeFile(join(config, 'me'), 'mx.test\n')
    await writeFile(join(config, 'loglevel'), '6\n')
    await writeFile(join(config, 'plugin_dirs'), `${join(site, 'plugins')}\n`)
    await writeFile(
      join(config, 'plugins'),
      `mail/no-spam-test\nqtsmtpd-plugin-vip alice refuse_others 1\nqueue/maildir ${maildir}\n`,
    )

    const port = await freePort()
    const cli = startCli(['--config', config, '--listen', `127.0.0.1:${port}`], {
      command: join(site, 'node_modules/.bin/qtsmtpd'),
      env: { PATH: systemPath },
      cwd: tmp,
    })
    try {
      await cli.waitFor(/ready: pid \d+/)
      await cli.waitFor(/accepting mail for alice/)
      const c = await SmtpTestClient.connect(port)
      await c.expect(/^220 mx\.test /)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<sender@spam.test>', '550 5.7.1 No mail from spam.test')
      await c.send('MAIL FROM:<sender@client.test>', '250 2.1.0 Sender OK')
      await c.send('RCPT TO:<carol@mx.test>', '550 5.1.1 No such VIP here')
      await c.send('RCPT TO:<alice@mx.test>', '250 2.1.5 Recipient OK')
      await c.send('DATA', 354)
      await c.send('Subject: hello\r\n\r\nfrom the installed package\r\n.', /^250 2\.0\.0 /)
      await c.quit()
    } finally {
      cli.kill('SIGTERM')
      assert.equal((await cli.exited()).code, 0)
    }
    const delivered = await readdir(join(maildir, 'new'))
    assert.equal(delivered.length, 1)
    const text = (await readFile(join(maildir, 'new', delivered[0] as string), 'utf8')).replaceAll('\r\n', '\n')
    assert.match(text, /\nSubject: hello\n\nfrom the installed package\n$/)
  })
})
