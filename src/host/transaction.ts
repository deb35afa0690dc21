/**
 * The transaction as plugins see it (`ctx.transaction`): a view of the session's state, with the
 * envelope edits the core owns (add or remove a recipient, change the sender), for content
 * filters such as milter. Allowed in dataPost and queuePre (EditWindow).
 *
 * Addresses and parameters go through the parsers that check what clients send, so an edited
 * envelope can break no queue's framing (no control characters, lengths of RFC 5321 §4.5.3.1).
 * Security: a recipient added here passed no rcpt hook and no relay check: the plugin decides.
 */
import { normalizeDomain, parseForwardPath, parseReversePath } from '../protocol/address.ts'
import { type Address, type BodyType, formatAddress, type MailFrom, type RcptTo } from '../protocol/envelope.ts'
import { type ExtensionSet, parseMailParams, parseRcptParams } from '../protocol/mail-params.ts'
import type { Transaction } from './context.ts'
import type { EditWindow } from './edit-window.ts'
import type { Notes } from './keys.ts'
import type { Logger } from './logger.ts'
import type { Results } from './results.ts'

/** What the session keeps of a transaction and lends to the view. */
export interface TransactionState {
  readonly id: string
  mailFrom: MailFrom
  /** Replaced, never changed in place: a plugin holding the old array keeps a consistent list. */
  recipients: readonly RcptTo[]
  readonly body: BodyType
  readonly notes: Notes
  readonly results: Results
}

/** Parameters an edit may carry: DSN (RFC 3461) and AUTH=; the rest describes the content as received. */
const editParams: ExtensionSet = {
  size: false,
  eightBitMime: false,
  binaryMime: false,
  smtputf8: false,
  dsn: true,
  requireTls: false,
  auth: true,
}

/** The form addresses are compared in: local part as is (RFC 5321 §2.4), domain normalised. */
const addressKey = (a: Address): string =>
  a.domain === undefined ? a.local.toLowerCase() : `${a.local}@${normalizeDomain(a.domain)}`

export function transactionView(state: TransactionState, window: EditWindow, log: Logger): Transaction {
  return new TransactionView(state, window, log)
}

/** A class with private fields, frozen, for the reasons given in message.ts. */
class TransactionView implements Transaction {
  readonly #state: TransactionState
  readonly #window: EditWindow
  readonly #log: Logger

  constructor(state: TransactionState, window: EditWindow, log: Logger) {
    this.#state = state
    this.#window = window
    this.#log = log
    Object.freeze(this)
  }

  get id(): string {
    return this.#state.id
  }

  get mailFrom(): MailFrom {
    return this.#state.mailFrom
  }

  get recipients(): readonly RcptTo[] {
    return this.#state.recipients
  }

  get body(): BodyType {
    return this.#state.body
  }

  get notes(): Notes {
    return this.#state.notes
  }

  get results(): Results {
    return this.#state.results
  }

  addRecipient(address: string, params = ''): boolean {
    this.#window.check('envelope', 'transaction.addRecipient')
    const state = this.#state
    const smtputf8 = state.mailFrom.params.smtputf8
    const path = parseForwardPath(bracketed(address), { smtputf8, strict: false })
    if (!path.ok) throw new TypeError(`addRecipient: ${path.message}`)
    const parsed = parseRcptParams(params, editParams, { smtputf8 })
    if (!parsed.ok) throw new TypeError(`addRecipient: ${parsed.message}`)
    const key = addressKey(path.value)
    if (state.recipients.some((r) => addressKey(r.address) === key)) return false
    state.recipients = Object.freeze([
      ...state.recipients,
      Object.freeze({ address: path.value, params: parsed.value }),
    ])
    this.#note(`recipient <${formatAddress(path.value)}> added, unchecked by rcpt hooks`)
    return true
  }

  removeRecipient(address: string): number {
    this.#window.check('envelope', 'transaction.removeRecipient')
    const state = this.#state
    const path = parseForwardPath(bracketed(address), { smtputf8: state.mailFrom.params.smtputf8, strict: false })
    if (!path.ok) throw new TypeError(`removeRecipient: ${path.message}`)
    const key = addressKey(path.value)
    const gone = state.recipients.filter((r) => addressKey(r.address) === key)
    if (gone.length === 0) return 0
    state.recipients = Object.freeze(state.recipients.filter((r) => !gone.includes(r)))
    for (const r of gone) this.#note(`recipient <${formatAddress(r.address)}> removed, ${state.recipients.length} left`)
    return gone.length
  }

  setSender(address: string, params = ''): MailFrom {
    this.#window.check('envelope', 'transaction.setSender')
    const state = this.#state
    const smtputf8 = state.mailFrom.params.smtputf8
    const path = parseReversePath(address === '' ? '<>' : bracketed(address), { smtputf8, strict: false })
    if (!path.ok) throw new TypeError(`setSender: ${path.message}`)
    const parsed = parseMailParams(params, editParams)
    if (!parsed.ok) throw new TypeError(`setSender: ${parsed.message}`)
    const old = state.mailFrom.params
    const p = parsed.value
    const from: MailFrom = Object.freeze({
      address: path.value,
      params: Object.freeze({
        ...old,
        ret: p.ret ?? old.ret,
        envid: p.envid ?? old.envid,
        envidEncoded: p.envid === undefined ? old.envidEncoded : p.envidEncoded,
        auth: p.auth ?? old.auth,
      }),
    })
    state.mailFrom = from
    this.#note(`sender changed to <${formatAddress(path.value)}>`)
    return from
  }

  #note(what: string): void {
    this.#log.info(`id=${this.#state.id} ${what} (plugin edit in ${this.#window.hook ?? '-'})`)
  }
}
Object.freeze(TransactionView.prototype)

/** `a@b` and `<a@b>` both name a path; the parsers want the brackets. */
const bracketed = (address: string): string => (address.startsWith('<') ? address : `<${address}>`)
