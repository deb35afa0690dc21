/**
 * Turns `config/plugins` lines into set-up plugins. A name is looked up among the built-in
 * plugins (by name and qpsmtpd alias), then as a `.ts`/`.js` file in the plugin
 * directories, then as an npm package. Unknown plugins and bad options stop the start with
 * the file and line.
 */
import { existsSync } from 'node:fs'
import { isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ConfigError, combineConfigErrors, configErrorsIn } from '../config/config-error.ts'
import type { PluginLine } from '../config/plugin-list.ts'
import { explainUnknownPlugin } from '../config/qpsmtpd-plugins.ts'
import type { ConfigView } from './config-view.ts'
import type { ServerInfo } from './context.ts'
import { instanceName, type PluginChoice, type PluginFactory, type SetupApi } from './define-plugin.ts'
import { hookNames } from './hook-map.ts'
import type { LogFormat } from './log-json.ts'
import type { Logger, LogLevelAdjustment } from './logger.ts'
import { checkOptions, logLevelOptionType, type OptionSchema, parsePluginArgs } from './options.ts'
import type { Paths } from './paths.ts'
import {
  isServiceName,
  type OptionalService,
  type ProvidedServices,
  type ServiceName,
  serviceNames,
} from './plugin-services.ts'
import type { RegisteredPlugin } from './runner.ts'
import type { Services } from './services.ts'

export type AnyPluginFactory = PluginFactory<OptionSchema>

export class PluginCatalog {
  readonly #byName = new Map<string, AnyPluginFactory>()

  constructor(factories: readonly AnyPluginFactory[]) {
    for (const f of factories) this.add(f)
  }

  add(f: AnyPluginFactory): void {
    for (const n of [f.definition.name, ...(f.definition.aliases ?? [])]) this.#byName.set(n, f)
  }

  get(name: string): AnyPluginFactory | undefined {
    return this.#byName.get(name)
  }

