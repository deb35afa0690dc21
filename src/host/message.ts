/**
 * The message as plugins see it from dataHeadersEnd on: its size, the header section to read and
 * edit, the body to read (as often as needed) or replace, and the whole message as the queue
 * receives it. Plugins get a view made here, never the spool: receiving, ending and cleaning up
 * the message stay with the core, and every edit passes the EditWindow's check.
 */
import type { Readable } from 'node:stream'
import type { HeaderField } from '../message/headers.ts'
import type { BodySource, MessageContent } from '../message/message-content.ts'
import type { EditWindow } from './edit-window.ts'
import { defineKey } from './keys.ts'

export type { BodySource, HeaderField }

/**
 * The value of the Received field the core put on top of the message before dataPost. Filters
 * that show the message as the client sent it (milter, as Sendmail and Postfix do) find it by
 * this value and leave it out.
 */
export const OwnReceived = defineKey<string | undefined>('core/own-received', {
  scope: 'transaction',
  initial: undefined,
})

/**
 * The header section: fields in order, names case-insensitive. Untouched fields keep their bytes;
 * new values are checked (no bare CR, LF or NUL: header injection) and folded. Edits are allowed
 * from dataHeadersEnd to queuePre.
 */
export interface MessageHeaders {
  /** Every field in order, as a copy: editing goes through the methods below. */
  readonly fields: readonly HeaderField[]
  /** Size in octets of the section (without the empty line after it). */
  readonly byteLength: number
  /** The unfolded values of all fields with this name, in order. */
  get(name: string): string[]
  first(name: string): string | undefined
  count(name: string): number
  /** Appends a field at the end of the section (milter SMFIR_ADDHEADER). */
  add(name: string, value: string): void
  /** Inserts a field at the top. */
  prepend(name: string, value: string): void
  /** Inserts before the field at `position` among all fields, 0 = top (milter SMFIR_INSHEADER). */
  insert(position: number, name: string, value: string): void
  /**
   * Gives the `index`-th field called `name` (0 = first) a new value in place; false when there
   * is none (milter SMFIR_CHGHEADER counts from 1 and adds the field when it is missing).
   */
  change(name: string, index: number, value: string): boolean
  /** Removes every field with this name, or only its `index`-th one; returns how many went. */
  remove(name: string, index?: number): number
  /** Renames every field called `from`, keeping the value bytes; returns how many. */
  rename(from: string, to: string): number
}

export interface MessageStreamOptions {
  /** Complete header fields, each ending in CRLF, put before the message (Return-Path, Delivered-To). */
  readonly prepend?: readonly Buffer[]
}

/**
 * The message after DATA. Reads work in every hook that gets it; edits only where the
 * EditWindow allows them (docs/plugins.md "The message").
 *
 * @example
 * const dataPost: DataPostHook = async (_ctx, msg) => {
 *   msg.headers.add('X-Scanned', 'yes')
 *   if (msg.size < 1_000_000) await msg.replaceBody(scrub(msg.bodyStream()))
 *   return pass()
 * }
 */
export interface Message {
  /** Octets of stream() now: header section as edited, the empty line, the body. */
  readonly size: number
  /** Octets of the body now. */
  readonly bodySize: number
  readonly headers: MessageHeaders
  /** True once replaceBody() has swapped in a new body. */
  readonly bodyReplaced: boolean
  /** A new stream over the body on each call (as received, or as replaced). */
  bodyStream(): Readable
  /**
   * The body as a file (written now if it was in memory), for scanners that want a path.
   * The file is removed when the body is replaced and when the transaction ends.
   */
  bodyPath(): Promise<string>
  /** A new stream of the whole message, as the queue receives it. */
  stream(opts?: MessageStreamOptions): Readable
  /**
   * Replaces the body (dataPost and queuePre only). The new body is spooled like a received one
   * (memory up to the threshold, then a file), swapped in when complete, and the old one removed;
   * bare CR and LF become CRLF (not for BODY=BINARYMIME). Rejects, keeping the old body, when the
   * source fails or the spool cannot write.
   */
  replaceBody(source: BodySource): Promise<void>
}

/** The view plugins get of one message; the core keeps `content` and `window`. */
export function messageView(content: MessageContent, window: EditWindow): Message {
  return new MessageView(content, window)
}

// Classes with private fields, frozen: nothing of the content or the window is reachable, no
// method can be swapped for the plugins that come next, and a view costs a few hundred
// nanoseconds (object literals with accessors cost microseconds each, per message).

class HeadersView implements MessageHeaders {
  readonly #content: MessageContent
  readonly #window: EditWindow

  constructor(content: MessageContent, window: EditWindow) {
    this.#content = content
    this.#window = window
    Object.freeze(this)
  }

  get fields(): readonly HeaderField[] {
    return Object.freeze(
      this.#content.headers.fields.map((f) => Object.freeze({ name: f.name, raw: Buffer.from(f.raw) })),
    )
  }

  get byteLength(): number {
    return this.#content.headers.byteLength
  }

  get(name: string): string[] {
    return this.#content.headers.get(name)
  }

  first(name: string): string | undefined {
    return this.#content.headers.first(name)
  }

  count(name: string): number {
    return this.#content.headers.count(name)
  }

  add(name: string, value: string): void {
    this.#edit('add').add(name, value)
  }

  prepend(name: string, value: string): void {
    this.#edit('prepend').prepend(name, value)
  }

  insert(position: number, name: string, value: string): void {
    this.#edit('insert').insert(position, name, value)
  }

  change(name: string, index: number, value: string): boolean {
    return this.#edit('change').change(name, index, value)
  }

  remove(name: string, index?: number): number {
    return this.#edit('remove').remove(name, index)
  }

  rename(from: string, to: string): number {
    return this.#edit('rename').rename(from, to)
  }

  #edit(operation: string) {
    this.#window.check('header', `msg.headers.${operation}`)
    return this.#content.headers
  }
}
Object.freeze(HeadersView.prototype)

class MessageView implements Message {
  readonly headers: MessageHeaders
  readonly #content: MessageContent
  readonly #window: EditWindow

  constructor(content: MessageContent, window: EditWindow) {
    this.#content = content
    this.#window = window
    this.headers = new HeadersView(content, window)
    Object.freeze(this)
  }

  get size(): number {
    return this.#content.size
  }

  get bodySize(): number {
    return this.#content.bodySize
  }

  get bodyReplaced(): boolean {
    return this.#content.bodyReplaced
  }

  bodyStream(): Readable {
    return this.#content.bodyStream()
  }

  bodyPath(): Promise<string> {
    return this.#content.bodyPath()
  }

  stream(opts?: MessageStreamOptions): Readable {
    return this.#content.stream(opts)
  }

  async replaceBody(source: BodySource): Promise<void> {
    this.#window.check('body', 'msg.replaceBody')
    await this.#content.replaceBody(source)
  }
}
Object.freeze(MessageView.prototype)
