import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '../config/config-error.ts'
import { readConfigDir } from '../server/load-config.ts'
import { startTestServer, type TestServer } from '../testing/index.ts'
import help from './help.ts'

async function ask(srv: TestServer, line: string): Promise<string> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send(line)
  const r = await c.reply()
  await c.quit()
  return r.raw
}

describe('help', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'help-plugin-'))
    await mkdir(join(dir, 'help'))
    await mkdir(join(dir, 'config'))
    await writeFile(join(dir, 'help', 'mail'), 'MAIL FROM:<address> [parameters]\nStarts a transaction.\n\n')
    await writeFile(join(dir, 'help', 'empty'), '')
    await writeFile(join(dir, 'help', 'evil'), 'line one\r\n250 injected\x07\r\n')
    await writeFile(join(dir, 'rcpt.txt'), 'RCPT TO:<address>\n')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('not_implemented 1: 502 5.5.1', async () => {
    const srv = await startTestServer({ plugins: [help({ not_implemented: true })] })
    try {
      assert.equal(await ask(srv, 'HELP'), '502 5.5.1 Not implemented\r\n')
      assert.equal(await ask(srv, 'HELP MAIL'), '502 5.5.1 Not implemented\r\n')
    } finally {
      await srv.close()
    }
  })

  describe('help_dir and COMMAND file pairs', () => {
    let srv: TestServer
    before(async () => {
      srv = await startTestServer({
        plugins: [help({ help_dir: join(dir, 'help'), commands: [`rcpt=${join(dir, 'rcpt.txt')}`] })],
      })
    })
    after(() => srv.close())

    it('a command with a file gets its lines as 214', async () => {
      assert.equal(
        await ask(srv, 'HELP mail'),
        '214-2.0.0 MAIL FROM:<address> [parameters]\r\n214 2.0.0 Starts a transaction.\r\n',
      )
      assert.equal(await ask(srv, 'HELP MAIL extra words'), await ask(srv, 'HELP mail'))
    })
    it('a COMMAND file pair', async () => {
      assert.equal(await ask(srv, 'HELP RCPT'), '214 2.0.0 RCPT TO:<address>\r\n')
    })
    it('a command without a file, or with an empty one', async () => {
      assert.equal(await ask(srv, 'HELP DATA'), '214 2.0.0 No help available for SMTP command: data\r\n')
      assert.equal(await ask(srv, 'HELP empty'), '214 2.0.0 No help available for SMTP command: empty\r\n')
    })
    it('bare HELP gets the core text', async () => {
      assert.match(await ask(srv, 'HELP'), /^214-2\.0\.0 qtsmtpd/)
    })
    it('a name that is not a command word is refused, never read as a path', async () => {
      assert.equal(await ask(srv, 'HELP ../../etc/passwd'), '501 5.5.4 Invalid command name\r\n')
      assert.equal(await ask(srv, 'HELP rcpt.txt'), '501 5.5.4 Invalid command name\r\n')
    })
    it('control characters in a file never reach the wire', async () => {
      assert.equal(await ask(srv, 'HELP evil'), '214-2.0.0 line one\r\n214 2.0.0 250 injected\r\n')
    })
  })

  it('qpsmtpd syntax in config/plugins: relative paths from the directory holding config/', async () => {
    await writeFile(join(dir, 'config', 'plugins'), 'help help_dir help rcpt ./rcpt.txt\n')
    const srv = await startTestServer({ configDir: join(dir, 'config') })
    try {
      assert.equal(
        await ask(srv, 'HELP MAIL'),
        '214-2.0.0 MAIL FROM:<address> [parameters]\r\n214 2.0.0 Starts a transaction.\r\n',
      )
      assert.equal(await ask(srv, 'HELP rcpt'), '214 2.0.0 RCPT TO:<address>\r\n')
    } finally {
      await srv.close()
    }
  })

  it('no arguments: help_dir defaults to help/', async () => {
    await writeFile(join(dir, 'config', 'plugins'), 'help\n')
    const srv = await startTestServer({ configDir: join(dir, 'config') })
    try {
      assert.match(await ask(srv, 'HELP mail'), /^214-2\.0\.0 MAIL FROM/)
    } finally {
      await srv.close()
    }
  })

  it('a COMMAND pair whose file is missing is skipped with a warning, as in qpsmtpd', async () => {
    await writeFile(join(dir, 'config', 'plugins'), 'help vrfy nothere.txt\n')
    const srv = await startTestServer({ configDir: join(dir, 'config') })
    try {
      assert.equal(await ask(srv, 'HELP vrfy'), '214 2.0.0 No help available for SMTP command: vrfy\r\n')
      assert.ok(srv.logs.some((e) => /no help file for command vrfy/.test(e.message)))
    } finally {
      await srv.close()
    }
  })

  it('bad arguments stop the start at file:line', async () => {
    const plugins = join(dir, 'config', 'plugins')
    await writeFile(plugins, '# help\nhelp not_implemented maybe\n')
    await assert.rejects(readConfigDir(join(dir, 'config')), (e: unknown) => {
      assert.ok(e instanceof ConfigError)
      assert.match(e.message, new RegExp(`^${plugins}:2: plugin help: option "not_implemented": expected 0/1`))
      return true
    })
    await writeFile(plugins, 'help help_dir\n')
    await assert.rejects(
      readConfigDir(join(dir, 'config')),
      /plugins:1: plugin help: argument "help_dir" needs a value/,
    )
    await writeFile(plugins, 'help mail ../x;rm\n')
    await assert.rejects(
      startTestServer({ configDir: join(dir, 'config') }),
      /plugins:1: plugin help: invalid characters/,
    )
  })
})
