import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startTestServer, withTestServer } from '../../testing/index.ts'
import { ask } from '../test-support.ts'
import loadcheck from './loadcheck.ts'

describe('loadcheck', () => {
  let dir: string
  let file: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'loadcheck-'))
    file = join(dir, 'loadavg')
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('refuses connections with 421 while the load is above max_load, and reads the load again after cache_time', async () => {
    await writeFile(file, '9.50 4.00 2.00 3/180 12345\n')
    await withTestServer({ plugins: [loadcheck({ loadavg: file, cache_time: 0 })] }, async (srv) => {
      const c = await srv.connect()
      assert.equal((await c.reply()).raw, '421 4.7.0 Server load too high, please try again later.\r\n')
      await c.closed()
      await writeFile(file, '6.99 4.00 2.00 3/180 12345\n')
      const d = await srv.connect()
      await d.expect(220)
      assert.match(await ask(d, 'EHLO client.test'), /^250/)
      await d.quit()
    })
  })

  it('keeps a reading for cache_time seconds (default 10)', async () => {
    await writeFile(file, '0.10 0.10 0.10 1/100 1\n')
    await withTestServer({ plugins: [loadcheck({ loadavg: file, max_load: 2 })] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.quit()
      await writeFile(file, '3.00 0.10 0.10 1/100 1\n')
      const d = await srv.connect()
      await d.expect(220)
      await d.quit()
    })
  })

  it('takes qpsmtpd arguments from a plugins file; a bad max_load stops the start', async () => {
    const conf = await mkdtemp(join(tmpdir(), 'loadcheck-conf-'))
    try {
      await writeFile(file, '9.50 4.00 2.00 3/180 12345\n')
      await writeFile(
        join(conf, 'plugins'),
        `loadcheck max_load 12 cache_time 30 uptime /usr/bin/uptime loadavg ${file}\n`,
      )
      await withTestServer({ configDir: conf }, async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.quit()
      })
      await writeFile(join(conf, 'plugins'), 'loadcheck max_load high\n')
      await assert.rejects(startTestServer({ configDir: conf }), {
        message: `${join(conf, 'plugins')}:1: plugin loadcheck: option "max_load": expected a number, got "high"`,
      })
    } finally {
      await rm(conf, { recursive: true, force: true })
    }
  })
})
