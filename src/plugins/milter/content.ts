/**
 * The message to the milter at dataPost (headers as received, without our own Received field,
 * as Sendmail and Postfix show it; end of headers; the body streamed in chunks as the milter
 * reads; end of message), and the milter's changes, held until its verdict and then applied
 * all together through the message API: a milter that fails halfway changes nothing.
 */
import type { MilterSession, ModificationReply, ModificationSink } from '../../clients/milter/index.ts'
import { MilterError, Protocol } from '../../clients/milter/index.ts'
import type { Message, TxnContext } from '../../host/context.ts'
import type { HeaderField } from '../../host/message.ts'
import { BodyFeed } from './body-feed.ts'

export type Edit = Exclude<ModificationReply, { kind: 'replaceBody' | 'quarantine' }>

/** Collects one end of message's changes; the replaced body streams into the message at once. */
export class Changes {
  readonly edits: Edit[] = []
  readonly quarantine: string[] = []
  #editBytes = 0
  readonly #maxEditBytes: number
  readonly #msg: Message
  #feed: BodyFeed | undefined
  #replacing: Promise<void> | undefined
  /** Set when our side could not write the new body (a spool error, not the milter's fault). */
  localError: Error | undefined

  constructor(msg: Message, maxEditBytes: number) {
    this.#msg = msg
    this.#maxEditBytes = maxEditBytes
  }

  readonly sink: ModificationSink = {
    modification: (m) => {
      if (m.kind === 'quarantine') {
        this.quarantine.push(m.reason)
        return
      }
      this.#editBytes += editSize(m)
      if (this.#editBytes > this.#maxEditBytes)
        throw new MilterError('oversize', `more than ${this.#maxEditBytes} octets of header and envelope changes`)
      this.edits.push(m)
    },
    replaceBody: async (chunk) => {
      if (this.#feed === undefined) {
        const feed = new BodyFeed()
        this.#feed = feed
        this.#replacing = this.#msg.replaceBody(feed.chunks()).catch((e: Error) => {
          this.localError ??= e
          throw e
        })
        this.#replacing.catch(() => {})
      }
      await this.#feed.push(chunk)
    },
  }

  get bodyReplaced(): boolean {
    return this.#feed !== undefined
  }

  /** The milter accepted: the new body is swapped in (rejects on a spool error). */
  async commitBody(): Promise<void> {
    this.#feed?.end()
    await this.#replacing
  }

  /** The milter refused, discarded or failed: the old body stays. */
  async dropBody(why: Error): Promise<void> {
    this.#feed?.fail(why)
    await this.#replacing?.catch(() => {})
  }
}

const editSize = (m: Edit): number => {
  switch (m.kind) {
    case 'addHeader':
    case 'insertHeader':
    case 'changeHeader':
      return m.name.length + m.value.length
    case 'addRecipient':
    case 'changeSender':
      return m.address.length + (m.args?.length ?? 0)
    case 'removeRecipient':
      return m.address.length
  }
}

/** The header fields the milter sees: all but our own Received. */
export function visibleFields(fields: readonly HeaderField[], own: string | undefined): HeaderField[] {
  const at = ownReceivedIndex(fields, own)
  return at === -1 ? [...fields] : fields.filter((_, i) => i !== at)
}

function ownReceivedIndex(fields: readonly HeaderField[], own: string | undefined): number {
  if (own === undefined) return -1
  const value = unfold(own)
  return fields.findIndex(
    (f) => f.name.toLowerCase() === 'received' && unfold(f.raw.toString('utf8', f.raw.indexOf(0x3a) + 1)) === value,
  )
}

/** RFC 5322 §2.2.3 unfolding, then the spaces around the value trimmed. */
const unfold = (text: string): string => text.replace(/\r\n(?=[ \t])/g, '').trim()

/**
 * A field's value as Sendmail sends it: the bytes after the colon without the final CRLF, folds
 * as LF, and (unless the milter asked for leading spaces) without the one space after the colon.
 */
export function wireValue(f: HeaderField, leadingSpace: boolean): Buffer {
  let value = f.raw.subarray(f.raw.indexOf(0x3a) + 1)
  if (value.length >= 2 && value[value.length - 2] === 0x0d && value[value.length - 1] === 0x0a)
    value = value.subarray(0, -2)
  if (!leadingSpace && value[0] === 0x20) value = value.subarray(1)
  return value.includes(0x0d) ? Buffer.from(value.toString('latin1').replace(/\r\n/g, '\n'), 'latin1') : value
}

/** A value from the milter as our header API takes it: folds as CRLF, our `: ` before it. */
function headerText(value: string, leadingSpace: boolean): string {
  const text = value.replace(/\r?\n/g, '\r\n').replace(/(?:\r\n)+$/, '')
  return leadingSpace && text.startsWith(' ') ? text.slice(1) : text
}

/** Applies the held changes in the milter's order; a change the API refuses throws. */
export function applyEdits(
  ctx: TxnContext,
  msg: Message,
  edits: readonly Edit[],
  protocol: number,
  own: string | undefined,
) {
  const lead = (protocol & Protocol.headerLeadingSpace) !== 0
  const txn = ctx.transaction
  for (const m of edits) {
    switch (m.kind) {
      case 'addHeader':
        msg.headers.add(m.name, headerText(m.value, lead))
        break
      case 'insertHeader':
        // Sendmail's index 0 is the top, above our Received (Postfix: the message as delivered).
        msg.headers.insert(m.index, m.name, headerText(m.value, lead))
        break
      case 'changeHeader':
        changeHeader(msg, m.name, m.index, headerText(m.value, lead), own)
        break
      case 'addRecipient':
        txn.addRecipient(m.address, m.args ?? '')
        break
      case 'removeRecipient':
        txn.removeRecipient(m.address)
        break
      case 'changeSender':
        txn.setSender(m.address, m.args ?? '')
        break
    }
  }
}

/**
 * SMFIR_CHGHEADER: the `index`-th field of that name (from 1; 0 counts as 1, as Sendmail does)
 * among those the milter saw; an empty value removes it; a missing field is added.
 */
function changeHeader(msg: Message, name: string, index: number, value: string, own: string | undefined) {
  const fields = msg.headers.fields
  const ownAt = ownReceivedIndex(fields, own)
  const key = name.toLowerCase()
  let seen = 0
  let ofName = 0
  let at: number | undefined
  for (const [i, f] of fields.entries()) {
    if (f.name.toLowerCase() !== key) continue
    if (i !== ownAt && ++seen === Math.max(index, 1)) {
      at = ofName
      break
    }
    ofName++
  }
  if (value === '') {
    if (at !== undefined) msg.headers.remove(name, at)
  } else if (at === undefined || !msg.headers.change(name, at, value)) msg.headers.add(name, value)
}

/** How many header fields were sent (for the log line), and the first field's macros. */
export async function sendHeaders(
  session: MilterSession,
  fields: readonly HeaderField[],
  eohMacros: (name: string) => string | undefined,
  signal: AbortSignal,
) {
  const lead = (session.negotiated.protocol & Protocol.headerLeadingSpace) !== 0
  let macros: typeof eohMacros | undefined = eohMacros
  for (const f of fields) {
    const d = await session.header(f.name, wireValue(f, lead), macros, signal)
    macros = undefined
    if (d.kind !== 'continue') return d
  }
  return session.endOfHeaders(macros, signal)
}
