/**
 * When plugins may change the message and the envelope. The core moves the window along as it
 * runs the hooks after DATA; an edit outside its hooks throws, so the calling hook fails closed
 * (451) instead of changing a message that is already decided or already delivered.
 *
 * - header edits: dataHeadersEnd, dataPostHeaders, receivedLine, dataPost, queuePre
 * - body replacement and envelope edits: dataPost, queuePre (milter's end of message)
 * - from the queue hook on nothing changes: every queue plugin stores the same message
 */
import type { HookName } from './hook-map.ts'

export type EditKind = 'header' | 'body' | 'envelope'

const headerHooks: ReadonlySet<HookName> = new Set([
  'dataHeadersEnd',
  'dataPostHeaders',
  'receivedLine',
  'dataPost',
  'queuePre',
])
const contentHooks: ReadonlySet<HookName> = new Set(['dataPost', 'queuePre'])

export class EditWindow {
  /** The hook the core runs now; undefined before the end of DATA. */
  #hook: HookName | undefined
  #closed = false

  /** The hook the core runs now, for messages; undefined before the end of DATA. */
  get hook(): HookName | undefined {
    return this.#hook
  }

  /** Called by the core before it runs each hook that gets the message. */
  enter(hook: HookName): void {
    this.#hook = hook
  }

  /** The transaction is over: nothing may change any more. */
  close(): void {
    this.#closed = true
  }

  allows(kind: EditKind): boolean {
    if (this.#closed || this.#hook === undefined) return false
    return (kind === 'header' ? headerHooks : contentHooks).has(this.#hook)
  }

  /** Throws unless `kind` edits are allowed now; `operation` names the call in the message. */
  check(kind: EditKind, operation: string): void {
    if (this.allows(kind)) return
    const where = kind === 'header' ? 'from dataHeadersEnd to queuePre' : 'in dataPost and queuePre'
    const now = this.#closed
      ? 'after the transaction'
      : this.#hook === undefined
        ? 'before the end of DATA'
        : `in ${this.#hook}`
    throw new Error(`${operation} is allowed ${where}, not ${now}`)
  }
}
