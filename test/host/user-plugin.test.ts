/**
 * A plugin written by a user as a plain .ts file in a plugin directory, loaded by its name
 * from config/plugins with qpsmtpd-style arguments, typed options validated at start-up.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import { readConfigDir } from '../../src/server/load-config.ts'
import { startTestServer } from '../../src/testing/index.ts'

const api = pathToFileURL(join(import.meta.dirname, '../../src/index.ts')).href

const vipPlugin = `
import { accept, definePlugin, opt, pass, reject, type RcptHook } from '${api}'

export default definePlugin({
  name: 'rcpt/vip',
  options: {
    users: opt.list({ positional: 0, description: 'local parts we accept' }),
    refuse_others: opt.boolean({ default: false }),
  },
  setup({ options }) {
    const rcpt: RcptHook = async (_ctx, to) => {
      if (options.users.includes(to.address.local)) return accept()
      return options.refuse_others ? reject({ code: 550, enhanced: '5.1.1', text: 'No such VIP' }) : pass()
    }
    return { hooks: { rcpt } }
  },
})
`

describe('a user plugin in a .ts file', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-user-plugin-'))
    await mkdir(join(dir, 'config'))
    await mkdir(join(dir, 'plugins/rcpt'), { recursive: true })
    await writeFile(join(dir, 'plugins/rcpt/vip.ts'), vipPlugin)
    await writeFile(join(dir, 'config/plugin_dirs'), `${join(dir, 'plugins')}\n`)
    await writeFile(join(dir, 'config/me'), 'mx.test\n')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('is loaded by name with its arguments and decides recipients', async () => {
    await writeFile(join(dir, 'config/plugins'), 'rcpt/vip alice,bob refuse_others 1\n')
    const srv = await startTestServer({ configDir: join(dir, 'config') })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<s@sender.test>', 250)
      assert.equal((await c.send('RCPT TO:<alice@mx.test>', 250))?.raw, '250 2.1.5 Recipient OK\r\n')
      assert.equal((await c.send('RCPT TO:<carol@mx.test>', 550))?.raw, '550 5.1.1 No such VIP\r\n')
      await c.send('DATA', 354)
      c.write('Subject: vip\r\n\r\nhi\r\n.\r\n')
      await c.expect(250)
      assert.equal(srv.queued.length, 1)
      assert.deepEqual(srv.queued[0]?.to, ['alice@mx.test'])
    } finally {
      await srv.close()
    }
  })

  it('the operator sets a plugin deadline in smtpd.conf; a hook past it answers 451 4.3.0', async () => {
    await writeFile(
      join(dir, 'plugins/rcpt/slow.ts'),
      `import { definePlugin, pass } from '${api}'
export default definePlugin({
  name: 'rcpt/slow',
  options: {},
  setup: () => ({ hooks: { rcpt: (ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(pass()))) } }),
})
`,
    )
    await writeFile(join(dir, 'config/plugins'), 'rcpt/slow\nrcpt/vip alice\n')
    await writeFile(join(dir, 'config/smtpd.conf'), 'plugin_timeout 30s\nplugin_timeout rcpt/slow 150ms\n')
    const srv = await startTestServer({ configDir: join(dir, 'config') })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send('MAIL FROM:<s@sender.test>', 250)
      assert.equal(
        (await c.send('RCPT TO:<alice@mx.test>', 451))?.raw,
        '451 4.3.0 Temporary failure, please try again later\r\n',
      )
      // The log names the deadline that fired: rcpt/slow's own, not the 30 s default.
      assert.ok(srv.logs.some((l) => /timed out after 150 ms/.test(l.message)))
    } finally {
      await srv.close()
      await writeFile(join(dir, 'config/smtpd.conf'), '')
    }
  })

  it('a malformed plugin_timeout names the file and line', async () => {
    await writeFile(join(dir, 'config/plugins'), 'rcpt/vip alice\n')
    await writeFile(join(dir, 'config/smtpd.conf'), '# deadlines\nplugin_timeout rcpt/vip soon\n')
    try {
      await assert.rejects(
        readConfigDir(join(dir, 'config')),
        /config\/smtpd\.conf:2: expected "plugin_timeout \[PLUGIN\] DURATION"/,
      )
    } finally {
      await writeFile(join(dir, 'config/smtpd.conf'), '')
    }
  })

  it('a bad option stops the start with the file and line', async () => {
    await writeFile(join(dir, 'config/plugins'), '# comment\nrcpt/vip alice refuse_others maybe\n')
    await assert.rejects(readConfigDir(join(dir, 'config')), (e: Error) => {
      assert.match(e.message, /config\/plugins:2: plugin rcpt\/vip: option "refuse_others": expected 0\/1/)
      return true
    })
  })

  it('an unknown plugin stops the start with the file and line', async () => {
    await writeFile(join(dir, 'config/plugins'), 'rcpt/nonesuch\n')
    await assert.rejects(readConfigDir(join(dir, 'config')), /config\/plugins:1: unknown plugin "rcpt\/nonesuch"/)
  })
})

describe('a plugin from an npm package', () => {
  const name = 'qtsmtpd-plugin-test-greeting'
  const pkg = join(import.meta.dirname, '../../node_modules', name)
  before(async () => {
    await mkdir(pkg, { recursive: true })
    await writeFile(join(pkg, 'package.json'), JSON.stringify({ name, type: 'module', exports: './index.js' }))
    // Published plugins ship JavaScript (Node does not strip types under node_modules).
    await writeFile(
      join(pkg, 'index.js'),
      `import { definePlugin } from '${pathToFileURL(join(import.meta.dirname, '../../src/host/define-plugin.ts')).href}'
import { reply } from '${pathToFileURL(join(import.meta.dirname, '../../src/protocol/reply.ts')).href}'
import { done } from '${pathToFileURL(join(import.meta.dirname, '../../src/host/verdict.ts')).href}'
export default definePlugin({
  name: 'connect/npm-greeting',
  options: {},
  setup: ({ config }) => ({
    hooks: {
      connect: (ctx) => {
        ctx.respond(reply(220, undefined, \`\${config.value('me')} ESMTP greeted by an npm plugin\`))
        return done()
      },
    },
  }),
})
`,
    )
  })
  after(() => rm(pkg, { recursive: true, force: true }))

  it('is loaded by its package name from config/plugins', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-npm-plugin-'))
    try {
      await writeFile(join(dir, 'me'), 'mx.test\n')
      await writeFile(join(dir, 'plugins'), `${name}\n`)
      const srv = await startTestServer({ configDir: dir })
      try {
        const c = await srv.connect()
        assert.equal((await c.reply()).raw, '220 mx.test ESMTP greeted by an npm plugin\r\n')
      } finally {
        await srv.close()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
