/**
 * A runtime is everything a configuration builds: set-up plugins, the hook runner, TLS
 * contexts and the session settings. The server holds one; a reload builds a new one and
 * swaps it for new connections, while open sessions finish on theirs.
 */

import { parseCidrList } from '../config/cidr-list.ts'
import type { ConfigLine, ConfigSnapshot } from '../config/config-dir.ts'
import { ConfigError, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { makeDirectories } from '../files/make-directories.ts'
import { type ConfigHook, createConfigView, type UserConfigHook } from '../host/config-view.ts'
import type { ListenerInfo, ServerInfo } from '../host/context.ts'
import type { PluginChoice } from '../host/define-plugin.ts'
import { ListenerChains, listenerSelectorProblems } from '../host/listener-chains.ts'
import { setupPlugins } from '../host/loader.ts'
import { jsonStderrWriter, type LogFormat } from '../host/log-json.ts'
import {
  createLogger,
  type LogEntry,
  type Logger,
  type LogLevel,
  LogLevels,
  type LogWriter,
  stderrWriter,
} from '../host/logger.ts'
import { pathsFrom } from '../host/paths.ts'
import { type OptionalService, type ProvidedServices, type ServiceSet, withDefaults } from '../host/plugin-services.ts'
import type { HookRunner, RegisteredPlugin } from '../host/runner.ts'
import { emptyServices, type Services } from '../host/services.ts'
import type { CidrList } from '../net/cidr.ts'
import { type AuthShared, openAuthShared } from '../session/auth/shared.ts'
import type { SessionSettings } from '../session/settings.ts'
import { createTlsContextProvider, type TlsContextProvider } from '../session/tls.ts'
import { version } from '../version.ts'

export interface RuntimeOptions {
  readonly settings: SessionSettings
  readonly plugins: readonly PluginChoice[]
  readonly config: ConfigSource
  readonly logLevel: LogLevel
  /** smtpd.conf `log_format`: of the stderr output, and the default of logging plugins. Default text. */
  readonly logFormat?: LogFormat | undefined
  /**
   * Relative paths in plugin arguments are taken from here: the directory holding the config
   * directory (LoadedConfig.baseDir). Default: the working directory, for runtimes built in code.
   */
  readonly baseDir?: string | undefined
  /**
   * What plugins get as api.dns, api.store, api.metrics, ...: the process's (a reload hands the
   * new runtime the same ones) or a test's fakes. Missing: no DNS, no store, a metrics registry
   * of its own, the system clock and network.
   */
  readonly services?: ServiceSet | undefined
  /** Why `dns` or `store` is absent, for the error of a plugin that requires it. */
  readonly absentServices?: { readonly [K in OptionalService]?: string } | undefined
  /** Where log entries go when no logging plugin is loaded; stderr by default. */
  readonly logWriter?: LogWriter
  /**
   * Built only to find set-up problems of a configuration already known to be broken: nothing
   * is logged, not even to logging plugins (a failed start must not write "no queue plugin" to
   * the log file because the queue line was the broken one).
   */
  readonly silent?: boolean
  /**
   * The listeners this runtime serves: the listener selectors of config/plugins (`[smtp:25]`)
   * are checked against their names. Absent (a runtime built in code), names are not checked.
   */
  readonly listeners?: readonly ListenerInfo[] | undefined
}

/** Who may speak for other clients (config files `proxy_trusted`, `xclient_trusted`). */
export interface Trust {
  /** Peers that must send a PROXY protocol header (HAProxy, a cloud load balancer). */
  readonly proxy: CidrList
  /** Peers allowed XCLIENT and XFORWARD (Postfix, another qtsmtpd/qpsmtpd). */
  readonly xclient: CidrList
}

export interface Runtime {
  readonly settings: SessionSettings
  readonly trust: Trust
  /** Every plugin; the chain of a session is `runnerFor(its listener)`. */
  readonly runner: HookRunner
  /** The plugins a listener's sessions run: those whose selector takes it (host/listener-chains.ts). */
  runnerFor(listener: ListenerInfo): HookRunner
  readonly services: Services
  /** What the plugins were given (dns, store, metrics, clock, net). */
  readonly provided: ProvidedServices
  readonly tlsContexts: TlsContextProvider | undefined
  /** What the AUTH exchanges of all sessions share (session/auth/shared.ts). */
  readonly auth: AuthShared
  readonly server: ServerInfo
  readonly log: Logger
  /**
   * Warnings and errors logged while the runtime was built (set-up problems, a configuration
   * that will refuse all mail), whatever the log level and wherever logging plugins send them:
   * `--check` prints them on stderr.
   */
  readonly startupWarnings: readonly LogEntry[]
  close(): Promise<void>
  /** Reopens every log file the plugins write (SIGUSR1, after logrotate moved them). */
  reopenLogs(): void
  /** The configuration files' keys this runtime was built from (set when built from a directory). */
  readonly configSnapshot?: () => ConfigSnapshot
}

const authHooks = [
  'auth',
  'authPlain',
  'authLogin',
  'authCramMd5',
  'authPassword',
  'authScram',
  'authToken',
  'authSasl',
] as const

/** A spool directory that cannot be made, at the spool_dir line when the config has one. */
function spoolDirError(source: ConfigSource, dir: string, e: Error): ConfigError {
  let at: ConfigLine | undefined
  try {
    at = source.lines('spool_dir')?.[0]
  } catch {}
  if (at === undefined) return new ConfigError('SMTPD_ERR_SPOOL_DIR', dir, undefined, `spool directory: ${e.message}`)
  return new ConfigError('SMTPD_ERR_SPOOL_DIR', at.file, at.line, `spool_dir: ${e.message}`)
}

export async function buildRuntime(opts: RuntimeOptions): Promise<Runtime> {
  const trust: Trust = {
    proxy: parseCidrList(opts.config.lines('proxy_trusted') ?? []),
    xclient: parseCidrList(opts.config.lines('xclient_trusted') ?? []),
  }
  const logFormat = opts.logFormat ?? 'text'
  const fallback = opts.logWriter ?? (logFormat === 'json' ? jsonStderrWriter : stderrWriter)
  const loggingPlugins: RegisteredPlugin[] = []
  let starting = true
  const startupWarnings: LogEntry[] = []
  const writer: LogWriter = (entry: LogEntry) => {
    if (starting && entry.level <= LogLevels.warn) startupWarnings.push(entry)
    if (opts.silent) return
    if (loggingPlugins.length === 0) {
      if (entry.level <= opts.logLevel) fallback(entry)
      return
    }
    for (const p of loggingPlugins) {
      try {
        p.hooks.logging?.(entry)
      } catch {
        fallback(entry)
      }
    }
  }
  // Logging plugins filter by their own level (qpsmtpd), so they see every entry; the core's
  // level then only governs the stderr fallback. While starting, warnings are always kept.
  const log = createLogger(writer, () =>
    loggingPlugins.length > 0 ? 7 : starting ? (Math.max(opts.logLevel, LogLevels.warn) as LogLevel) : opts.logLevel,
  )
  const registered: RegisteredPlugin[] = []
  const configHooks = (): ConfigHook[] =>
    registered.flatMap((p) => (p.hooks.config === undefined ? [] : [p.hooks.config]))
  const userConfigHooks = (): UserConfigHook[] =>
    registered.flatMap((p) => (p.hooks.userConfig === undefined ? [] : [p.hooks.userConfig]))
  const config = createConfigView(opts.config, configHooks, userConfigHooks, log.child({ plugin: 'config' }))
  const server: ServerInfo = { me: opts.settings.me, version }
  const services = emptyServices()
  const provided = withDefaults(opts.services)
  const spoolProblem = await makeDirectories(opts.settings.spoolDir, 0o700).then(
    () => undefined,
    (e: Error) => spoolDirError(opts.config, opts.settings.spoolDir, e),
  )
  // The plugins are set up even without a spool directory, so that one start reports all problems.
  const setUp = await setupPlugins(opts.plugins, {
    log,
    config,
    server: { ...server, spoolDir: opts.settings.spoolDir, logFormat },
    paths: pathsFrom(opts.baseDir ?? process.cwd()),
    services,
    provided,
    absentServices: opts.absentServices,
    // A logging plugin takes entries from the moment it is set up: config/logging loads first, so
    // the other plugins' set-up lines reach the log file, not stderr.
    onSetUp: (p) => {
      registered.push(p)
      if (p.hooks.logging !== undefined) loggingPlugins.push(p)
    },
  }).catch((e: unknown) => {
    throw spoolProblem === undefined ? e : combineConfigErrors([spoolProblem, ...(configErrorsIn(e) ?? [])])
  })
  if (spoolProblem !== undefined) {
    await setUp.close()
    throw spoolProblem
  }
  const selectorProblems = listenerSelectorProblems(setUp.plugins, opts.listeners)
  if (selectorProblems.length > 0) {
    await setUp.close()
    throw combineConfigErrors(selectorProblems)
  }
  const chains = new ListenerChains(setUp.plugins, provided.metrics)
  const runner = chains.all
  const missing = (hook: 'rcpt' | 'queue', warning: string) => {
    const without = listenersWithout(hook, chains, opts.listeners)
    if (without === 'all') log.warn(warning)
    else if (without.length > 0)
      log.warn(`${without.length === 1 ? 'listener' : 'listeners'} ${without.join(', ')}: ${warning}`)
  }
  missing('rcpt', 'no plugin decides on recipients: every RCPT will be refused (add rcpt_ok)')
  missing('queue', 'no queue plugin: every message will get 451 (add queue/maildir or another)')
  const authPlugins = setUp.plugins.filter((p) => authHooks.some((h) => p.hooks[h] !== undefined)).map((p) => p.name)
  if (authPlugins.length > 0 && opts.settings.policies.authRequiresTls && services.tls === undefined)
    log.warn(
      `AUTH is never offered: ${authPlugins.join(', ')} would answer it, but tls_before_auth is on (the default) ` +
        'and no tls plugin is loaded, so no session is encrypted; load the tls plugin, ' +
        'or set tls_before_auth 0 to allow AUTH without TLS',
    )
  const tlsContexts = services.tls === undefined ? undefined : createTlsContextProvider(services.tls)
  const auth = await openAuthShared(provided.store, log)
  starting = false
  return {
    settings: opts.settings,
    trust,
    runner,
    runnerFor: (listener) => chains.runnerFor(listener),
    services,
    provided,
    tlsContexts,
    auth,
    server,
    log,
    startupWarnings,
    close: setUp.close,
    reopenLogs: () => {
      for (const p of setUp.plugins) p.reopenLogs?.()
    },
  }
}

/** The names of the listeners whose chain lacks the hook: 'all' when every chain does. */
function listenersWithout(
  hook: 'rcpt' | 'queue',
  chains: ListenerChains,
  listeners: readonly ListenerInfo[] | undefined,
): 'all' | string[] {
  if (!chains.all.has(hook)) return 'all'
  const names = (listeners ?? []).filter((l) => !chains.runnerFor(l).has(hook)).map((l) => l.name)
  return [...new Set(names)]
}
