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
import { type Metrics, memoryMetrics } from '../metrics/index.ts'
import type { Reply } from '../protocol/reply.ts'
import { HookAnswer } from './answer.ts'
import type { AuthVerdict, ScramVerdict } from './auth.ts'
import type { Connection, HookContext, ServerInfo, Transaction } from './context.ts'
import { DeferredEdits, readOnlyEnvelope } from './deferred-edits.ts'
import type { FailurePolicy } from './define-plugin.ts'
import { type CallExtras, makeContext, type PendingResult, recordResult } from './hook-context.ts'
import type { HookMap, HookName, RewriteVerdict } from './hook-map.ts'
import { HookSlot, hookMetrics } from './hook-slot.ts'
import type { Logger, LogLevelAdjustment } from './logger.ts'
import { accept, defer, type Verdict } from './verdict.ts'

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
  /** Its dataPost hook may run at the same time as its concurrent neighbours' (definePlugin). */
  readonly concurrent?: boolean | undefined
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
  [K in HookName]: HookMap[K] extends (...a: never[]) => infer R ? (Awaited<R> extends AnyVerdict ? K : never) : never
}[HookName]
type ObserverHook = Exclude<
  HookName,
  ChainHook | 'logging' | 'config' | 'userConfig' | 'receivedLine' | 'authMechanisms'
