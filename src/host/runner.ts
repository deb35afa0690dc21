/**
 * Runs hook chains. Plugins run in configuration order; a chain stops at the first verdict
 * that is not `pass`. Every call has a deadline and an AbortSignal. A thrown error or a
 * timeout is a temporary failure (451 4.3.0) unless the plugin declared `onFailure: 'pass'`:
 * never a silent "continue" (Haraka #2367, qpsmtpd's FATAL PLUGIN ERROR fail-open).
 * A chain stops when the client has gone, before the next plugin (as Haraka checks before every
 * hook): nobody is left to answer, and a slow DNS or content check would be wasted.
 * Every call's latency and outcome is recorded per plugin and hook, into metrics children bound
 * when the runner is made, so the hot path adds one clock read and two increments.
 */
import type { ListenerSelector } from '../config/listener-selector.ts'
import { type Counter, type Histogram, type Labelled, type Metrics, memoryMetrics } from '../metrics/index.ts'
import type { Reply } from '../protocol/reply.ts'
import { HookAnswer } from './answer.ts'
import type { Connection, HookContext, ServerInfo, Transaction } from './context.ts'
import type { FailurePolicy } from './define-plugin.ts'
import type { HookMap, HookName, RewriteVerdict } from './hook-map.ts'
import type { Key } from './keys.ts'
import type { Logger, LogLevelAdjustment } from './logger.ts'
import { defer, type Verdict } from './verdict.ts'

/** One set-up plugin instance, as the runner needs it. */
export interface RegisteredPlugin {
  readonly name: string
  readonly hooks: { readonly [K in HookName]?: HookMap[K] }
  readonly timeoutMs: number
  readonly onFailure: FailurePolicy
  /** For what the core says about the plugin (a failed hook): never adjusted. */
  readonly log: Logger
  /** The operator's `loglevel` for the plugin, applied to `ctx.log` in its hooks. */
  readonly logAdjustment?: LogLevelAdjustment | undefined
  /** The listeners whose sessions run it (host/listener-chains.ts); all when absent. */
  readonly listeners?: ListenerSelector | undefined
  /** Reopens the plugin's log files (SIGUSR1). */
  readonly reopenLogs?: (() => void) | undefined
}

/** What the session lends to every hook call. */
export interface SessionView {
  readonly connection: Connection
  readonly transaction: Transaction | undefined
  readonly server: ServerInfo
  readonly signal: AbortSignal
  respond(reply: Reply): void
  /** Told which plugin ended a chain with a refusal (reject, defer, or its failure): the log lines name it. */
  noteRefusal?(plugin: string): void
  /** HookContext.clientSpoke: a session that cannot tell answers false. */
  clientSpoke?(ms: number, signal: AbortSignal): Promise<boolean>
  /** HookContext.excuseEarlyTalk. */
  excuseEarlyTalk?(): void
  /** Told how long each hook call took (its wall time, waits included), for the summary line. */
  recordHookTime?(plugin: string, ms: number): void
}

export interface ChainResult<V> {
  readonly verdict: V
  /** The plugin that decided, or undefined when every plugin passed. */
  readonly plugin: string | undefined
}

type ChainHook = {
  [K in HookName]: HookMap[K] extends (...a: never[]) => infer R
    ? Awaited<R> extends Verdict | RewriteVerdict
      ? K
      : never
    : never
}[HookName]
type ObserverHook = Exclude<HookName, ChainHook | 'logging' | 'config' | 'userConfig' | 'receivedLine'>
type ArgsOf<K extends HookName> = HookMap[K] extends (ctx: never, ...args: infer A) => unknown ? A : never

const nobodyDecided: Promise<ChainResult<Verdict>> = Promise.resolve(
  Object.freeze({ verdict: Object.freeze({ kind: 'pass' as const }), plugin: undefined }),
)
const nothingToDo: Promise<void> = Promise.resolve()

export const failureVerdict = (): Verdict =>
  defer({ code: 451, enhanced: '4.3.0', text: 'Temporary failure, please try again later' })

/** What a chain answers when the client went away before its end: nothing will be sent. */
const clientGone: Verdict = Object.freeze(
  defer({ code: 421, enhanced: '4.4.2', text: 'Connection lost' }, { disconnect: true }),
)

