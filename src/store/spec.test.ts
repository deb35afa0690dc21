import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { openStore } from './open.ts'
import { parseStoreSpec, StoreSpecError } from './spec.ts'

const origin = { file: 'config/smtpd.conf', line: 7 }
const parse = (text: string) => parseStoreSpec(text, origin, '/etc/qtsmtpd')

describe('store setting', () => {
  const good = [
    { text: 'memory', want: { kind: 'memory' } },
    {
      text: 'sqlite:/var/lib/qtsmtpd/state.db',
      want: {
        kind: 'sqlite',
        file: '/var/lib/qtsmtpd/state.db',
        busyTimeoutMs: 250,
        maxBytes: 268435456,
        sweepIntervalMs: 60000,
      },
    },
    {
      text: 'sqlite:var/state.db busy_timeout=1s max_size=512M sweep_interval=5m',
      want: {
        kind: 'sqlite',
        file: '/etc/qtsmtpd/var/state.db',
        busyTimeoutMs: 1000,
        maxBytes: 536870912,
        sweepIntervalMs: 300000,
      },
    },
    { text: 'sqlite:///srv/s.db max_size=64K', want: { file: '/srv/s.db', maxBytes: 65536 } },
    {
      text: 'redis://127.0.0.1:6379',
      want: {
        kind: 'redis',
        mode: 'single',
        url: 'redis://127.0.0.1:6379',
        nodes: [{ host: '127.0.0.1', port: 6379 }],
        prefix: 'qtsmtpd:',
        timeoutMs: 1000,
        connectTimeoutMs: 2000,
        display: 'redis://127.0.0.1:6379',
      },
    },
    {
      text: 'rediss://user:s%40cret@redis.example:6380/2 timeout=500ms prefix=mx1:',
      want: {
        mode: 'single',
        username: 'user',
        password: 's@cret',
        database: 2,
        timeoutMs: 500,
        prefix: 'mx1:',
        display: 'rediss://user:***@redis.example:6380/2',
      },
    },
    {
      text: 'redis-sentinel://:pw@10.0.0.5,10.0.0.6:26380/mymaster/1',
      want: {
        mode: 'sentinel',
        masterName: 'mymaster',
        database: 1,
        password: 'pw',
        nodes: [
          { host: '10.0.0.5', port: 26379 },
          { host: '10.0.0.6', port: 26380 },
        ],
      },
    },
    {
      text: 'redis-cluster://[::1]:7000,127.0.0.1:7001 connect_timeout=3s',
      want: {
        mode: 'cluster',
        connectTimeoutMs: 3000,
        nodes: [
          { host: '::1', port: 7000 },
          { host: '127.0.0.1', port: 7001 },
        ],
      },
    },
  ]
  for (const { text, want } of good) {
    it(`reads "${text}"`, () => {
      const spec = parse(text) as unknown as Record<string, unknown>
      for (const [k, v] of Object.entries(want)) assert.deepEqual(spec[k], v, k)
    })
  }

  const bad = [
    { text: '', want: 'store: missing value (memory, sqlite:FILE or redis://HOST:PORT)' },
    {
      text: 'postgres://db',
      want: 'store: "postgres://db" is not memory, sqlite:FILE, redis://, redis-sentinel:// or redis-cluster://',
    },
    { text: 'sqlite:', want: 'store: sqlite: needs a file name, e.g. sqlite:/var/lib/qtsmtpd/state.db' },
    { text: 'sqlite:/x.db max_size=1K', want: 'store: max_size=1K: expected a size of at least 64K (512M, 2G)' },
    { text: 'sqlite:/x.db busy_timeout=soon', want: 'store: busy_timeout=soon: expected a duration (250ms, 1s)' },
    { text: 'sqlite:/x.db timeout=1s', want: 'store: unknown option timeout for sqlite' },
    { text: 'memory verbose', want: 'store: "verbose" is not name=value' },
    {
      text: 'redis://a:1,b:2',
      want: 'store: redis:// takes one host; use redis-cluster:// or redis-sentinel:// for several',
    },
    { text: 'redis://host:99999', want: 'store: bad host:port "host:99999"' },
    { text: 'redis://host/x', want: 'store: bad database number "x"' },
    {
      text: 'redis-sentinel://host:26379',
      want: 'store: redis-sentinel:// needs the master name: redis-sentinel://HOST:PORT/NAME',
    },
    { text: 'redis-cluster://h:7000/1', want: 'store: redis-cluster:// takes no database (a cluster has only 0)' },
  ]
  for (const { text, want } of bad) {
    it(`refuses "${text}" naming the file and line`, () => {
      assert.throws(
        () => parse(text),
        (e: Error) => e instanceof StoreSpecError && e.message === `config/smtpd.conf:7: ${want}` && e.line === 7,
      )
    })
  }
})

describe('openStore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-open-'))
  after(() => rmSync(dir, { recursive: true, force: true }))

  it('with no setting opens an SQLite file in the state directory, with no set-up', async () => {
    const store = await openStore(undefined, { origin, baseDir: '/', stateDir: dir })
    await store.set('k', 'v')
    await store.close()
    const again = await openStore(`sqlite:${join(dir, 'qtsmtpd-state.db')}`, { origin, baseDir: '/', stateDir: '/' })
    assert.equal(await again.get('k'), 'v')
    await again.close()
  })

  it('a file that cannot be used is an error naming the setting and the file', async () => {
    const file = join(dir, 'notes.txt')
    writeFileSync(file, 'not a database')
    await assert.rejects(
      openStore('sqlite:notes.txt', { origin, baseDir: dir, stateDir: dir }),
      (e: Error) =>
        e instanceof StoreSpecError &&
        e.message.startsWith(`config/smtpd.conf:7: store: ${file}: not an SQLite database`),
    )
  })
})