>
/** What a chain hook may answer: a Verdict, or the kinds only some hooks may give (kindAllowed). */
type AnyVerdict = Verdict | RewriteVerdict | AuthVerdict | ScramVerdict
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

  /**
   * Runs one plugin's chain hook alone (the authSasl backend that offered the client's mechanism),
   * with the deadline and failure handling of a chain; pass when it passed or has no such hook.
   */
  async chainOne<K extends ChainHook>(
    plugin: string,
    hook: K,
    view: SessionView,
    ...args: ArgsOf<K>
  ): Promise<ChainResult<Awaited<ReturnType<HookMap[K]>>>> {
    type R = Awaited<ReturnType<HookMap[K]>>
    const slot = this.#slotsFor(hook).find((x) => x.plugin.name === plugin)
    if (slot === undefined || view.signal.aborted) return { verdict: { kind: 'pass' } as R, plugin: undefined }
    const decided = await this.#decide(slot, hook, view, await this.#start(slot, hook, view, args))
    return (decided as ChainResult<R> | undefined) ?? { verdict: { kind: 'pass' } as R, plugin: undefined }
  }

  async #chain<K extends ChainHook>(
    hook: K,
    view: SessionView,
    args: ArgsOf<K>,
  ): Promise<ChainResult<Awaited<ReturnType<HookMap[K]>>>> {
    type R = Awaited<ReturnType<HookMap[K]>>
    const slots = this.#slotsFor(hook)
    for (let i = 0; i < slots.length; ) {
      const slot = slots[i] as HookSlot
      if (view.signal.aborted) {
        slot.plugin.log.info(`hook ${hook} not called: the client has gone`)
        return { verdict: clientGone as R, plugin: undefined }
      }
      const together = hook === 'dataPost' ? concurrentRun(slots, i) : 0
      const decided =
        together > 0
          ? await this.#concurrently(slots.slice(i, i + together), view, args as unknown as ArgsOf<'dataPost'>)
          : await this.#decide(slot, hook, view, await this.#start(slot, hook, view, args))
      if (decided !== undefined) return decided as ChainResult<R>
      i += Math.max(together, 1)
    }
    return { verdict: { kind: 'pass' } as R, plugin: undefined }
  }

  /** Calls one plugin's hook; the call's outcome as a value, with what the decision needs. */
  async #start(
    slot: HookSlot,
    hook: HookName,
    view: SessionView,
    args: readonly unknown[],
    extras?: CallExtras,
  ): Promise<StartedCall> {
    const started = performance.now()
    const answer = new HookAnswer(hook, (m) => slot.plugin.log.error(m))
    const outcome: CallOutcome = await this.#call(slot.plugin, hook, view, args, answer, extras).then(
      (value) => ({ value }),
      (error: unknown) => ({ error }),
    )
    return {
      started,
      ended: performance.now(),
      answer,
      outcome,
      secrets: authHooks.has(hook) ? secretsOf(args[0]) : [],
    }
  }

  /**
   * What one call means for the chain: undefined to go on to the next plugin, or the chain's
   * result (a verdict that is not pass, or the failure of a plugin whose policy is defer).
   */
  async #decide(
    slot: HookSlot,
    hook: HookName,
    view: SessionView,
    call: StartedCall,
  ): Promise<ChainResult<AnyVerdict> | undefined> {
    const { plugin } = slot
    const { started, answer, outcome, secrets } = call
    const failed = (): ChainResult<Verdict> | undefined => {
      // A backend that cannot answer must never let the client in, nor have it refused as if
      // its password were wrong: AUTH's failures are temporary whatever the plugin declared.
      if (plugin.onFailure === 'pass' && !authHooks.has(hook)) return undefined
      view.noteRefusal?.(plugin.name)
      return { verdict: failureVerdict(), plugin: plugin.name }
    }
    if ('error' in outcome) {
      slot.record(started, outcome.error instanceof HookTimeout ? 'timeout' : 'error')
      answer.abandon()
      // A backend's error may quote what it was given (a library's "bad password x"): never log that.
      const why = redact(describe(outcome.error), secrets)
      plugin.log.error(`hook ${hook} failed: ${why}`)
      view.connection.results.add(plugin.name, 'error', why)
      return failed()
    }
    const verdict = outcome.value
    if (!isVerdict(verdict) || !kindAllowed(hook, verdict.kind)) {
      slot.record(started, 'error')
      answer.abandon()
      const what = isVerdict(verdict) ? `${verdict.kind}(), which it may not` : `${String(verdict)}, not a verdict`
      plugin.log.error(`hook ${hook} returned ${what}; treated as a failure`)
      return failed()
    }
    const answered = answer.settle(verdict)
    slot.record(started, answered.problem === undefined ? verdict.kind : 'error')
    if (answered.problem !== undefined) {
      plugin.log.error(`${answered.problem}; treated as a failure`)
      return failed()
    }
    if (answered.reply !== undefined) view.respond(answered.reply)
    if (verdict.kind === 'pass') return undefined
    if (verdict.kind === 'reject' || verdict.kind === 'defer') view.noteRefusal?.(plugin.name)
    // A SCRAM lookup decides nothing yet; an authentication by name is an acceptance to observers.
    if (verdict.kind === 'authenticated') await this.#observe(accept(verdict.reply), plugin.name, hook, view)
    else if (verdict.kind !== 'credentials') await this.#observe(verdict as Verdict, plugin.name, hook, view)
    return { verdict, plugin: plugin.name }
  }

  /**
   * dataPost plugins that declare `concurrent`, next to each other in config/plugins, run at
   * once; their verdicts are then taken in configuration order, each plugin's results and
   * header edits (recorded meanwhile, host/deferred-edits.ts) applied as its verdict is taken.
   * When one decides, the later ones are aborted and leave nothing behind: the message and the
   * log are the same as if they had run one after another.
   */
  async #concurrently(
    slots: readonly HookSlot[],
    view: SessionView,
    [msg]: ArgsOf<'dataPost'>,
  ): Promise<ChainResult<AnyVerdict> | undefined> {
    const stop = new AbortController()
    const transaction = view.transaction === undefined ? undefined : readOnlyEnvelope(view.transaction)
    const calls = slots.map((slot) => {
      const edits = new DeferredEdits(msg)
      const results: PendingResult[] = []
      const running = this.#start(slot, 'dataPost', view, [edits.view], { cancel: stop.signal, results, transaction })
      return { slot, edits, results, running }
    })
    const timed = async (slot: HookSlot, running: Promise<StartedCall>) => {
      const call = await running
      view.recordHookTime?.(slot.plugin.name, call.ended - call.started)
      return call
    }
    for (const [i, { slot, edits, results, running }] of calls.entries()) {
      let call = await timed(slot, running)
      for (const [kind, message] of results) recordResult(view, slot.plugin.name, kind, message)
      try {
        edits.apply()
      } catch (e) {
        call = { ...call, outcome: { error: e } }
      }
      const decided = await this.#decide(slot, 'dataPost', view, call)
      if (decided !== undefined) {
        stop.abort(new Error(`plugin ${slot.plugin.name} decided the message`))
        const rest = calls.slice(i + 1)
        for (const later of rest) later.edits.discard()
        for (const later of rest) await timed(later.slot, later.running)
        return decided
      }
    }
    return undefined
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

  /**
   * authMechanisms: the SASL mechanisms each plugin's authSasl runs, in configuration order
   * (synchronous: EHLO lists them). A plugin that throws or answers something else offers none.
   */
  saslMechanisms(view: SessionView): { readonly plugin: string; readonly mechanisms: readonly string[] }[] {
    const out: { plugin: string; mechanisms: readonly string[] }[] = []
    for (const slot of this.#slotsFor('authMechanisms')) {
      const { plugin } = slot
      const started = performance.now()
      const answer = new HookAnswer('authMechanisms', (m) => plugin.log.error(m))
      try {
        const ctx = makeContext(view, plugin, 'authMechanisms', () => view.signal, answer)
        const names: unknown = plugin.hooks.authMechanisms?.(ctx)
        if (!Array.isArray(names)) throw new Error(`returned ${String(names)}, not a list of mechanism names`)
        // They go into the EHLO reply: a name that is not a SASL name (RFC 4422 §3.1) must not.
        const good = names.filter((n): n is string => typeof n === 'string' && saslName.test(n))
        if (good.length < names.length)
          plugin.log.error(
            `hook authMechanisms: not SASL mechanism names, left out: ${JSON.stringify(names.filter((n) => !good.includes(n)))}`,
          )
        out.push({ plugin: plugin.name, mechanisms: good.map((n) => n.toUpperCase()) })
        slot.record(started, 'ok')
      } catch (e) {
        slot.record(started, 'error')
        plugin.log.error(`hook authMechanisms failed: ${describe(e)}`)
      } finally {
        answer.abandon()
      }
    }
    return out
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
    extras?: CallExtras,
  ): Promise<unknown> {
    const fn = plugin.hooks[hook] as ((ctx: HookContext, ...a: readonly unknown[]) => unknown) | undefined
    if (fn === undefined) return undefined
    // The call's AbortSignal is made only if the hook reads ctx.signal: most hooks answer at once.
    let controller: AbortController | undefined
    let expired: Error | undefined
    const onSessionAbort = () => controller?.abort(view.signal.reason)
    const cancel = extras?.cancel
    const onCancel = () => controller?.abort(cancel?.reason)
    const signal = (): AbortSignal => {
      if (controller === undefined) {
        controller = new AbortController()
        if (expired !== undefined) controller.abort(expired)
        else if (view.signal.aborted) controller.abort(view.signal.reason)
        else if (cancel?.aborted) controller.abort(cancel.reason)
        else {
          view.signal.addEventListener('abort', onSessionAbort, { once: true })
          cancel?.addEventListener('abort', onCancel, { once: true })
        }
      }
      return controller.signal
    }
    let timer: NodeJS.Timeout | undefined
    const started = performance.now()
    try {
      const result = fn(makeContext(view, plugin, hook, signal, answer, extras), ...args)
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
      // A concurrent call's time is recorded when its verdict is taken, in configuration order.
      if (extras === undefined) view.recordHookTime?.(plugin.name, performance.now() - started)
      if (timer !== undefined) clearTimeout(timer)
      if (controller !== undefined) {
        view.signal.removeEventListener('abort', onSessionAbort)
        cancel?.removeEventListener('abort', onCancel)
      }
    }
  }
}

