/**
 * The store and DNS settings are read by the process's services: their errors are reported at
 * their lines with every other problem of the configuration; a valid configuration gets the
 * default store (an SQLite file in spool_dir) and a resolver; a reload is checked like a start
 * but keeps the running store and resolver, and says when a restart is needed to change them.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ConfigErrors } from '../../src/config/config-error.ts'
import type { LogEntry } from '../../src/host/logger.ts'
import type { MemoryMetrics } from '../../src/metrics/index.ts'
import { runtimeFromConfigDir } from '../../src/server/load-runtime.ts'
import { ProcessServices } from '../../src/server/process-services.ts'

const dirs: string[] = []
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function configDir(files: Readonly<Record<string, string>>): { config: string; spool: string } {
  const root = mkdtempSync(join(tmpdir(), 'qtsmtpd-services-'))
  dirs.push(root)
  const config = join(root, 'config')
  mkdirSync(config)
  const spool = join(root, 'spool')
  const all = { me: 'mx.test', spool_dir: spool, plugins: 'rcpt_ok\nqueue/discard', ...files }
  for (const [k, v] of Object.entries(all)) writeFileSync(join(config, k), `${v}\n`)
  return { config, spool }
}

describe('the process services from the configuration', () => {
  it('report store and DNS setting errors at their lines, with the other problems', async () => {
    const { config } = configDir({
      'smtpd.conf': ['recipient_limit lots', 'store nosuch:thing', 'dns_timeout soon', 'metrics_max_series none'].join(
        '\n',
      ),
      dns_servers: '192.0.2.500',
    })
    const at = (file: string, line: number) => `${join(config, file)}:${line}`
    await assert.rejects(runtimeFromConfigDir(config), (e: unknown) => {
      assert.ok(e instanceof ConfigErrors, String(e))
      assert.deepEqual(
        e.errors.map((x) => x.message),
        [
          `${at('smtpd.conf', 1)}: expected a whole number, got "lots"`,
          `${at('smtpd.conf', 2)}: store: "nosuch:thing" is not memory, sqlite:FILE, redis://, redis-sentinel:// or redis-cluster://`,
          `${at('smtpd.conf', 3)}: expected a duration such as 5s or 1500ms, got "soon"`,
          `${at('smtpd.conf', 4)}: metrics_max_series: expected a whole number from 1, got "none"`,
          `${at('dns_servers', 1)}: expected IP, IP:port or [IPv6]:port, got "192.0.2.500"`,
        ],
      )
      return true
    })
  })

  it('default to an SQLite store in spool_dir and a resolver, closed with a runtime that opened them', async () => {
    const { config, spool } = configDir({})
    const runtime = await runtimeFromConfigDir(config)
    try {
      const store = runtime.provided.store
      assert.ok(store !== undefined && runtime.provided.dns !== undefined)
      await store.set('k', 'v')
      assert.equal(await store.get('k'), 'v')
      assert.ok(existsSync(join(spool, 'qtsmtpd-state.db')))
    } finally {
      await runtime.close()
    }
    await assert.rejects(runtime.provided.store?.get('k') ?? Promise.resolve(), /closed/)
  })

  it('bound the label combinations of a metric by metrics_max_series', async () => {
    const { config } = configDir({ 'smtpd.conf': 'metrics_max_series 2' })
    const runtime = await runtimeFromConfigDir(config)
    try {
      const perIp = runtime.provided.metrics.counter({ name: 'per_ip_total', help: 'x', labelNames: ['ip'] })
      for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) perIp.labels({ ip }).inc()
      const snapshot = (runtime.provided.metrics as MemoryMetrics).snapshot()
      assert.equal(snapshot.find((m) => m.name === 'per_ip_total')?.series.length, 2)
    } finally {
      await runtime.close()
    }
  })

  it('are kept by a reload, which is refused for a bad store line and warns for a changed one', async () => {
    const { config } = configDir({ 'smtpd.conf': 'store memory' })
    const services = new ProcessServices({ warn: () => {} })
    const logs: LogEntry[] = []
    const load = () => runtimeFromConfigDir(config, { services, logWriter: (e) => logs.push(e) })
    const first = await load()
    await first.provided.store?.set('kept', 'yes')
    await first.close()
    // The runtime was closed, the process's store was not.
    assert.equal(await first.provided.store?.get('kept'), 'yes')

    writeFileSync(join(config, 'smtpd.conf'), 'store nosuch:thing\n')
    await assert.rejects(
      load(),
      (e: unknown) => e instanceof Error && /smtpd\.conf:1: store: "nosuch:thing"/.test(e.message),
    )

    writeFileSync(join(config, 'smtpd.conf'), 'store sqlite:state.db\ndns_timeout 2s\n')
    const second = await load()
    assert.equal(await second.provided.store?.get('kept'), 'yes')
    assert.deepEqual(
      logs.filter((e) => e.level <= 4).map((e) => e.message),
      [
        `store: the setting changed (${join(config, 'smtpd.conf')}:1); the running store stays until qtsmtpd is restarted`,
        'dns: dns_servers or a dns_* setting changed; the running resolver stays until qtsmtpd is restarted',
      ],
    )
    await second.close()
    await services.close()
    await assert.rejects(second.provided.store?.get('kept') ?? Promise.resolve(), /closed/)
  })
})