class HookTimeout extends Error {
  constructor(plugin: string, hook: string, ms: number) {
    super(`plugin ${plugin} timed out after ${ms} ms in hook ${hook}`)
  }
}

/** How a hook call ended, as counted: the verdict's kind, `ok` for observers, or the failure. */
type Outcome = Verdict['kind'] | 'rewrite' | 'ok' | 'error' | 'timeout'
type OutcomeLabels = 'plugin' | 'hook' | 'verdict'

/** One plugin on one hook, with its metrics children bound once. */
class HookSlot {
  readonly plugin: RegisteredPlugin
  readonly #hook: HookName
  readonly #duration: Histogram
  readonly #outcomes: Labelled<OutcomeLabels, Counter>
  // Bound at an outcome's first occurrence: a series per outcome that never happens is noise.
  readonly #counters: { [O in Outcome]?: Counter } = {}

  constructor(plugin: RegisteredPlugin, hook: HookName, metrics: HookMetrics) {
    this.plugin = plugin
    this.#hook = hook
    this.#duration = metrics.duration.labels({ plugin: plugin.name, hook })
    this.#outcomes = metrics.outcomes
  }

  /** @param started performance.now() when the call began */
  record(started: number, outcome: Outcome): void {
    this.#duration.observe((performance.now() - started) / 1000)
    let counter = this.#counters[outcome]
    if (counter === undefined)
      this.#counters[outcome] = counter = this.#outcomes.labels({
        plugin: this.plugin.name,
        hook: this.#hook,
        verdict: outcome,
      })
    counter.inc()
  }
}

interface HookMetrics {
  readonly duration: Labelled<'plugin' | 'hook', Histogram>
  readonly outcomes: Labelled<OutcomeLabels, Counter>
}

/** The runner's metrics, declared in `metrics` (the same ones again after a reload). */
function hookMetrics(metrics: Metrics): HookMetrics {
  return {
    duration: metrics.histogram({
      name: 'qtsmtpd_hook_duration_seconds',
      help: 'Time plugins took to answer a hook call',
      labelNames: ['plugin', 'hook'],
    }),
    outcomes: metrics.counter({
      name: 'qtsmtpd_hook_verdicts_total',
      help: 'Hook calls by how they ended: the verdict, ok (observer hooks), error or timeout',
      labelNames: ['plugin', 'hook', 'verdict'],
    }),
  }
}

export class HookRunner {
  readonly #byHook = new Map<HookName, RegisteredPlugin[]>()
  readonly #slots = new Map<HookName, HookSlot[]>()

  readonly plugins: readonly RegisteredPlugin[]

  /** @param metrics where hook latencies and outcomes go (default: a registry of its own) */
  constructor(plugins: readonly RegisteredPlugin[], metrics: Metrics = memoryMetrics()) {
    this.plugins = plugins
    const bound = hookMetrics(metrics)
    for (const p of plugins)
      for (const hook of Object.keys(p.hooks) as HookName[]) {
        const list = this.#byHook.get(hook) ?? []
        list.push(p)
        this.#byHook.set(hook, list)
        const slots = this.#slots.get(hook) ?? []
        slots.push(new HookSlot(p, hook, bound))
        this.#slots.set(hook, slots)
      }
  }

