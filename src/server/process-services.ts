/**
 * The services that belong to the process, not to one configuration: the store (its SQLite
 * handle or Redis connections), the DNS resolver (its sockets and cache), the metrics registry,
 * the clock and the network. They are opened once, from the configuration of the first start;
 * every runtime built after (each reload) gets the same ones, and the process closes them at exit.
 *
 * A reload that changes what they were opened from (the `store` line, `dns_servers`, a `dns_*`
 * setting) is checked like any other line, and if valid takes effect at the next restart: the
 * running store and resolver stay, and the reload logs a warning saying so. Swapping a store
 * under sessions that are using it, or a resolver with queries in flight, is what this avoids.
 */

import { join } from 'node:path'
import { type AdminSettings, readAdminSettings } from '../admin/settings.ts'
import { systemClock } from '../clock/index.ts'
import type { ConfigLine } from '../config/config-dir.ts'
import { ConfigError, collecting, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { createDnsService, type DnsService, readDnsServers, readDnsSettings } from '../dns/index.ts'
import { makeDirectories } from '../files/make-directories.ts'
import type { ServiceSet } from '../host/plugin-services.ts'
import { defaultMaxSeries, type MemoryMetrics, type MetricSnapshot, memoryMetrics } from '../metrics/index.ts'
import { systemNet } from '../net/index.ts'
import { borrowedStore, openStore, parseStoreSpec, type Store, StoreSpecError } from '../store/index.ts'
import type { LoadedConfig } from './load-config.ts'
import { dnsSnapshot, meteredStore } from './process-metrics.ts'

/** What the services were opened from, to tell whether a reload asks for others. */
interface Basis {
  readonly store: string | undefined
  readonly dns: string
  readonly maxSeries: number
  readonly admin: string
}

interface Opened {
  readonly basis: Basis
  readonly store: Store
  readonly dns: DnsService
  readonly metrics: MemoryMetrics
  readonly admin: AdminSettings
}

export interface ServicesForConfig {
  /** For RuntimeOptions.services; the store is borrowed (a runtime cannot close it). */
  readonly services: ServiceSet
  /** Settings of this configuration that the running services do not follow until a restart. */
  readonly warnings: readonly string[]
}

export interface ProcessServiceOptions {
  /** Store outages and recoveries, for the log of the runtime in use at the time. */
  readonly warn: (message: string) => void
}

export class ProcessServices {
  readonly #warn: (message: string) => void
  #opened: Opened | undefined
  #closed = false

  constructor(opts: ProcessServiceOptions) {
    this.#warn = opts.warn
  }

  /** The registry every runtime records into; undefined before the first configuration. */
  get metrics(): MemoryMetrics | undefined {
    return this.#opened?.metrics
  }

  /** The admin listener's settings of the first configuration. */
  get admin(): AdminSettings | undefined {
    return this.#opened?.admin
  }

  /** Every metric of the process: the registry's and the resolver's counters. */
  snapshot(): MetricSnapshot[] {
    const opened = this.#opened
    if (opened === undefined) return []
    return [...opened.metrics.snapshot(), ...dnsSnapshot(opened.dns.stats())]
  }

  /**
   * The services for a configuration: opened from it the first time, the running ones after.
   * Throws the configuration's errors about them (ConfigError or ConfigErrors), each at its line.
   */
  async forConfig(loaded: LoadedConfig): Promise<ServicesForConfig> {
    if (this.#closed) throw new Error('the process services are closed')
    const problems: ConfigError[] = []
    const setting = collecting(problems, () => storeSetting(loaded.source))
    const dnsSettings = collecting(problems, () => JSON.stringify(readDnsSettings(loaded.source)))
    const dnsServers = collecting(problems, () => JSON.stringify(readDnsServers(loaded.source)))
    if (setting !== undefined) collecting(problems, () => checkStoreSpec(setting, loaded.baseDir))
    const maxSeries = collecting(problems, () => metricsMaxSeries(loaded.source))
    const admin = collecting(problems, () => readAdminSettings(loaded.source.lines('smtpd.conf') ?? []))
    if (problems.length > 0 || admin === undefined) throw combineConfigErrors(problems)
    const basis: Basis = {
      store: setting?.text,
      dns: `${dnsSettings} ${dnsServers}`,
      maxSeries: maxSeries ?? defaultMaxSeries,
      admin: JSON.stringify(admin),
    }
    const running = this.#opened
    const opened = running ?? (this.#opened = await this.#open(loaded, setting, basis, admin))
    const warnings: string[] = []
    if (running !== undefined && basis.store !== running.basis.store)
      warnings.push(
        `store: the setting changed (${setting === undefined ? 'now the default' : `${setting.file}:${setting.line}`}); ` +
          'the running store stays until qtsmtpd is restarted',
      )
    if (running !== undefined && basis.dns !== running.basis.dns)
      warnings.push(
        'dns: dns_servers or a dns_* setting changed; the running resolver stays until qtsmtpd is restarted',
      )
    if (running !== undefined && basis.maxSeries !== running.basis.maxSeries)
      warnings.push(
        'metrics_max_series changed; the running metrics registry keeps its limit until qtsmtpd is restarted',
      )
    if (running !== undefined && basis.admin !== running.basis.admin)
      warnings.push('an admin_* setting changed; the admin listener keeps the running ones until qtsmtpd is restarted')
    return {
      services: {
        store: borrowedStore(opened.store),
        dns: opened.dns,
        metrics: opened.metrics,
        clock: systemClock,
        net: systemNet,
      },
      warnings,
    }
  }

  async #open(
    loaded: LoadedConfig,
    setting: StoreLine | undefined,
    basis: Basis,
    admin: AdminSettings,
  ): Promise<Opened> {
    const dns = createDnsService(loaded.source)
    const metrics = memoryMetrics({ maxSeries: basis.maxSeries, onWarning: (m) => this.#warn(m) })
    try {
      // The default store file lives in the spool directory, which may not exist yet.
      if (setting === undefined) await makeDirectories(loaded.settings.spoolDir, 0o700)
      const store = await openStore(setting?.value, {
        origin: setting ?? { file: join(loaded.dir, 'smtpd.conf') },
        baseDir: loaded.baseDir,
        stateDir: loaded.settings.spoolDir,
        onWarning: (m) => this.#warn(m),
      })
      const backend = setting === undefined ? 'sqlite' : (/^(memory|sqlite|redis)/.exec(setting.value)?.[1] ?? 'other')
      return { basis, store: meteredStore(store, metrics, backend), dns, metrics, admin }
    } catch (e) {
      throw asConfigError(e, setting, loaded)
    }
  }

  /** At exit, after the last runtime has closed. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#opened?.store.close()
  }
}

/** `metrics_max_series N` in smtpd.conf: label combinations one metric keeps. */
function metricsMaxSeries(source: ConfigSource): number | undefined {
  let value: number | undefined
  for (const line of source.lines('smtpd.conf') ?? []) {
    const m = /^metrics_max_series\s+(.+)$/.exec(line.text)
    if (!m) continue
    const n = /^\d{1,9}$/.test(m[1] ?? '') ? Number(m[1]) : 0
    if (n < 1)
      throw new ConfigError(
        'SMTPD_ERR_CONFIG_VALUE',
        line.file,
        line.line,
        `metrics_max_series: expected a whole number from 1, got "${m[1]}"`,
      )
    value = n
  }
  return value
}

interface StoreLine extends ConfigLine {
  /** What follows `store`. */
  readonly value: string
}

/** The `store` line of smtpd.conf; a second one is an error. */
function storeSetting(source: ConfigSource): StoreLine | undefined {
  let found: StoreLine | undefined
  for (const line of source.lines('smtpd.conf') ?? []) {
    const m = /^store\s+(.+)$/.exec(line.text)
    if (!m) continue
    if (found !== undefined)
      throw new ConfigError(
        'SMTPD_ERR_CONFIG_VALUE',
        line.file,
        line.line,
        `store is set twice (first at ${found.file}:${found.line})`,
      )
    found = { ...line, value: m[1] ?? '' }
  }
  return found
}

function checkStoreSpec(setting: StoreLine, baseDir: string): void {
  try {
    parseStoreSpec(setting.value, setting, baseDir)
  } catch (e) {
    if (e instanceof StoreSpecError) throw new ConfigError(e.code, e.file, e.line, e.text)
    throw e
  }
}

/** A store that cannot be opened (a file SQLite refuses, a directory that cannot be made), at its line. */
function asConfigError(e: unknown, setting: StoreLine | undefined, loaded: LoadedConfig): ConfigError {
  if (e instanceof StoreSpecError) return new ConfigError(e.code, e.file, e.line, e.text)
  return (
    configErrorsIn(e)?.[0] ??
    new ConfigError(
      'SMTPD_ERR_CONFIG_VALUE',
      setting?.file ?? join(loaded.dir, 'smtpd.conf'),
      setting?.line,
      `store: ${(e as Error).message}`,
    )
  )
}
