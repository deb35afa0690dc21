import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigError } from '../../config/config-error.ts'
import { runtimeFromConfigDir } from '../../server/load-runtime.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { ask } from '../test-support.ts'
import rcptMap from './map.ts'
import rcptOk from './ok.ts'

describe('rcpt_map', () => {
  let dir: string
  let conf: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rcpt-map-'))
    conf = join(dir, 'config')
    await mkdir(conf)
    await writeFile(join(conf, 'rcpthosts'), 'example.org\nexample.net\n')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('decides the recipients of its domain from the map, with the default for the rest; follows edits', async () => {
    await writeFile(
      join(dir, 'map_example_org'),
      '# users\nme@example.org OK\nYou@Example.org OK\ninfo@example.org DENY User not found.\nbusy@example.org DENYSOFT\n',
    )
    await writeFile(
      join(conf, 'plugins'),
      'rcpt_map domain example.org file map_example_org default DENY=Who_is_that?\nrcpt_ok\n',
    )
    await withTestServer({ configDir: conf }, async (srv) => {
      const c = await openSession(srv)
      await c.send('MAIL FROM:<s@sender.example>', 250)
      assert.match(await ask(c, 'RCPT TO:<me@example.org>'), /^250 2\.1\.5 /)
      assert.match(await ask(c, 'RCPT TO:<you@EXAMPLE.ORG>'), /^250 2\.1\.5 /)
      assert.equal(await ask(c, 'RCPT TO:<info@example.org>'), '550 5.7.1 User not found.\r\n')
      assert.equal(await ask(c, 'RCPT TO:<busy@example.org>'), '450 4.7.1 No such user.\r\n')
      assert.equal(await ask(c, 'RCPT TO:<stranger@example.org>'), '550 5.7.1 Who is that?\r\n')
      // Other domains are rcpt_ok's.
      assert.match(await ask(c, 'RCPT TO:<anyone@example.net>'), /^250 2\.1\.5 /)
      await writeFile(join(dir, 'map_example_org'), 'stranger@example.org OK\n')
      await sleep(1100)
      assert.match(await ask(c, 'RCPT TO:<stranger@example.org>'), /^250 2\.1\.5 /)
      assert.equal(await ask(c, 'RCPT TO:<me@example.org>'), '550 5.7.1 Who is that?\r\n')
      // An empty map is refused and the last one stays (qpsmtpd did the same).
      await writeFile(join(dir, 'map_example_org'), '# nobody\n')
      await sleep(1100)
      assert.match(await ask(c, 'RCPT TO:<stranger@example.org>'), /^250 2\.1\.5 /)
      await c.quit()
      assert.ok(
        srv.logs.some((e) => e.level === 4 && e.message.includes(`${join(dir, 'map_example_org')}: the map is empty`)),
      )
    })
  })

  it('a missing argument stops the start at its line', async () => {
    await writeFile(join(conf, 'plugins'), 'rcpt_map domain example.org\nrcpt_ok\n')
    await assert.rejects(startTestServer({ configDir: conf }), {
      message: `${join(conf, 'plugins')}:1: plugin rcpt_map: option "file" is required`,
    })
  })

  it('a bad default, an empty map or a bad map line stop the start, each at its file:line', async () => {
    await writeFile(join(dir, 'map_bad'), 'a@example.org OK\nb@example.org PERHAPS\n')
    await writeFile(join(dir, 'map_empty'), '\n')
    await writeFile(
      join(conf, 'plugins'),
      [
        'rcpt_map domain example.org file map_bad',
        'rcpt_map:2 domain example.org file map_empty',
        'rcpt_map:3 domain example.org file map_example_org default MAYBE',
        'rcpt_ok',
      ].join('\n'),
    )
    await assert.rejects(runtimeFromConfigDir(conf), (e: unknown) => {
      assert.ok(e instanceof ConfigError)
      assert.deepEqual(e.message.split('\n'), [
        `${join(dir, 'map_bad')}:2: "PERHAPS" is not a return code; use one of OK, DECLINED, DENY, DENYSOFT, DENY_DISCONNECT, DENYHARD, DENYSOFT_DISCONNECT`,
        `${join(dir, 'map_empty')}: the map is empty`,
        `${join(conf, 'plugins')}:3: plugin rcpt/map:3: "MAYBE" is not a return code; use one of OK, DECLINED, DENY, DENYSOFT, DENY_DISCONNECT, DENYHARD, DENYSOFT_DISCONNECT`,
      ])
      return true
    })
  })

  it('works from code too', async () => {
    await writeFile(join(dir, 'map_code'), 'me@example.org OK\n')
    await withTestServer(
      {
        plugins: [rcptMap({ domain: 'example.org', file: join(dir, 'map_code') }), rcptOk()],
        config: { rcpthosts: ['example.org'] },
      },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@sender.example>', 250)
        assert.equal(await ask(c, 'RCPT TO:<nobody@example.org>'), '550 5.7.1 No such user.\r\n')
        await c.quit()
      },
    )
  })
})
