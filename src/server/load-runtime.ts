/**
 * A runtime from a configuration directory, with every problem reported in one start: those
 * of the directory itself (bad lines, unknown plugins, bad options) and the set-up failures of
 * the plugins that could be chosen. A runtime is returned only when there are none; otherwise
 * whatever was set up is closed and the problems are thrown together (ConfigErrors).
 */
import type { ConfigSnapshot } from '../config/config-dir.ts'
import { ConfigError, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import { inspectConfigDir } from '../config/load.ts'
import type { ListenerInfo } from '../host/context.ts'
import type { LogWriter } from '../host/logger.ts'
import { buildRuntime, type Runtime } from './runtime.ts'

export interface LoadRuntimeOptions {
  /** Fallback directories (qmail's control directory) searched after the main one. */
  readonly fallbackDirs?: readonly string[]
  /** Where entries go when no logging plugin is loaded (stderr by default). */
  readonly logWriter?: LogWriter | undefined
  /** Keys read by an earlier load (Runtime.configSnapshot): answered from it, not the files. */
  readonly snapshot?: ConfigSnapshot | undefined
  /** The listeners it will serve, for the listener selectors of config/plugins. */
  readonly listeners?: readonly ListenerInfo[] | undefined
}

export async function runtimeFromConfigDir(dir: string, opts: LoadRuntimeOptions = {}): Promise<Runtime> {
  const { loaded, problems } = await inspectConfigDir(dir, {
    fallbackDirs: opts.fallbackDirs ?? [],
    snapshot: opts.snapshot,
  })
  const all = [...problems]
  if (loaded !== undefined) {
    try {
      const runtime = await buildRuntime({
        settings: loaded.settings,
        plugins: loaded.plugins,
        config: loaded.source,
        logLevel: loaded.logLevel,
        logFormat: loaded.logFormat,
        baseDir: loaded.baseDir,
        silent: all.length > 0,
        listeners: opts.listeners,
        ...(opts.logWriter === undefined ? {} : { logWriter: opts.logWriter }),
      })
      if (all.length === 0) return { ...runtime, configSnapshot: loaded.snapshot }
      await runtime.close()
    } catch (e) {
      all.push(...(configErrorsIn(e) ?? [new ConfigError('SMTPD_ERR_CONFIG', loaded.dir, undefined, String(e))]))
    }
  }
  throw combineConfigErrors(all)
}
