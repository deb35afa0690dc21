/**
 * openStore: from the operator's `store` setting to a Store, for the composition root. The
 * store holds connections, so it belongs to the process: open it once at start, hand it to
 * every runtime, keep it across reloads, close it at exit.
 */
import { join } from 'node:path'
import { memoryStore } from './memory.ts'
import { redisStore } from './redis.ts'
import { defaultStoreFile, parseStoreSpec, type SpecOrigin, type StoreSpec, StoreSpecError } from './spec.ts'
import { sqliteStore } from './sqlite.ts'
import type { Store } from './store.ts'

export interface OpenStoreOptions {
  /** Where the setting was read, for errors (`smtpd.conf:3: ...`). */
  readonly origin: SpecOrigin
  /** What a relative `sqlite:` path is relative to (the configuration's base directory). */
  readonly baseDir: string
  /** Where the default store file goes when there is no setting (the spool or state dir). */
  readonly stateDir: string
  /** Outages, recoveries, a corrupt file moved aside, evictions: for the log. */
  readonly onWarning?: (message: string) => void
  /** The clock (tests). */
  readonly now?: () => number
}

/**
 * @param setting what follows `store` in smtpd.conf; undefined: the default, an SQLite file
 *   `qtsmtpd-state.db` in `stateDir`.
 * @example
 * const store = await openStore(settings.get('store'), { origin: { file: 'config/smtpd.conf', line: 7 },
 *   baseDir: '/etc/qtsmtpd', stateDir: '/var/spool/qtsmtpd', onWarning: (m) => log.warn(m) })
 */
export async function openStore(setting: string | undefined, opts: OpenStoreOptions): Promise<Store> {
  const spec =
    setting === undefined
      ? parseStoreSpec(`sqlite:${join(opts.stateDir, defaultStoreFile)}`, opts.origin, opts.baseDir)
      : parseStoreSpec(setting, opts.origin, opts.baseDir)
  try {
    return await openSpec(spec, opts)
  } catch (e) {
    throw new StoreSpecError(opts.origin, `store: ${(e as Error).message}`, { cause: e })
  }
}

async function openSpec(spec: StoreSpec, opts: OpenStoreOptions): Promise<Store> {
  const common = {
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.onWarning === undefined ? {} : { onWarning: opts.onWarning }),
  }
  switch (spec.kind) {
    case 'memory':
      return memoryStore(common)
    case 'sqlite':
      return sqliteStore({ ...spec, ...common })
    case 'redis':
      return redisStore(spec, common)
  }
}
