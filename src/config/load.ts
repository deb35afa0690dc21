/**
 * Reads a qpsmtpd-layout configuration directory into what a runtime needs: session
 * settings, the chosen plugins with validated options, and the config source plugins read.
 * Any problem is a ConfigError naming the file and line.
 */
import { dirname } from 'node:path'
import type { ConfigSource } from '../host/config-view.ts'
import type { PluginChoice } from '../host/define-plugin.ts'
import { choosePlugins, PluginCatalog } from '../host/loader.ts'
import type { LogLevel } from '../host/logger.ts'
import { builtinPlugins } from '../plugins/index.ts'
import type { SessionSettings } from '../session/settings.ts'
import { ConfigDir } from './config-dir.ts'
import { ConfigError } from './config-error.ts'
import { readCoreSettings } from './core-settings.ts'
import { parsePluginList } from './plugin-list.ts'

export interface LoadedConfig {
  readonly dir: string
  /** The directory holding `dir`: relative paths in config files and plugin arguments start here. */
  readonly baseDir: string
  readonly settings: SessionSettings
  readonly plugins: readonly PluginChoice[]
  readonly source: ConfigSource
  readonly logLevel: LogLevel
  readonly pluginDirs: readonly string[]
  /** Files read, for diagnostics. */
  readonly files: readonly string[]
}

export interface ReadConfigOptions {
  /** Fallback directories (e.g. qmail's /var/qmail/control) searched after the main one. */
  readonly fallbackDirs?: readonly string[]
  readonly catalog?: PluginCatalog
}

export async function readConfigDir(dir: string, opts: ReadConfigOptions = {}): Promise<LoadedConfig> {
  const config = await ConfigDir.open([dir, ...(opts.fallbackDirs ?? [])])
  const source: ConfigSource = { lines: (key) => config.lines(key), path: (key) => config.path(key) }
  // Relative paths in config files are relative to the directory holding the config dir,
  // as qpsmtpd resolves them against its install directory.
  const baseDir = dirname(config.dirs[0] ?? dir)
  const core = readCoreSettings(source, { baseDir })
  const pluginLines = config.lines('plugins')
  if (pluginLines === undefined)
    throw new ConfigError('SMTPD_ERR_CONFIG_PLUGINS', `${config.dirs[0]}/plugins`, undefined, 'no plugins file')
  const catalog = opts.catalog ?? new PluginCatalog(builtinPlugins)
  // qpsmtpd lists logging plugins in their own file; they load first so they see set-up logs.
  const loggingLines = config.lines('logging') ?? []
  const plugins = await choosePlugins(
    parsePluginList([...loggingLines, ...pluginLines]),
    catalog,
    core.pluginDirs,
    core.pluginTimeouts,
  )
  return {
    dir: config.dirs[0] ?? dir,
    baseDir,
    settings: core.session,
    plugins,
    source,
    logLevel: core.logLevel,
    pluginDirs: core.pluginDirs,
    files: config.files(),
  }
}
