import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { parseCidrList } from '../config/cidr-list.ts'
import { ConfigDir } from '../config/config-dir.ts'
import { liveConfig } from './live-config.ts'
import { createLogger, type LogEntry } from './logger.ts'

describe('live config files', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'live-config-'))
    await mkdir(join(dir, 'config'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  function setup(key: string) {
    const logs: LogEntry[] = []
    let clock = 0
    let reads = 0
    const config = ConfigDir.open([join(dir, 'config'), join(dir, 'fallback')])
    return config.then((cd) => ({
      logs,
      reads: () => reads,
      tick: (ms: number) => {
        clock += ms
      },
      live: liveConfig({
        name: key,
        read: () => {
          reads++
          return cd.reread(key)
        },
        parse: (lines) => parseCidrList(lines),
        log: createLogger((e) => logs.push(e), 7),
        now: () => clock,
      }),
    }))
  }

  it('reads nothing while unchanged, and at most once per interval', async () => {
    await writeFile(join(dir, 'config', 'a'), '10.0.0.1\n')
    const t = await setup('a')
    assert.equal(t.reads(), 1)
    for (let i = 0; i < 5; i++) {
      t.tick(1000)
      assert.equal(t.live.current().contains('10.0.0.1'), true)
    }
    assert.equal(t.reads(), 1)
    await writeFile(join(dir, 'config', 'a'), '10.0.0.2\n')
    t.tick(999)
    assert.equal(t.live.current().contains('10.0.0.1'), true, 'not checked before the interval')
    t.tick(1)
    assert.equal(t.live.current().contains('10.0.0.2'), true)
    assert.equal(t.live.current().contains('10.0.0.1'), false)
    assert.equal(t.reads(), 2)
    assert.match(t.logs.at(-1)?.message ?? '', /^a reloaded \(1 lines\)$/)
  })

  it('keeps the previous contents when the new file is broken, and logs its file:line once', async () => {
    await writeFile(join(dir, 'config', 'b'), '10.0.0.1\n')
    const t = await setup('b')
    await writeFile(join(dir, 'config', 'b'), '10.0.0.2\n10.0.0.3/33\n')
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.1'), true)
    t.tick(1000)
    t.live.current()
    const warnings = t.logs.filter((e) => e.level === 4)
    assert.equal(warnings.length, 1)
    assert.match(
      warnings[0]?.message ?? '',
      new RegExp(`previous contents stay in force: ${join(dir, 'config', 'b')}:2: `),
    )
    await writeFile(join(dir, 'config', 'b'), '10.0.0.2\n')
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.2'), true)
  })

  it('follows a file that is created, removed, or changed through $include', async () => {
    const t = await setup('c')
    assert.equal(t.live.current().contains('10.0.0.9'), false)
    await writeFile(join(dir, 'config', 'c'), '$include c.d\n')
    await mkdir(join(dir, 'config', 'c.d'))
    await writeFile(join(dir, 'config', 'c.d', 'one'), '10.0.0.9\n')
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.9'), true)
    await writeFile(join(dir, 'config', 'c.d', 'two'), '10.0.0.10\n')
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.10'), true, 'a file added to an included directory')
    await writeFile(join(dir, 'config', 'c.d', 'one'), '10.0.0.11\n')
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.11'), true, 'an included file edited')
    await rm(join(dir, 'config', 'c'))
    t.tick(1000)
    assert.equal(t.live.current().contains('10.0.0.10'), false, 'a removed file is an empty list')
  })

  it('stops the start when the file is broken at first read', async () => {
    await writeFile(join(dir, 'config', 'd'), 'nonsense\n')
    await assert.rejects(setup('d'), /config\/d:1: /)
  })
})