  all(): AnyPluginFactory[] {
    return [...new Set(this.#byName.values())]
  }
}

const isFactory = (x: unknown): x is AnyPluginFactory =>
  typeof x === 'function' && typeof (x as { definition?: { name?: unknown } }).definition?.name === 'string'

async function importFactory(specifier: string, where: string): Promise<AnyPluginFactory> {
  let mod: Record<string, unknown>
  try {
    mod = (await import(specifier)) as Record<string, unknown>
  } catch (e) {
    throw new Error(`cannot load ${where}: ${(e as Error).message}`)
  }
  const candidate = mod.default ?? mod.plugin
  if (!isFactory(candidate)) throw new Error(`${where} has no default export made with definePlugin()`)
  return candidate
}

/** Finds a plugin by name: built-in, then plugin directories, then npm. */
export async function resolvePlugin(
  name: string,
  catalog: PluginCatalog,
  pluginDirs: readonly string[],
): Promise<AnyPluginFactory | undefined> {
  const builtin = catalog.get(name)
  if (builtin) return builtin
  if (!name.includes('..')) {
    for (const dir of pluginDirs)
      for (const ext of ['.ts', '.js', '.mjs', '']) {
        const file = resolve(dir, name + ext)
        if (ext === '' && !existsSync(join(file, 'index.ts')) && !existsSync(join(file, 'index.js'))) continue
        const target =
          ext === '' ? (existsSync(join(file, 'index.ts')) ? join(file, 'index.ts') : join(file, 'index.js')) : file
        if (existsSync(target)) return importFactory(pathToFileURL(target).href, target)
      }
  }
  if (/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+$/i.test(name) && !isAbsolute(name)) {
    try {
      return await importFactory(name, `npm package ${name}`)
    } catch {
      return undefined
    }
  }
  return undefined
}

/** Reads `config/plugins` lines into choices with validated options. */
export interface PluginTimeouts {
  /** For plugins that declare no deadline of their own. */
  readonly fallbackMs: number | undefined
  /** By the name used in config/plugins, the plugin's own name, or an alias. */
  readonly byName: ReadonlyMap<string, number>
}

export interface ChosenPlugins {
  /** The lines that name a plugin with valid options, in order. */
  readonly choices: PluginChoice[]
  /** One error per line that does not, so that a start reports them all. */
  readonly problems: ConfigError[]
}

export async function choosePlugins(
  lines: readonly PluginLine[],
  catalog: PluginCatalog,
  pluginDirs: readonly string[],
  timeouts: PluginTimeouts = { fallbackMs: undefined, byName: new Map() },
): Promise<ChosenPlugins> {
  const choices: PluginChoice[] = []
  const problems: ConfigError[] = []
  for (const line of lines) {
    let factory: AnyPluginFactory | undefined
    try {
      factory = await resolvePlugin(line.name, catalog, pluginDirs)
    } catch (e) {
      problems.push(new ConfigError('SMTPD_ERR_PLUGIN_LOAD', line.file, line.line, (e as Error).message))
      continue
    }
    if (!factory) {
      const why = explainUnknownPlugin(line.name, pluginDirs)
      problems.push(new ConfigError('SMTPD_ERR_PLUGIN_UNKNOWN', line.file, line.line, why))
      continue
    }
    const def = factory.definition
    let options: Readonly<Record<string, unknown>>
    try {
      const args = def.translateArgs ? def.translateArgs(line.args) : line.args
      options = parsePluginArgs(def.options, args)
    } catch (e) {
      const text = `plugin ${line.name}: ${(e as Error).message}`
      problems.push(new ConfigError('SMTPD_ERR_PLUGIN_OPTION', line.file, line.line, text))
      continue
    }
    const names = [line.name, def.name, ...(def.aliases ?? [])]
    const chosen = names.map((n) => timeouts.byName.get(n)).find((ms) => ms !== undefined)
    const timeoutMs = chosen ?? (def.timeoutMs === undefined ? timeouts.fallbackMs : undefined)
    choices.push({
      definition: def,
      options,
      instance: line.instance,
      timeoutMs,
      source: { file: line.file, line: line.line },
      ...(line.listeners === undefined ? {} : { listeners: line.listeners }),
    })
  }
  return { choices, problems }
}

export interface SetupEnvironment {
  readonly log: Logger
  readonly config: ConfigView
  readonly server: ServerInfo & { readonly spoolDir: string; readonly logFormat: LogFormat }
  readonly paths: Paths
  readonly services: Services
  /** What plugins get as api.dns, api.store, api.metrics, ... */
  readonly provided: ProvidedServices
  /**
   * Why a service is absent, for the error of a plugin that requires it (the test server tells
   * the author to pass `dns`); by default the server simply was not given one.
   */
  readonly absentServices?: { readonly [K in OptionalService]?: string } | undefined
  /** Called as each plugin is set up, so its config hooks answer for the plugins after it. */
  readonly onSetUp?: (plugin: RegisteredPlugin) => void
}

export interface SetUpPlugins {
  readonly plugins: RegisteredPlugin[]
  close(): Promise<void>
}

/** The value of the plugin's `opt.loglevel()` option, if it declares one. */
function logLevelAdjustmentOf(
  schema: OptionSchema,
  options: Readonly<Record<string, unknown>>,
): LogLevelAdjustment | undefined {
  const key = Object.keys(schema).find((k) => schema[k]?.type === logLevelOptionType)
  return key === undefined ? undefined : (options[key] as LogLevelAdjustment | undefined)
}

/**
 * Runs every plugin's setup in order. A plugin whose setup fails is named with its
 * config/plugins line and the others are still set up, so one start reports every failure;
 * then everything opened is closed and the failures are thrown together.
 */
export async function setupPlugins(choices: readonly PluginChoice[], env: SetupEnvironment): Promise<SetUpPlugins> {
  const plugins: RegisteredPlugin[] = []
  const closers: (() => Promise<void> | void)[] = []
  const close = async () => {
    for (const c of closers.reverse()) await c()
  }
  const problems: ConfigError[] = []
  const seen = new Map<string, PluginChoice>()
  for (const [index, choice] of choices.entries()) {
    const def = choice.definition
    const name = instanceName(choice)
    const refused = manifestProblems(choice, choices.slice(0, index), choices.slice(index + 1), seen.get(name), env)
    if (refused.length > 0) {
      problems.push(...refused)
      continue
    }
    seen.set(name, choice)
    const coreLog = env.log.child({ plugin: name })
    try {
      const options = checkOptions(def.options, choice.options as never)
      const logAdjustment = logLevelAdjustmentOf(def.options, options)
      const api: SetupApi<typeof options> = {
        name,
        options,
        log: env.log.child({ plugin: name, adjust: logAdjustment }),
        config: env.config,
        server: env.server,
        paths: env.paths,
        services: env.services,
        dns: env.provided.dns,
        // Scoped by the plugin's name, so two plugins cannot collide on a key; borrowed, so a
        // plugin's close() cannot close the process's store.
        store: env.provided.store?.scope(def.name),
        metrics: env.provided.metrics,
        clock: env.provided.clock,
        net: env.provided.net,
      }
      // The services it requires are there: manifestProblems checked them.
      const parts = await def.setup(api as unknown as SetupApi<typeof options, ServiceName>)
      if (parts.close) closers.push(parts.close)
      for (const hook of Object.keys(parts.hooks))
        if (!(hookNames as string[]).includes(hook)) throw new Error(`unknown hook "${hook}"`)
      const registered: RegisteredPlugin = {
        name,
        hooks: parts.hooks,
        timeoutMs: choice.timeoutMs ?? def.timeoutMs ?? 30_000,
        onFailure: def.onFailure ?? 'defer',
        concurrent: def.concurrent === true,
        log: coreLog,
        logAdjustment,
        reopenLogs: parts.reopenLogs,
        listeners: choice.listeners,
      }
      plugins.push(registered)
      env.onSetUp?.(registered)
    } catch (e) {
      const found = configErrorsIn(e)
      if (found !== undefined) problems.push(...found)
      else
        problems.push(
          new ConfigError(
            'SMTPD_ERR_PLUGIN_SETUP',
            choice.source?.file ?? `plugin ${name}`,
            choice.source?.line,
            `plugin ${name}: ${(e as Error).message}`,
          ),
        )
    }
  }
  if (problems.length > 0) {
    await close()
    throw combineConfigErrors(problems)
  }
  return { plugins, close }
}

const where = (choice: PluginChoice): [string, number | undefined] => [
  choice.source?.file ?? 'plugins given in code',
  choice.source?.line,
]
const at = (choice: PluginChoice): string =>
  choice.source === undefined ? 'in the list of plugins' : `at ${choice.source.file}:${choice.source.line}`
const answersTo = (choice: PluginChoice, name: string): boolean =>
  choice.definition.name === name || (choice.definition.aliases ?? []).includes(name) || instanceName(choice) === name

/**
 * What stops a plugin from being set up, from its manifest: a second plugin of the same name
 * without an instance suffix, a required service the server lacks, a plugin it reads from that is
 * missing or comes later.
 */
function manifestProblems(
  choice: PluginChoice,
  before: readonly PluginChoice[],
  later: readonly PluginChoice[],
  sameName: PluginChoice | undefined,
  env: SetupEnvironment,
): ConfigError[] {
  const name = instanceName(choice)
  const problems: ConfigError[] = []
  const fail = (code: string, text: string) => problems.push(new ConfigError(code, ...where(choice), text))
  if (sameName !== undefined)
    fail(
      'SMTPD_ERR_PLUGIN_DUPLICATE',
      `plugin ${name} is already loaded ${at(sameName)}; to run it twice, give each line an instance ` +
        `number (${choice.definition.name}:1, ${choice.definition.name}:2)`,
    )
  for (const service of choice.definition.requires ?? []) {
    if (!isServiceName(service))
      fail(
        'SMTPD_ERR_PLUGIN_REQUIRES',
        `plugin ${name} requires an unknown service "${String(service)}" (there are ${serviceNames.join(', ')})`,
      )
    else if (env.provided[service] === undefined)
      fail(
        'SMTPD_ERR_PLUGIN_REQUIRES',
        `plugin ${name} requires the ${service} service, which this server does not have` +
          `: ${env.absentServices?.[service as OptionalService] ?? 'it was started without one'}`,
      )
  }
  for (const wanted of choice.definition.after ?? []) {
    if (before.some((c) => answersTo(c, wanted))) continue
    const follower = later.find((c) => answersTo(c, wanted))
    fail(
      'SMTPD_ERR_PLUGIN_ORDER',
      follower === undefined
        ? `plugin ${name} reads the results of ${wanted}, which is not loaded; load ${wanted} before it`
        : `plugin ${name} reads the results of ${wanted}, which comes after it (${at(follower).replace(/^at /, '')}); ` +
            `load ${wanted} before it`,
    )
  }
  return problems
}