  #slotsFor(hook: HookName): readonly HookSlot[] {
    return this.#slots.get(hook) ?? []
  }

  has(hook: HookName): boolean {
    return this.#byHook.has(hook)
  }

  pluginsFor(hook: HookName): readonly RegisteredPlugin[] {
    return this.#byHook.get(hook) ?? []
  }

  /** Runs a chain hook; returns the first non-pass verdict, or pass. */
  chain<K extends ChainHook>(
    hook: K,
    view: SessionView,
    ...args: ArgsOf<K>
  ): Promise<ChainResult<Awaited<ReturnType<HookMap[K]>>>> {
    // Most hooks have no plugin in a given configuration: answer without an async frame.
    if (!this.#byHook.has(hook)) return nobodyDecided as Promise<ChainResult<Awaited<ReturnType<HookMap[K]>>>>
    return this.#chain(hook, view, args)
  }

  async #chain<K extends ChainHook>(
    hook: K,
    view: SessionView,
    args: ArgsOf<K>,
  ): Promise<ChainResult<Awaited<ReturnType<HookMap[K]>>>> {
    type R = Awaited<ReturnType<HookMap[K]>>
    for (const slot of this.#slotsFor(hook)) {
      if (view.signal.aborted) {
        slot.plugin.log.info(`hook ${hook} not called: the client has gone`)
        return { verdict: clientGone as R, plugin: undefined }
      }
      const plugin = slot.plugin
      const started = performance.now()
      const answer = new HookAnswer(hook, (m) => plugin.log.error(m))
      let verdict: R
      try {
        verdict = (await this.#call(plugin, hook, view, args, answer)) as R
      } catch (e) {
        slot.record(started, e instanceof HookTimeout ? 'timeout' : 'error')
        answer.abandon()
        plugin.log.error(`hook ${hook} failed: ${describe(e)}`)
        view.connection.results.add(plugin.name, 'error', describe(e))
        if (plugin.onFailure === 'pass') continue
        view.noteRefusal?.(plugin.name)
        return { verdict: failureVerdict() as R, plugin: plugin.name }
      }
      if (!isVerdict(verdict) || ((verdict as { kind: string }).kind === 'rewrite' && !rewriteHooks.has(hook))) {
        slot.record(started, 'error')
        answer.abandon()
        plugin.log.error(`hook ${hook} returned ${String(verdict)}, not a verdict; treated as a failure`)
        if (plugin.onFailure === 'pass') continue
        view.noteRefusal?.(plugin.name)
        return { verdict: failureVerdict() as R, plugin: plugin.name }
      }
      const answered = answer.settle(verdict)
      slot.record(started, answered.problem === undefined ? verdict.kind : 'error')
      if (answered.problem !== undefined) {
        plugin.log.error(`${answered.problem}; treated as a failure`)
        if (plugin.onFailure === 'pass') continue
        view.noteRefusal?.(plugin.name)
        return { verdict: failureVerdict() as R, plugin: plugin.name }
      }
      if (answered.reply !== undefined) view.respond(answered.reply)
      if (verdict.kind !== 'pass') {
        if (verdict.kind === 'reject' || verdict.kind === 'defer') view.noteRefusal?.(plugin.name)
        await this.#observe(verdict as Verdict, plugin.name, hook, view)
        return { verdict, plugin: plugin.name }
      }
    }
    return { verdict: { kind: 'pass' } as R, plugin: undefined }
  }

  /** Runs every plugin of an observer hook; errors are logged, never propagated. */
  all<K extends ObserverHook>(hook: K, view: SessionView, ...args: ArgsOf<K>): Promise<void> {
    if (!this.#byHook.has(hook)) return nothingToDo
    return this.#all(hook, view, args)
  }

  async #all<K extends ObserverHook>(hook: K, view: SessionView, args: ArgsOf<K>): Promise<void> {
    for (const slot of this.#slotsFor(hook)) {
      const plugin = slot.plugin
      const started = performance.now()
      const answer = new HookAnswer(hook, (m) => plugin.log.error(m))
      try {
        await this.#call(plugin, hook, view, args, answer)
        slot.record(started, 'ok')
      } catch (e) {
        slot.record(started, e instanceof HookTimeout ? 'timeout' : 'error')
        plugin.log.error(`hook ${hook} failed: ${describe(e)}`)
        view.connection.results.add(plugin.name, 'error', describe(e))
      } finally {
        answer.abandon()
      }
    }
  }

  /** received_line: the first plugin that returns a value replaces the Received header. */
  async receivedLine(view: SessionView, ...args: ArgsOf<'receivedLine'>): Promise<string | undefined> {
    for (const slot of this.#slotsFor('receivedLine')) {
      const plugin = slot.plugin
      const started = performance.now()
      const answer = new HookAnswer('receivedLine', (m) => plugin.log.error(m))
      try {
        const value = await this.#call(plugin, 'receivedLine', view, args, answer)
        slot.record(started, 'ok')
        if (typeof value === 'string') return value
      } catch (e) {
        slot.record(started, e instanceof HookTimeout ? 'timeout' : 'error')
        plugin.log.error(`hook receivedLine failed: ${describe(e)}`)
      } finally {
        answer.abandon()
      }
    }
    return undefined
  }

  async #observe(verdict: Verdict, plugin: string, hook: HookName, view: SessionView): Promise<void> {
    const observer = verdict.kind === 'reject' || verdict.kind === 'defer' ? 'deny' : 'ok'
    if (!this.has(observer)) return
    await this.all(observer, view, { plugin, hook, verdict })
  }

  async #call(
    plugin: RegisteredPlugin,
    hook: HookName,
    view: SessionView,
    args: readonly unknown[],
    answer: HookAnswer,
  ): Promise<unknown> {
    const fn = plugin.hooks[hook] as ((ctx: HookContext, ...a: readonly unknown[]) => unknown) | undefined
    if (fn === undefined) return undefined
    // The call's AbortSignal is made only if the hook reads ctx.signal: most hooks answer at once.
    let controller: AbortController | undefined
    let expired: Error | undefined
    const onSessionAbort = () => controller?.abort(view.signal.reason)
    const signal = (): AbortSignal => {
      if (controller === undefined) {
        controller = new AbortController()
        if (expired !== undefined) controller.abort(expired)
        else if (view.signal.aborted) controller.abort(view.signal.reason)
        else view.signal.addEventListener('abort', onSessionAbort, { once: true })
      }
      return controller.signal
    }
    let timer: NodeJS.Timeout | undefined
    const started = performance.now()
    try {
      const result = fn(makeContext(view, plugin, hook, signal, answer), ...args)
      if (!(result instanceof Promise)) return result
      const timeout = new Promise<never>((_, rejectTimeout) => {
        timer = setTimeout(() => {
          const err = new HookTimeout(plugin.name, hook, plugin.timeoutMs)
          expired = err
          // Settle the deadline first: a hook that answers its abort with pass() must not win the race.
          rejectTimeout(err)
          controller?.abort(err)
        }, plugin.timeoutMs)
      })
      return await Promise.race([result, timeout])
    } finally {
      view.recordHookTime?.(plugin.name, performance.now() - started)
      if (timer !== undefined) clearTimeout(timer)
      if (controller !== undefined) view.signal.removeEventListener('abort', onSessionAbort)
    }
  }
}

