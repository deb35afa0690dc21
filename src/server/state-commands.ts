/**
 * The commands that work on what the state plugins remember, beside a running server:
 * `qtsmtpd karma` (qpsmtpd's karma_tool) and `qtsmtpd import-greylist` / `import-karma`
 * (qpsmtpd's databases into the store). Each opens the store the plugin of that configuration
 * uses (its `db_dir`/`redis` arguments, else the `store` line of smtpd.conf, else the default
 * SQLite file in spool_dir) and returns the text to print.
 */
import { resolve } from 'node:path'
import { readDbmFile, readQpsmtpdRedis } from '../clients/qpsmtpd-db/index.ts'
import type { PluginChoice } from '../host/define-plugin.ts'
import { checkOptions } from '../host/options.ts'
import { type ImportCounts, importGreylist } from '../plugins/greylisting/import.ts'
import greylisting from '../plugins/greylisting/index.ts'
import { combine, parseLayer } from '../plugins/greylisting/settings.ts'
import {
  captureKarma,
  type KarmaEntry,
  type KarmaFilter,
  karmaTable,
  listKarma,
  releaseKarma,
  showKarma,
} from '../plugins/karma/admin.ts'
import { importKarma } from '../plugins/karma/import.ts'
import karma from '../plugins/karma/index.ts'
import { openStore, pluginStoreSetting, type Store } from '../store/index.ts'
import { type LoadedConfig, readConfigDir } from './load-config.ts'
import { ProcessServices } from './process-services.ts'

/** A command's arguments that make no sense: the caller prints the usage with it. */
export class StateUsageError extends Error {}

interface PluginState {
  /** The plugin's scope of the store it uses. */
  readonly store: Store
  readonly options: Readonly<Record<string, unknown>>
  readonly loaded: LoadedConfig
  close(): Promise<void>
}

/** The options of the plugin's line, or its defaults when the configuration does not load it. */
function optionsOf(
  loaded: LoadedConfig,
  factory: typeof karma | typeof greylisting,
): Readonly<Record<string, unknown>> {
  const choice: PluginChoice | undefined = loaded.plugins.find((c) => c.definition.name === factory.definition.name)
  return choice?.options ?? checkOptions(factory.definition.options, {})
}

async function pluginState(configDir: string, factory: typeof karma | typeof greylisting): Promise<PluginState> {
  const loaded = await readConfigDir(configDir)
  let options = optionsOf(loaded, factory)
  const name = factory.definition.name
  if (factory === greylisting) {
    const file = parseLayer(loaded.source.lines('denysoft_greylist') ?? [])
    options = { ...options, ...combine(file, options as Parameters<typeof combine>[0]) }
  }
  const at = (p: unknown) => (typeof p === 'string' ? resolve(loaded.baseDir, p) : undefined)
  const own = pluginStoreSetting({ db_dir: at(options.db_dir), redis: options.redis as string | undefined }, name)
  if (own !== undefined) {
    const store = await openStore(own, {
      origin: { file: `${name} ${options.redis === undefined ? 'db_dir' : 'redis'}` },
      baseDir: loaded.baseDir,
      stateDir: loaded.baseDir,
    })
    return { store: store.scope(name), options, loaded, close: () => store.close() }
  }
  const services = new ProcessServices({ warn: (m) => process.stderr.write(`qtsmtpd: ${m}\n`) })
  const { store } = (await services.forConfig(loaded)).services
  if (store === undefined) throw new Error('the configuration has no store')
  return { store: store.scope(name), options, loaded, close: () => services.close() }
}

const nowSeconds = () => Math.floor(Date.now() / 1000)

/** karma_tool's date: `Thu Jan  1 00:00`, local time. */
function karmaTime(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000)
  const day = d.toLocaleString('en-US', { weekday: 'short' })
  const month = d.toLocaleString('en-US', { month: 'short' })
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${day} ${month} ${String(d.getDate()).padStart(2, ' ')} ${pad(d.getHours())}:${pad(d.getMinutes())}`
}

/** `karma list`, `karma search naughty|nice|both|ADDRESS`, `karma capture ADDRESS`, `karma release ADDRESS`. */
export async function karmaCommand(configDir: string, words: readonly string[]): Promise<string> {
  const [command, arg, ...extra] = words
  if (command === undefined) throw new StateUsageError('karma: list, search, capture or release?')
  if (extra.length > 0) throw new StateUsageError(`karma ${command}: unexpected ${extra.join(' ')}`)
  const needsArg = command === 'search' || command === 'capture' || command === 'release'
  if (needsArg && arg === undefined) throw new StateUsageError(`karma ${command}: which address?`)
  if (!needsArg && command !== 'list') throw new StateUsageError(`karma: unknown command "${command}"`)
  if (command === 'list' && arg !== undefined) throw new StateUsageError('karma list takes no argument')
  const state = await pluginState(configDir, karma)
  try {
    const o = state.options as { penalty_days: number; history_days: number }
    const ttlMs = Math.round((o.penalty_days + o.history_days) * 86_400_000)
    const entries: KarmaEntry[] = []
    if (command === 'capture' || command === 'release') {
      const record =
        command === 'capture'
          ? await captureKarma(state.store, arg!, nowSeconds(), ttlMs)
          : await releaseKarma(state.store, arg!, ttlMs)
      entries.push({ address: arg!, record })
    } else if (command === 'search' && !['naughty', 'nice', 'both'].includes(arg!)) {
      entries.push(await showKarma(state.store, arg!))
    } else {
      for await (const e of listKarma(state.store, (arg ?? 'all') as KarmaFilter)) entries.push(e)
      entries.sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }))
    }
    return karmaTable(entries, karmaTime)
  } finally {
    await state.close()
  }
}

const describeCounts = (c: ImportCounts) =>
  `${c.imported} imported, ${c.existing} already there (kept), ${c.expired} expired, ${c.invalid} not understood`

/**
 * `import-greylist SOURCE` / `import-karma SOURCE`: SOURCE is qpsmtpd's DBM file
 * (greylist.dbm, karma.dbm) or the `redis://` URL of the Redis it used.
 */
export async function importCommand(what: 'greylist' | 'karma', configDir: string, source: string): Promise<string> {
  const entries = source.startsWith('redis://') ? readQpsmtpdRedis(source, what) : readDbmFile(source)
  if (what === 'greylist') {
    const state = await pluginState(configDir, greylisting)
    try {
      const o = state.options as { black_timeout: number; grey_timeout: number; white_timeout: number }
      const periods = { black: o.black_timeout, grey: o.grey_timeout, white: o.white_timeout }
      return `greylisting: ${describeCounts(await importGreylist(entries, state.store, periods, nowSeconds()))}\n`
    } finally {
      await state.close()
    }
  }
  const state = await pluginState(configDir, karma)
  try {
    const o = state.options as { penalty_days: number; history_days: number }
    const keeping = { penaltyDays: o.penalty_days, historyDays: o.history_days }
    return `karma: ${describeCounts(await importKarma(entries, state.store, keeping, nowSeconds()))}\n`
  } finally {
    await state.close()
  }
}
