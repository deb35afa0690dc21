/**
 * Per-listener chains: plugins are set up once per runtime and shared, and each listener's
 * sessions run the plugins whose selector (`[smtp]`, `[!submission]` in config/plugins) takes
 * it. One HookRunner per distinct chain, found once per listener and then by the listener
 * object, so a session pays one lookup at its start and nothing per command.
 */

import { ConfigError } from '../config/config-error.ts'
import { listenerRoles, selects, unknownListenerWords } from '../config/listener-selector.ts'
import type { Metrics } from '../metrics/index.ts'
import type { ListenerInfo } from './context.ts'
import type { HookName } from './hook-map.ts'
import { HookRunner, type RegisteredPlugin } from './runner.ts'

/** Hooks that serve the whole server, not a session: a selector cannot limit them. */
const serverHooks: readonly HookName[] = ['logging', 'config', 'userConfig']

/**
 * What is wrong with the plugins' selectors: a plugin a selector cannot limit, and (when the
 * listeners are known) a word that is neither a role nor a listener's name.
 */
export function listenerSelectorProblems(
  plugins: readonly RegisteredPlugin[],
  listeners: readonly ListenerInfo[] | undefined,
): ConfigError[] {
  const problems: ConfigError[] = []
  for (const p of plugins) {
    const selector = p.listeners
    if (selector === undefined) continue
    const fail = (text: string) =>
      problems.push(new ConfigError('SMTPD_ERR_PLUGIN_LISTENERS', selector.file, selector.line, text))
    const hooks = Object.keys(p.hooks) as HookName[]
    const global = hooks.filter((h) => serverHooks.includes(h))
    if (global.length > 0)
      fail(
        `plugin ${p.name}: a listener selector cannot limit its ${global.join(', ')} hook, which serves ` +
          'the whole server; remove the selector',
      )
    else if (hooks.length === 0)
      fail(`plugin ${p.name} has no session hooks a listener selector could limit (it serves every listener)`)
    if (listeners === undefined) continue
    for (const word of unknownListenerWords(selector, listeners)) {
      const names = [...new Set(listeners.map((l) => l.name))].join(', ')
      fail(
        `listener selector ${selector.text}: "${word}" is neither a role (${listenerRoles.join(', ')}) ` +
          `nor the name of a listener (${names || 'none'})`,
      )
    }
  }
  return problems
}

export class ListenerChains {
  /** Every plugin: the chain of a listener that all selectors take, and of runtimes without selectors. */
  readonly all: HookRunner
  readonly #plugins: readonly RegisteredPlugin[]
  readonly #selective: boolean
  readonly #byListener = new WeakMap<ListenerInfo, HookRunner>()
  /** By the indices of the plugins in the chain, so listeners with the same chain share a runner. */
  readonly #byChain = new Map<string, HookRunner>()
  readonly #metrics: Metrics

  /** @param metrics where every chain's runner records (one series per plugin and hook, shared) */
  constructor(plugins: readonly RegisteredPlugin[], metrics: Metrics) {
    this.#plugins = plugins
    this.#metrics = metrics
    this.all = new HookRunner(plugins, metrics)
    this.#selective = plugins.some((p) => p.listeners !== undefined)
  }

  /** The chain of a listener's sessions. */
  runnerFor(listener: ListenerInfo): HookRunner {
    if (!this.#selective) return this.all
    const known = this.#byListener.get(listener)
    if (known !== undefined) return known
    const chosen: RegisteredPlugin[] = []
    const indices: number[] = []
    this.#plugins.forEach((p, i) => {
      if (p.listeners !== undefined && !selects(p.listeners, listener)) return
      chosen.push(p)
      indices.push(i)
    })
    const key = indices.join(',')
    let runner = this.#byChain.get(key)
    if (runner === undefined) {
      runner = chosen.length === this.#plugins.length ? this.all : new HookRunner(chosen, this.#metrics)
      this.#byChain.set(key, runner)
    }
    this.#byListener.set(listener, runner)
    return runner
  }
}