function makeContext(
  view: SessionView,
  plugin: RegisteredPlugin,
  hook: HookName,
  signal: () => AbortSignal,
  answer: HookAnswer,
): HookContext {
  const { connection, transaction } = view
  const notesFor = (key: Key<unknown>) => {
    if (key.scope === 'connection') return connection.notes
    if (transaction === undefined) throw new Error(`note ${key.name} is per transaction, and there is none`)
    return transaction.notes
  }
  return {
    connection,
    transaction,
    server: view.server,
    get signal() {
      return signal()
    },
    // Made on first use: most hook calls never log.
    get log() {
      const log = plugin.log.child({
        connection: connection.id,
        transaction: transaction?.id,
        hook,
        adjust: plugin.logAdjustment,
      })
      Object.defineProperty(this, 'log', { value: log })
      return log
    },
    plugin: plugin.name,
    get: <T>(key: Key<T>) => notesFor(key as Key<unknown>).get(key),
    set: <T>(key: Key<T>, value: T) => notesFor(key as Key<unknown>).set(key, value),
    result: (kind, message) => {
      if (transaction === undefined) return connection.results.add(plugin.name, kind, message)
      transaction.results.add(plugin.name, kind, message)
      // The connection's summary line shows its transactions' results too; its blackboard does not.
      connection.results.addToSummary(plugin.name, kind, message)
    },
    respond: (reply) => answer.respond(reply),
    clientSpoke: (ms) => view.clientSpoke?.(ms, signal()) ?? Promise.resolve(false),
    excuseEarlyTalk: () => view.excuseEarlyTalk?.(),
  }
}

const verdictKinds = new Set(['pass', 'accept', 'reject', 'defer', 'done', 'rewrite'])
/** The only hooks whose callers handle `rewrite`; elsewhere (an untyped plugin) it would leave no reply. */
const rewriteHooks: ReadonlySet<HookName> = new Set(['mailParse', 'mailPre', 'rcptParse', 'rcptPre'])
const isVerdict = (v: unknown): v is Verdict =>
  typeof v === 'object' && v !== null && verdictKinds.has((v as { kind?: unknown }).kind as string)

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))
