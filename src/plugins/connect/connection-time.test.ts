import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { withTestServer } from '../../testing/index.ts'
import connectionTime from './connection-time.ts'

const durationLine = /^\d+\.\d{3} s\.$/

describe('connection_time', () => {
  it('logs the duration of each connection at LOGINFO', () =>
    withTestServer({ plugins: [connectionTime()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.quit()
      await c.closed()
      const entry = srv.logs.find((e) => e.plugin === 'connect/connection-time')
      assert.match(entry?.message ?? '', durationLine)
      assert.equal(entry?.level, 6)
    }))

  it("takes qpsmtpd's bare level argument from a plugins file", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'connection-time-'))
    try {
      await writeFile(join(dir, 'plugins'), 'connection_time LOGNOTICE\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.quit()
        await c.closed()
        const entry = srv.logs.find((e) => e.plugin === 'connect/connection-time')
        assert.match(entry?.message ?? '', durationLine)
        assert.equal(entry?.level, 5)
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
