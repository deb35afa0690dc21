/**
 * The context object one hook call gets (`ctx`): the session's connection and transaction, the
 * call's AbortSignal, a logger tagged with the plugin, typed notes, results, and the reply a
 * plugin may give itself. Made by the runner for each call (host/runner.ts).
 */
import type { HookAnswer } from './answer.ts'
import type { HookContext, Transaction } from './context.ts'
import type { HookName } from './hook-map.ts'
import type { Key } from './keys.ts'
import type { ResultKind } from './results.ts'
import type { RegisteredPlugin, SessionView } from './runner.ts'

/** A result a concurrent hook recorded, written when the runner takes its verdict. */
export type PendingResult = readonly [ResultKind, string | undefined]

/** What a call made by #concurrently gets besides the usual. */
export interface CallExtras {
  /** Aborted when an earlier plugin of the group decided: the call's ctx.signal follows it. */
  readonly cancel?: AbortSignal | undefined
  /** Where ctx.result() goes instead of the results, until the runner writes them in order. */
  readonly results?: PendingResult[] | undefined
  /** The transaction the hook sees instead of the session's (one without envelope edits). */
  readonly transaction?: Transaction | undefined
}

/** Writes a plugin's result where ctx.result() does: the transaction's, else the connection's. */
export function recordResult(view: SessionView, plugin: string, kind: ResultKind, message: string | undefined): void {
  const { connection, transaction } = view
  if (transaction === undefined) {
    connection.results.add(plugin, kind, message)
    return
  }
  transaction.results.add(plugin, kind, message)
  // The connection's summary line shows its transactions' results too; its blackboard does not.
  connection.results.addToSummary(plugin, kind, message)
}

export function makeContext(
  view: SessionView,
  plugin: RegisteredPlugin,
  hook: HookName,
  signal: () => AbortSignal,
  answer: HookAnswer,
  extras?: CallExtras,
): HookContext {
  const { connection } = view
  const transaction = extras?.transaction ?? view.transaction
  const pending = extras?.results
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
      if (pending !== undefined) pending.push([kind, message])
      else recordResult(view, plugin.name, kind, message)
    },
    respond: (reply) => answer.respond(reply),
    clientSpoke: (ms) => view.clientSpoke?.(ms, signal()) ?? Promise.resolve(false),
    excuseEarlyTalk: () => view.excuseEarlyTalk?.(),
  }
}
