/**
 * definePlugin: a plugin is a typed factory. Its options are declared once and validated
 * at start-up; its hooks come from `setup`, which may be async (open a socket, read a file).
 *
 * @example
 *   export default definePlugin({
 *     name: 'rcpt/local-domains',
 *     options: { domains: opt.list({ positional: 0 }) },
 *     setup({ options }) {
 *       const hosted = new Set(options.domains.map((d) => d.toLowerCase()))
 *       return { hooks: { rcpt: async (_ctx, to) => (hosted.has(to.address.domain?.toLowerCase() ?? '') ? accept() : pass()) } }
 *     },
 *   })
 */
import type { Clock } from '../clock/index.ts'
import type { ListenerSelector } from '../config/listener-selector.ts'
import type { DnsResolver } from '../dns/index.ts'
import type { Metrics } from '../metrics/index.ts'
import type { Net } from '../net/index.ts'
import type { Store } from '../store/index.ts'
import type { ConfigView } from './config-view.ts'
import type { ServerInfo } from './context.ts'
import type { Hooks } from './hook-map.ts'
import type { LogFormat } from './log-json.ts'
import type { Logger } from './logger.ts'
import { checkOptions, type OptionSchema, type OptionsInput, type OptionsOf } from './options.ts'
import type { Paths } from './paths.ts'
import type { ServiceName } from './plugin-services.ts'
import type { Services } from './services.ts'

export type FailurePolicy = 'defer' | 'pass'

/**
 * What `setup` gets. `R` is the plugin's `requires`: a service named there is not `undefined`
 * in the types (the loader refused to start without it).
 */
export interface SetupApi<O, R extends ServiceName = never> {
  /** The instance name: the plugin's name, or `name:N` for a second instance. */
  readonly name: string
  readonly options: O
  readonly log: Logger
  /** qpsmtpd-style configuration files (`rcpthosts`, `flat_auth_pw`, ...). */
  readonly config: ConfigView
  /** `logFormat`: smtpd.conf `log_format`, the default of logging plugins that write lines. */
  readonly server: ServerInfo & { readonly spoolDir: string; readonly logFormat: LogFormat }
  /**
   * Where a path from the configuration points: `paths.resolve(options.path)` takes a relative
   * path from the directory holding the config directory, as the core does for `spool_dir`.
   */
  readonly paths: Paths
  /** Capabilities a plugin offers to the core (TLS settings, ...). */
  readonly services: Services
  /**
   * The process's DNS resolver (caching, deadlines, answers that tell NXDOMAIN from a failure);
   * `undefined` on a server without one (a test server given no `dns`) unless `requires` names it.
   */
  readonly dns: 'dns' extends R ? DnsResolver : DnsResolver | undefined
  /**
   * Shared state with TTLs and counters (SQLite, Redis, or memory in tests), seen through a
   * scope of this plugin's name: its keys cannot collide with another plugin's. `undefined` on a
   * server without one unless `requires` names it. It outlives reloads; do not close it.
   */
  readonly store: 'store' extends R ? Store : Store | undefined
  /**
   * The process's metrics registry: declare metrics here in setup, bind children to label
   * values, and only call the children in hooks. The same declaration after a reload returns
   * the same metric.
   */
  readonly metrics: Metrics
  /** The time and waiting (a fake one in tests): use it instead of Date.now() and setTimeout. */
  readonly clock: Clock
  /** Connections with deadlines, line-protocol clients and pools, child processes from an argv. */
  readonly net: Net
}

export interface PluginParts {
  readonly hooks: Hooks
  /** Called on shutdown and when a reloaded configuration replaces this one. */
  readonly close?: () => Promise<void> | void
  /** Reopen the files the plugin writes (SIGUSR1, after logrotate moved them). */
  readonly reopenLogs?: () => void
}

export interface PluginDefinition<S extends OptionSchema, R extends ServiceName = never> {
  /** `phase/name`, e.g. `rcpt/ok`. */
  readonly name: string
  /** Other names it loads under, e.g. qpsmtpd's `rcpt_ok`. */
  readonly aliases?: readonly string[]
  readonly description?: string
  readonly options: S
  /** Turns qpsmtpd's argument list into `key value` pairs when the plugin's syntax is special. */
  translateArgs?(args: readonly string[]): readonly string[]
  /** Per hook call; default 30 s. */
  readonly timeoutMs?: number
  /** What a thrown error or timeout means: `defer` (451 4.3.0, the default) or `pass`. */
  readonly onFailure?: FailurePolicy
  /**
   * Its `dataPost` hook may run at the same time as the `dataPost` hooks of the concurrent
   * plugins next to it in config/plugins (content scanners waiting for their daemons). Verdicts
   * are still taken in configuration order, and its header edits are made when its verdict is
   * taken, so the message comes out as if the plugins had run one after another. It may read
   * the message and edit headers; `msg.replaceBody` and envelope edits throw.
   */
  readonly concurrent?: boolean
  /**
   * Services the plugin cannot work without (`['dns', 'store']`): the server refuses to start
   * without them (`file:line` of the plugin's line), and `api.dns`, `api.store` are then not
   * `undefined` in the types.
   */
  readonly requires?: readonly R[]
  /**
   * Plugins whose results it reads, by name or alias (`['sender_permitted_from', 'dkim']` for
   * dmarc): each must be loaded, earlier in config/plugins, or the server refuses to start.
   */
  readonly after?: readonly string[]
  // Method syntax on purpose: a factory of any options type can then stand in a list of plugins.
  setup(api: SetupApi<OptionsOf<S>, R>): PluginParts | Promise<PluginParts>
}

/** A plugin chosen with its options, not yet set up. */
export interface PluginChoice {
  readonly definition: PluginDefinition<OptionSchema, ServiceName>
  readonly options: Readonly<Record<string, unknown>>
  readonly instance?: string | undefined
  /** The operator's deadline for this plugin's hook calls (smtpd.conf `plugin_timeout`). */
  readonly timeoutMs?: number | undefined
  /** Where the choice was made (config/plugins file and line), for error messages. */
  readonly source?: { readonly file: string; readonly line: number } | undefined
  /** The listeners whose sessions run the plugin (`[smtp]` in config/plugins); all when absent. */
  readonly listeners?: ListenerSelector | undefined
}

export interface PluginFactory<S extends OptionSchema> {
  (options?: OptionsInput<S>): PluginChoice
  readonly definition: PluginDefinition<S, ServiceName>
}

export function definePlugin<const S extends OptionSchema, const R extends ServiceName = never>(
  def: PluginDefinition<S, R>,
): PluginFactory<S> {
  const factory = (options?: OptionsInput<S>): PluginChoice => ({
    definition: def as unknown as PluginDefinition<OptionSchema, ServiceName>,
    options: checkOptions(def.options, options),
  })
  return Object.assign(factory, { definition: def as unknown as PluginDefinition<S, ServiceName> })
}

export const instanceName = (choice: PluginChoice): string =>
  choice.instance === undefined ? choice.definition.name : `${choice.definition.name}:${choice.instance}`
