/**
 * Milter packets as bytes: a 4-octet big-endian length (command letter included), the letter,
 * then the data. Encoding builds our commands; decoding turns a filter's reply packet into a
 * typed value and refuses what does not parse exactly (a string without its NUL, data left
 * over, data after a reply that has none), as Postfix's milter8.c does.
 * Security: strings we send may not contain NUL, which would end them early and let text from
 * the SMTP client appear to the filter as another argument.
 */
import { type CommandLetter, ReplyLetter } from './constants.ts'
import { MilterError } from './errors.ts'

/** An argument of a command: a NUL-terminated string (or bytes), or raw data as it is. */
export type Part =
  | { readonly string: string | Buffer }
  | { readonly raw: Buffer }
  | { readonly u32: number }
  | { readonly u16: number }
  | { readonly octet: string }

const NUL = Buffer.of(0)

/** One command packet. */
export function encodePacket(letter: CommandLetter, parts: readonly Part[] = []): Buffer {
  const chunks: Buffer[] = [Buffer.alloc(4), Buffer.from(letter, 'latin1')]
  for (const p of parts) {
    if ('string' in p) {
      const bytes = typeof p.string === 'string' ? Buffer.from(p.string, 'utf8') : p.string
      if (bytes.includes(0)) throw new MilterError('malformed', `a string for the milter contains NUL`)
      chunks.push(bytes, NUL)
    } else if ('raw' in p) chunks.push(p.raw)
    else if ('u32' in p) {
      const b = Buffer.alloc(4)
      b.writeUInt32BE(p.u32 >>> 0)
      chunks.push(b)
    } else if ('u16' in p) {
      const b = Buffer.alloc(2)
      b.writeUInt16BE(p.u16 & 0xffff)
      chunks.push(b)
    } else chunks.push(Buffer.from(p.octet, 'latin1').subarray(0, 1))
  }
  const packet = Buffer.concat(chunks)
  packet.writeUInt32BE(packet.length - 4)
  return packet
}

/** The packet header alone, for data sent after it without a copy (body chunks). */
export function packetHeader(letter: CommandLetter, dataLength: number): Buffer {
  const b = Buffer.alloc(5)
  b.writeUInt32BE(dataLength + 1)
  b.write(letter, 4, 'latin1')
  return b
}

export type SimpleReply =
  | 'continue'
  | 'accept'
  | 'reject'
  | 'tempfail'
  | 'discard'
  | 'progress'
  | 'skip'
  | 'shutdown'
  | 'connectionFailure'

/** A reply packet, decoded. Header values stay bytes' UTF-8 reading; LF inside is folding. */
export type FilterReply =
  | {
      readonly kind: 'negotiate'
      readonly version: number
      readonly actions: number
      readonly protocol: number
      /** Macro names the filter wants, by stage number (SMFIM_*), space-separated as sent. */
      readonly symbolLists: ReadonlyMap<number, string>
    }
  | { readonly kind: SimpleReply }
  | { readonly kind: 'replyCode'; readonly text: string }
  | { readonly kind: 'addHeader'; readonly name: string; readonly value: string }
  | { readonly kind: 'insertHeader'; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: 'changeHeader'; readonly index: number; readonly name: string; readonly value: string }
  | { readonly kind: 'addRecipient'; readonly address: string; readonly args: string | undefined }
  | { readonly kind: 'removeRecipient'; readonly address: string }
  | { readonly kind: 'changeSender'; readonly address: string; readonly args: string | undefined }
  | { readonly kind: 'replaceBody'; readonly chunk: Buffer }
  | { readonly kind: 'quarantine'; readonly reason: string }

export type ModificationReply = Extract<
  FilterReply,
  {
    kind:
      | 'addHeader'
      | 'insertHeader'
      | 'changeHeader'
      | 'addRecipient'
      | 'removeRecipient'
      | 'changeSender'
      | 'replaceBody'
      | 'quarantine'
  }
>

