/**
 * The per-plugin `loglevel` argument (qpsmtpd docs/logging.pod, "plugin loglevel"): `N` writes
 * every entry of the plugin at level N, `+N`/`-N` makes each entry N levels less/more severe.
 * It is validated at start-up and applied by the host to the plugin's logger; what the core
 * says about the plugin (a failed hook) keeps its level.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '../../src/config/config-error.ts'
import { rejectOptions } from '../../src/host/conventions.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import { readConfigDir } from '../../src/server/load-config.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../../src/testing/index.ts'

const chatty = definePlugin({
  name: 'test/chatty',
  options: { ...rejectOptions },
  setup({ log }) {
    log.info('set up')
    return {
      hooks: {
        mail: (ctx) => {
          ctx.log.info('mail seen')
          ctx.log.debug('mail detail')
          return pass()
        },
        rcpt: (_ctx, to) => {
          if (to.address.local === 'boom') throw new Error('boom')
          return pass()
        },
      },
    }
  },
})

async function levelsLogged(loglevel: string | undefined, fn?: (srv: TestServer) => Promise<void>) {
  return withTestServer(
    { plugins: [chatty(loglevel === undefined ? {} : { loglevel }), acceptAllRecipients()] },
    async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await fn?.(srv)
      await c.quit()
      const level = (message: string) =>
        srv.logs.find((e) => e.plugin === 'test/chatty' && e.message === message)?.level
      return { setUp: level('set up'), info: level('mail seen'), debug: level('mail detail'), logs: srv.logs }
    },
  )
}

describe('per-plugin loglevel', () => {
  const cases = [
    { loglevel: undefined, want: { setUp: 6, info: 6, debug: 7 } },
    { loglevel: '3', want: { setUp: 3, info: 3, debug: 3 } },
    { loglevel: 'LOGNOTICE', want: { setUp: 5, info: 5, debug: 5 } },
    { loglevel: 'warn', want: { setUp: 4, info: 4, debug: 4 } },
    { loglevel: '+1', want: { setUp: 7, info: 7, debug: 7 } },
    { loglevel: '-2', want: { setUp: 4, info: 4, debug: 5 } },
    { loglevel: '-9', want: { setUp: 0, info: 0, debug: 0 } },
  ] as const
  for (const { loglevel, want } of cases) {
    it(`loglevel ${loglevel ?? '(none)'}: entries at ${JSON.stringify(want)}`, async () => {
      const got = await levelsLogged(loglevel)
      assert.deepEqual({ setUp: got.setUp, info: got.info, debug: got.debug }, want)
    })
  }

  it("a failed hook is logged at error whatever the plugin's loglevel", () =>
    withTestServer({ plugins: [chatty({ loglevel: '7' }), acceptAllRecipients()] }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@client.example>', 250)
      await c.send('RCPT TO:<boom@local.test>', 451)
      await c.quit()
      const failure = srv.logs.find((e) => e.plugin === 'test/chatty' && /hook rcpt failed: boom/.test(e.message))
      assert.equal(failure?.level, 3)
    }))
})

describe('loglevel in config/plugins', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-loglevel-'))
    await mkdir(join(dir, 'config'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  for (const bad of ['banana', '8', '+x', '++1', '']) {
    it(`naughty loglevel ${JSON.stringify(bad)} stops the start at its line`, async () => {
      await writeFile(join(dir, 'config/plugins'), `rcpt_ok\nnaughty loglevel "${bad}"\n`)
      await assert.rejects(readConfigDir(join(dir, 'config')), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e))
        assert.equal(
          e.message,
          `${join(dir, 'config/plugins')}:2: plugin naughty: option "loglevel": expected 0-7, a level name (LOGINFO, info, ...), or +N/-N, got "${bad}"`,
        )
        return true
      })
    })
  }

  it('naughty loglevel -1 and LOGINFO are accepted', async () => {
    for (const good of ['-1', 'LOGINFO', '0']) {
      await writeFile(join(dir, 'config/plugins'), `naughty loglevel ${good}\nrcpt_ok\n`)
      const loaded = await readConfigDir(join(dir, 'config'))
      assert.equal(loaded.plugins[0]?.definition.name, 'naughty')
    }
  })
})
