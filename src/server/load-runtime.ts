/**
 * A runtime from a configuration directory, with every problem reported in one start: those
 * of the directory itself (bad lines, unknown plugins, bad options, the store and DNS settings)
 * and the set-up failures of the plugins that could be chosen. A runtime is returned only when
 * there are none; otherwise whatever was set up is closed and the problems are thrown together
 * (ConfigErrors).
 */
import type { ConfigSnapshot } from '../config/config-dir.ts'
import { ConfigError, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import type { ListenerInfo } from '../host/context.ts'
import { createLogger, type Logger, type LogWriter, stderrWriter } from '../host/logger.ts'
import { inspectConfigDir } from './load-config.ts'
import { ProcessServices, type ServicesForConfig } from './process-services.ts'
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
  /**
   * The process's services (store, DNS resolver, metrics): the runtime uses them and leaves
   * them open, so that a reload keeps them. Absent, it opens its own from the configuration and
   * closes them with itself (--check, --stdio, tests).
   */
  readonly services?: ProcessServices | undefined
}

const absentAfterErrors = {
  dns: 'its settings have errors (see the other errors)',
  store: 'its setting has errors (see the other errors)',
}

export async function runtimeFromConfigDir(dir: string, opts: LoadRuntimeOptions = {}): Promise<Runtime> {
  let log: Logger | undefined
  const own =
    opts.services === undefined
      ? new ProcessServices({
          warn: (m) => (log ?? createLogger(opts.logWriter ?? stderrWriter, 4)).warn(m),
        })
      : undefined
  const services = opts.services ?? (own as ProcessServices)
  const { loaded, problems } = await inspectConfigDir(dir, {
    fallbackDirs: opts.fallbackDirs ?? [],
    snapshot: opts.snapshot,
  })
  const all = [...problems]
  if (loaded !== undefined) {
    let provided: ServicesForConfig | undefined
    try {
      provided = await services.forConfig(loaded)
    } catch (e) {
      all.push(...(configErrorsIn(e) ?? [new ConfigError('SMTPD_ERR_CONFIG', loaded.dir, undefined, String(e))]))
    }
    try {
      const runtime = await buildRuntime({
        settings: loaded.settings,
        plugins: loaded.plugins,
        config: loaded.source,
        logLevel: loaded.logLevel,
        baseDir: loaded.baseDir,
        silent: all.length > 0,
        listeners: opts.listeners,
        services: provided?.services,
        absentServices: provided === undefined ? absentAfterErrors : undefined,
        ...(opts.logWriter === undefined ? {} : { logWriter: opts.logWriter }),
      })
      if (all.length === 0) {
        log = runtime.log
        for (const warning of provided?.warnings ?? []) runtime.log.warn(warning)
        const close =
          own === undefined
            ? runtime.close
            : async () => {
                await runtime.close()
                await own.close()
              }
        return { ...runtime, close, configSnapshot: loaded.snapshot }
      }
      await runtime.close()
    } catch (e) {
      all.push(...(configErrorsIn(e) ?? [new ConfigError('SMTPD_ERR_CONFIG', loaded.dir, undefined, String(e))]))
    }
  }
  await own?.close()
  throw combineConfigErrors(all)
}