const simple: Readonly<Record<string, SimpleReply>> = {
  [ReplyLetter.continue]: 'continue',
  [ReplyLetter.accept]: 'accept',
  [ReplyLetter.reject]: 'reject',
  [ReplyLetter.tempfail]: 'tempfail',
  [ReplyLetter.discard]: 'discard',
  [ReplyLetter.progress]: 'progress',
  [ReplyLetter.skip]: 'skip',
  [ReplyLetter.shutdown]: 'shutdown',
  [ReplyLetter.connectionFailure]: 'connectionFailure',
}

/** Reads the data of one packet, front to back; every misstep is a MilterError('malformed'). */
class Fields {
  readonly #data: Buffer
  readonly #what: string
  #at = 0

  constructor(data: Buffer, what: string) {
    this.#data = data
    this.#what = what
  }

  get remaining(): number {
    return this.#data.length - this.#at
  }

  u32(): number {
    if (this.remaining < 4) throw this.#bad('too short for a 32-bit number')
    const n = this.#data.readUInt32BE(this.#at)
    this.#at += 4
    return n
  }

  string(): string {
    const end = this.#data.indexOf(0, this.#at)
    if (end === -1) throw this.#bad('a string without its NUL')
    const s = this.#data.toString('utf8', this.#at, end)
    this.#at = end + 1
    return s
  }

  /** The rest, without one trailing NUL (reply texts and reasons are sent either way). */
  text(): string {
    const end = this.#data.length > this.#at && this.#data[this.#data.length - 1] === 0 ? -1 : 0
    const s = this.#data.toString('utf8', this.#at, this.#data.length + end)
    this.#at = this.#data.length
    if (s.includes('\0')) throw this.#bad('a NUL inside the text')
    return s
  }

  end(): void {
    if (this.remaining > 0) throw this.#bad(`${this.remaining} octets left over`)
  }

  #bad(why: string): MilterError {
    return new MilterError('malformed', `malformed ${this.#what} packet: ${why}`)
  }
}

/** Decodes one reply packet (letter and data). */
export function decodeReply(letter: string, data: Buffer): FilterReply {
  const kind = simple[letter]
  if (kind !== undefined) {
    if (data.length > 0) throw new MilterError('malformed', `reply "${letter}" followed by ${data.length} octets`)
    return { kind }
  }
  const f = new Fields(data, `"${letter}"`)
  switch (letter) {
    case 'O': {
      const version = f.u32()
      const actions = f.u32()
      const protocol = f.u32()
      const symbolLists = new Map<number, string>()
      while (f.remaining > 0) {
        const stage = f.u32()
        symbolLists.set(stage, f.string())
      }
      return { kind: 'negotiate', version, actions, protocol, symbolLists }
    }
    case ReplyLetter.replyCode:
      return { kind: 'replyCode', text: f.text() }
    case ReplyLetter.quarantine:
      return { kind: 'quarantine', reason: f.text() }
    case ReplyLetter.replaceBody:
      return { kind: 'replaceBody', chunk: data }
    case ReplyLetter.addHeader: {
      const name = f.string()
      const value = f.string()
      f.end()
      return { kind: 'addHeader', name, value }
    }
    case ReplyLetter.insertHeader:
    case ReplyLetter.changeHeader: {
      const index = f.u32()
      const name = f.string()
      const value = f.string()
      f.end()
      return { kind: letter === ReplyLetter.insertHeader ? 'insertHeader' : 'changeHeader', index, name, value }
    }
    case ReplyLetter.addRecipient:
    case ReplyLetter.removeRecipient: {
      const address = f.string()
      f.end()
      return letter === ReplyLetter.addRecipient
        ? { kind: 'addRecipient', address, args: undefined }
        : { kind: 'removeRecipient', address }
    }
    case ReplyLetter.addRecipientWithArgs:
    case ReplyLetter.changeSender: {
      const address = f.string()
      const args = f.remaining > 0 ? f.string() : undefined
      f.end()
      return letter === ReplyLetter.changeSender
        ? { kind: 'changeSender', address, args }
        : { kind: 'addRecipient', address, args }
    }
    default:
      throw new MilterError('unexpected', `unknown reply "${printable(letter)}"`)
  }
}

/** A reply letter for a log line: itself when printable, else its code. */
export const printable = (letter: string): string =>
  /^[\x21-\x7e]$/.test(letter) ? letter : `0x${letter.charCodeAt(0).toString(16).padStart(2, '0')}`
