/**
 * Reads a qpsmtpd-layout configuration directory into what a runtime needs: session
 * settings, the chosen plugins with validated options, and the config source plugins read.
 * Every problem is a ConfigError naming the file and line, and all of them are reported at
 * once (ConfigErrors), so that an operator fixes a configuration in one round.
 */
import { dirname } from 'node:path'
import { ConfigDir, type ConfigSnapshot } from '../config/config-dir.ts'
import { ConfigError, collecting, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { parsePluginLine } from '../config/plugin-list.ts'
import type { PluginChoice } from '../host/define-plugin.ts'
import { choosePlugins, PluginCatalog } from '../host/loader.ts'
import type { LogFormat } from '../host/log-json.ts'
import type { LogLevel } from '../host/logger.ts'
import { builtinPlugins } from '../plugins/index.ts'
import type { SessionSettings } from '../session/settings.ts'
import { readCoreSettingsCollecting } from './core-settings.ts'

export interface LoadedConfig {
  readonly dir: string
  /** The directory holding `dir`: relative paths in config files and plugin arguments start here. */
  readonly baseDir: string
  readonly settings: SessionSettings
  readonly plugins: readonly PluginChoice[]
  readonly source: ConfigSource
  readonly logLevel: LogLevel
  readonly logFormat: LogFormat
  readonly pluginDirs: readonly string[]
  /** Files read, for diagnostics. */
  readonly files: readonly string[]
  /** Every key read so far, plugin set-up included: what `ReadConfigOptions.snapshot` takes. */
  snapshot(): ConfigSnapshot
}

export interface ReadConfigOptions {
  /** Fallback directories (e.g. qmail's /var/qmail/control) searched after the main one. */
  readonly fallbackDirs?: readonly string[]
  readonly catalog?: PluginCatalog
  /** Keys read before (LoadedConfig.snapshot): answered from it instead of the files. */
  readonly snapshot?: ConfigSnapshot | undefined
}

/** Reads the directory; every problem found is thrown at once (ConfigErrors when several). */
export async function readConfigDir(dir: string, opts: ReadConfigOptions = {}): Promise<LoadedConfig> {
  const { loaded, problems } = await inspectConfigDir(dir, opts)
  if (problems.length > 0 || loaded === undefined) throw combineConfigErrors(problems)
  return loaded
}

export interface InspectedConfig {
  /**
   * The configuration without its broken parts (bad lines keep their defaults, plugins that
   * cannot be chosen are left out), so that their set-up can be checked too; undefined when
   * nothing can be read (no directory, no plugins file).
   */
  readonly loaded: LoadedConfig | undefined
  /** Every problem found, in file order; the configuration is usable only when this is empty. */
  readonly problems: readonly ConfigError[]
}

/** As readConfigDir, but it goes on past problems and returns them with what could be read. */
export async function inspectConfigDir(dir: string, opts: ReadConfigOptions = {}): Promise<InspectedConfig> {
  const problems: ConfigError[] = []
  let config: ConfigDir
  try {
    config = await ConfigDir.open([dir, ...(opts.fallbackDirs ?? [])], opts.snapshot)
  } catch (e) {
    return { loaded: undefined, problems: [...(configErrorsIn(e) ?? [asConfigError(e, dir)])] }
  }
  const source: ConfigSource = {
    lines: (key) => config.lines(key),
    path: (key) => config.path(key),
    reread: (key) => config.reread(key),
  }
  // Relative paths in config files are relative to the directory holding the config dir,
  // as qpsmtpd resolves them against its install directory.
  const baseDir = dirname(config.dirs[0] ?? dir)
  const core = readCoreSettingsCollecting(source, { baseDir }, problems)
  const read = (key: string) => collecting(problems, () => config.linesCollecting(key, problems))
  const pluginLines = read('plugins')
  if (pluginLines === undefined) {
    if (config.path('plugins') === undefined)
      problems.push(
        new ConfigError('SMTPD_ERR_CONFIG_PLUGINS', `${config.dirs[0]}/plugins`, undefined, 'no plugins file'),
      )
    return { loaded: undefined, problems }
  }
  const catalog = opts.catalog ?? new PluginCatalog(builtinPlugins)
  // qpsmtpd lists logging plugins in their own file; they load first so they see set-up logs.
  const loggingLines = read('logging') ?? []
  const lines = [...loggingLines, ...pluginLines].flatMap((l) => collecting(problems, () => parsePluginLine(l)) ?? [])
  const chosen = await choosePlugins(lines, catalog, core.pluginDirs, core.pluginTimeouts)
  problems.push(...chosen.problems)
  const loaded: LoadedConfig = {
    dir: config.dirs[0] ?? dir,
    baseDir,
    settings: core.session,
    plugins: chosen.choices,
    source,
    logLevel: core.logLevel,
    logFormat: core.logFormat,
    pluginDirs: core.pluginDirs,
    files: config.files(),
    snapshot: () => config.snapshot(),
  }
  return { loaded, problems }
}

function asConfigError(e: unknown, where: string): ConfigError {
  return new ConfigError('SMTPD_ERR_CONFIG_READ', where, undefined, (e as Error).message)
}
