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

export type { BodySource, HeaderField }

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
  const h = () => content.headers
  const edit = (operation: string) => window.check('header', `msg.headers.${operation}`)
  const headers: MessageHeaders = Object.freeze({
    get fields() {
      return Object.freeze(h().fields.map((f) => Object.freeze({ name: f.name, raw: Buffer.from(f.raw) })))
    },
    get byteLength() {
      return h().byteLength
    },
    get: (name: string) => h().get(name),
    first: (name: string) => h().first(name),
    count: (name: string) => h().count(name),
    add: (name: string, value: string) => {
      edit('add')
      h().add(name, value)
    },
    prepend: (name: string, value: string) => {
      edit('prepend')
      h().prepend(name, value)
    },
    insert: (position: number, name: string, value: string) => {
      edit('insert')
      h().insert(position, name, value)
    },
    change: (name: string, index: number, value: string) => {
      edit('change')
      return h().change(name, index, value)
    },
    remove: (name: string, index?: number) => {
      edit('remove')
      return h().remove(name, index)
    },
    rename: (from: string, to: string) => {
      edit('rename')
      return h().rename(from, to)
    },
  })
  return Object.freeze({
    get size() {
      return content.size
    },
    get bodySize() {
      return content.bodySize
    },
    headers,
    get bodyReplaced() {
      return content.bodyReplaced
    },
    bodyStream: () => content.bodyStream(),
    bodyPath: () => content.bodyPath(),
    stream: (opts?: MessageStreamOptions) => content.stream(opts),
    replaceBody: async (source: BodySource) => {
      window.check('body', 'msg.replaceBody')
      await content.replaceBody(source)
    },
  })
}
