/**
 * The message and envelope as a concurrent dataPost hook sees them (definePlugin `concurrent`):
 * reads go to the message as it is, header edits are checked at once and recorded, and the
 * runner applies them when it takes that plugin's verdict, in configuration order. So plugins
 * that run side by side leave the same message, byte for byte, as if they had run one after
 * the other, whichever finished first. Body replacement and envelope edits throw: a plugin that
 * needs them must not be concurrent.
 */
import { checkField } from '../message/headers.ts'
import type { MailFrom } from '../protocol/envelope.ts'
import type { Transaction } from './context.ts'
import type { BodySource, HeaderField, Message, MessageHeaders, MessageStreamOptions } from './message.ts'

const notHere = (what: string) =>
  new Error(
    `${what} is not allowed in a concurrent dataPost hook: only header edits are (the plugin declares concurrent)`,
  )

export class DeferredEdits {
  readonly view: Message
  readonly #target: Message
  readonly #edits: ((h: MessageHeaders) => void)[] = []
  #closed = false

  constructor(target: Message) {
    this.#target = target
    this.view = new DeferredMessage(target, this)
  }

  /** Records an edit, checked now; throws once applied or discarded (a late edit is refused). */
  record(edit: (h: MessageHeaders) => void, name?: string, value?: string): void {
    if (this.#closed) throw new Error('a header edit after the hook ended')
    if (name !== undefined && value !== undefined) checkField(name, value)
    this.#edits.push(edit)
  }

  /** Makes the recorded edits on the message, in the order the plugin made them. */
  apply(): void {
    this.#closed = true
    for (const edit of this.#edits) edit(this.#target.headers)
  }

  discard(): void {
    this.#closed = true
  }
}

class DeferredHeaders implements MessageHeaders {
  readonly #live: MessageHeaders
  readonly #edits: DeferredEdits

  constructor(live: MessageHeaders, edits: DeferredEdits) {
    this.#live = live
    this.#edits = edits
    Object.freeze(this)
  }

  get fields(): readonly HeaderField[] {
    return this.#live.fields
  }
  get byteLength(): number {
    return this.#live.byteLength
  }
  get(name: string): string[] {
    return this.#live.get(name)
  }
  first(name: string): string | undefined {
    return this.#live.first(name)
  }
  count(name: string): number {
    return this.#live.count(name)
  }
  add(name: string, value: string): void {
    this.#edits.record((h) => h.add(name, value), name, value)
  }
  prepend(name: string, value: string): void {
    this.#edits.record((h) => h.prepend(name, value), name, value)
  }
  insert(position: number, name: string, value: string): void {
    if (!Number.isSafeInteger(position) || position < 0) throw new RangeError('header position: an integer from 0')
    this.#edits.record((h) => h.insert(position, name, value), name, value)
  }
  /** Answers for the message as it is now; the change itself is made later. */
  change(name: string, index: number, value: string): boolean {
    this.#edits.record((h) => h.change(name, index, value), name, value)
    return index < this.#live.count(name)
  }
  remove(name: string, index?: number): number {
    this.#edits.record((h) => h.remove(name, index))
    const n = this.#live.count(name)
    return index === undefined ? n : index < n ? 1 : 0
  }
  rename(from: string, to: string): number {
    this.#edits.record((h) => h.rename(from, to), to, '')
    return this.#live.count(from)
  }
}
Object.freeze(DeferredHeaders.prototype)

class DeferredMessage implements Message {
  readonly headers: MessageHeaders
  readonly #live: Message

  constructor(live: Message, edits: DeferredEdits) {
    this.#live = live
    this.headers = new DeferredHeaders(live.headers, edits)
    Object.freeze(this)
  }

  get size(): number {
    return this.#live.size
  }
  get bodySize(): number {
    return this.#live.bodySize
  }
  get bodyReplaced(): boolean {
    return this.#live.bodyReplaced
  }
  bodyStream() {
    return this.#live.bodyStream()
  }
  bodyPath(): Promise<string> {
    return this.#live.bodyPath()
  }
  stream(opts?: MessageStreamOptions) {
    return this.#live.stream(opts)
  }
  replaceBody(_source: BodySource): Promise<void> {
    return Promise.reject(notHere('msg.replaceBody'))
  }
}
Object.freeze(DeferredMessage.prototype)

/** The transaction with its envelope edits refused (a concurrent hook's `ctx.transaction`). */
export function readOnlyEnvelope(txn: Transaction): Transaction {
  return Object.freeze({
    get id() {
      return txn.id
    },
    get mailFrom() {
      return txn.mailFrom
    },
    get recipients() {
      return txn.recipients
    },
    get body() {
      return txn.body
    },
    get notes() {
      return txn.notes
    },
    get results() {
      return txn.results
    },
    addRecipient(): boolean {
      throw notHere('ctx.transaction.addRecipient')
    },
    removeRecipient(): number {
      throw notHere('ctx.transaction.removeRecipient')
    },
    setSender(): MailFrom {
      throw notHere('ctx.transaction.setSender')
    },
  })
}
