/**
 * qpsmtpd's per-plugin database arguments, for the plugins that had them (greylisting, karma):
 * `db_dir DIR` keeps the plugin's data in an SQLite file in DIR, `redis HOST[:PORT]` (or a
 * `redis://` URL) in that Redis. Without either, the plugin uses the process's store (the
 * `store` line of smtpd.conf), which is what a new installation should do. The key layout is
 * the same either way (`<plugin>:...`), so moving between them is a copy.
 */
import { join } from 'node:path'
import { openStore } from './open.ts'
import type { Store } from './store.ts'

export interface PluginStoreArgs {
  readonly db_dir?: string | undefined
  readonly redis?: string | undefined
}

export interface PluginStoreOptions {
  /** The plugin's name: the file name in db_dir (`qtsmtpd-<name>.db`) and the messages. */
  readonly name: string
  /** What a relative db_dir is relative to. */
  readonly baseDir: string
  readonly now?: () => number
  readonly onWarning?: (message: string) => void
}

/** The store setting the arguments stand for, or undefined (use the process's store). */
export function pluginStoreSetting(args: PluginStoreArgs, name: string): string | undefined {
  if (args.db_dir !== undefined && args.redis !== undefined)
    throw new Error('give db_dir or redis, not both (where should the data live?)')
  if (args.redis !== undefined) return args.redis.includes('://') ? args.redis : `redis://${args.redis}`
  if (args.db_dir !== undefined) return `sqlite:${join(args.db_dir, `qtsmtpd-${safeFileName(name)}.db`)}`
  return undefined
}

/**
 * Opens the plugin's own store when its arguments ask for one; the caller closes it. Undefined
 * when they do not.
 */
export async function openPluginStore(args: PluginStoreArgs, opts: PluginStoreOptions): Promise<Store | undefined> {
  const setting = pluginStoreSetting(args, opts.name)
  if (setting === undefined) return undefined
  return openStore(setting, {
    origin: { file: `${opts.name} ${args.redis === undefined ? 'db_dir' : 'redis'}` },
    baseDir: opts.baseDir,
    stateDir: opts.baseDir,
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.onWarning === undefined ? {} : { onWarning: opts.onWarning }),
  })
}

const safeFileName = (name: string) => name.replace(/[^A-Za-z0-9_-]/g, '-')