type CallOutcome = { readonly value: unknown } | { readonly error: unknown }

/** A hook call that has settled: when it ran, its answer holder, and how it ended. */
interface StartedCall {
  readonly started: number
  readonly ended: number
  readonly answer: HookAnswer
  readonly outcome: CallOutcome
  /** What an error message must not show: the password or token an auth hook was given. */
  readonly secrets: readonly string[]
}

/**
 * How many slots from `from` on are concurrent plugins next to each other (0: not one). A lone
 * concurrent plugin runs the same way, so its edits take effect the same way wherever it stands.
 */
function concurrentRun(slots: readonly HookSlot[], from: number): number {
  let n = 0
  while (slots[from + n]?.plugin.concurrent === true) n++
  return n
}

const saslName = /^[A-Za-z0-9_-]{1,20}$/
const verdictKinds = new Set(['pass', 'accept', 'reject', 'defer', 'done', 'rewrite', 'authenticated', 'credentials'])
/**
 * The kinds only some hooks may give, and those hooks: their callers handle them; elsewhere (an
 * untyped plugin) they would leave no reply, or accept where nothing was proven.
 */
const hooksOfKind: { readonly [kind: string]: ReadonlySet<HookName> } = {
  rewrite: new Set(['mailParse', 'mailPre', 'rcptParse', 'rcptPre']),
  authenticated: new Set(['authPassword', 'authToken', 'authSasl']),
  credentials: new Set(['authScram']),
}
const kindAllowed = (hook: HookName, kind: string): boolean =>
  hooksOfKind[kind]?.has(hook) ?? !(hook === 'authScram' && kind === 'accept')
/** Hooks whose failure is a temporary failure whatever `onFailure` says. */
const authHooks: ReadonlySet<HookName> = new Set([
  'authPlain',
  'authLogin',
  'authCramMd5',
  'auth',
  'authPassword',
  'authScram',
  'authToken',
  'authSasl',
])
const isVerdict = (v: unknown): v is AnyVerdict =>
  typeof v === 'object' && v !== null && verdictKinds.has((v as { kind?: unknown }).kind as string)

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** An auth hook's secrets (PasswordLogin.password, BearerToken.token), also as base64. */
function secretsOf(arg: unknown): string[] {
  if (typeof arg !== 'object' || arg === null) return []
  const { password, token } = arg as { password?: unknown; token?: unknown }
  return [password, token]
    .filter((x): x is string => typeof x === 'string' && x !== '')
    .flatMap((x) => [x, Buffer.from(x).toString('base64')])
}

const redact = (text: string, secrets: readonly string[]): string =>
  secrets.reduce((t, secret) => t.replaceAll(secret, '****'), text)
