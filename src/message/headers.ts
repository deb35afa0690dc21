/**
 * The header section of a message, parsed once and editable by plugins.
 *
 * Each field keeps its raw bytes (name, folded continuation lines, final CRLF), so untouched
 * fields are written back byte for byte, 8-bit content included (RFC 5322 §2.2, RFC 6532).
 * Values are decoded as UTF-8 for reading only. Added fields are folded at whitespace near
 * 78 characters (RFC 5322 §2.1.1, §2.2.3). Parsing lives in header-scanner.ts.
 * Security: names and values from plugins are checked: no bare CR, LF or NUL (header injection).
 */
import { fieldFromRaw, HeaderScanner, isFtext } from './header-scanner.ts'

export interface HeaderField {
  /** The field name as received (case preserved). */
  readonly name: string
  /** The complete field: name, value, folded continuation lines and the final CRLF. */
  readonly raw: Buffer
}

export class HeaderBlock {
  #fields: HeaderField[]
  #edited = false

  constructor(fields: readonly HeaderField[] = []) {
    this.#fields = [...fields]
  }

  /**
   * Splits a complete message held in memory. The MessageSpool does the same incrementally.
   * @example
   * const { headers, body } = HeaderBlock.parse(Buffer.from('Subject: hi\r\n\r\nbody\r\n'))
   */
  static parse(message: Buffer): { headers: HeaderBlock; body: Buffer; hasSeparator: boolean } {
    const scanner = new HeaderScanner(Number.POSITIVE_INFINITY)
    const body = [...(scanner.push(message) ?? []), ...scanner.end()]
    return { headers: new HeaderBlock(scanner.fields), body: Buffer.concat(body), hasSeparator: scanner.hasSeparator }
  }

  get fields(): readonly HeaderField[] {
    return this.#fields
  }

  /** True once a field was added, removed or renamed. */
  get edited(): boolean {
    return this.#edited
  }

  /** Size in bytes of toBuffer(). */
  get byteLength(): number {
    let n = 0
    for (const f of this.#fields) n += f.raw.length
    return n
  }

  /** The unfolded values of all fields with this name (case-insensitive), in order. */
  get(name: string): string[] {
    return this.#matching(name).map(fieldValue)
  }

  first(name: string): string | undefined {
    const f = this.#matching(name)[0]
    return f === undefined ? undefined : fieldValue(f)
  }

  count(name: string): number {
    return this.#matching(name).length
  }

  /**
   * Appends a field at the end of the header section.
   * @example headers.add('X-Spam-Status', 'No, score=0.1')
   */
  add(name: string, value: string): void {
    this.#fields.push(makeField(name, value))
    this.#edited = true
  }

  /** Inserts a field at the top (trace fields such as Received, RFC 5322 §3.6.7). */
  prepend(name: string, value: string): void {
    this.#fields.unshift(makeField(name, value))
    this.#edited = true
  }

  /**
   * Inserts a field before the field at `position` in the whole section (0 = at the top; the
   * length or more = at the end), as milter's SMFIR_INSHEADER does.
   * @example headers.insert(1, 'X-Scanned', 'yes') // below the Received field on top
   */
  insert(position: number, name: string, value: string): void {
    if (!Number.isSafeInteger(position) || position < 0) throw new RangeError('header position: an integer from 0')
    this.#fields.splice(Math.min(position, this.#fields.length), 0, makeField(name, value))
    this.#edited = true
  }

  /**
   * Gives the `index`-th field called `name` (0 = the first) a new value in place, keeping the
   * name as received; returns false, changing nothing, when there is no such field. Milter's
   * SMFIR_CHGHEADER counts from 1 and adds the field when it is missing.
   * @example headers.change('Subject', 0, '[SPAM] Hello')
   */
  change(name: string, index: number, value: string): boolean {
    const at = this.#position(name, index)
    if (at === undefined) return false
    this.#fields[at] = makeField((this.#fields[at] as HeaderField).name, value)
    this.#edited = true
    return true
  }

  /**
   * Removes every field with this name, or only its `index`-th one (0 = the first); returns how
   * many were removed.
   */
  remove(name: string, index?: number): number {
    if (index !== undefined) {
      const at = this.#position(name, index)
      if (at === undefined) return 0
      this.#fields.splice(at, 1)
      this.#edited = true
      return 1
    }
    const before = this.#fields.length
    const key = name.toLowerCase()
    this.#fields = this.#fields.filter((f) => f.name.toLowerCase() !== key)
    const removed = before - this.#fields.length
    if (removed > 0) this.#edited = true
    return removed
  }

  /**
   * Renames every field called `from` in place, keeping its value bytes; returns the count.
   * @example headers.rename('Authentication-Results', 'Original-Authentication-Results')
   */
  rename(from: string, to: string): number {
    checkName(to)
    const key = from.toLowerCase()
    let n = 0
    this.#fields = this.#fields.map((f) => {
      if (f.name.toLowerCase() !== key) return f
      n++
      return fieldFromRaw(Buffer.concat([Buffer.from(to, 'latin1'), f.raw.subarray(f.name.length)]))
    })
    if (n > 0) this.#edited = true
    return n
  }

  /** The header section as bytes, without the empty line that separates it from the body. */
  toBuffer(): Buffer {
    return Buffer.concat(this.#fields.map((f) => f.raw))
  }

  /** Where the `index`-th field called `name` is in the section. */
  #position(name: string, index: number): number | undefined {
    if (!Number.isSafeInteger(index) || index < 0) throw new RangeError('header index: an integer from 0')
    const key = name.toLowerCase()
    let seen = 0
    for (const [at, f] of this.#fields.entries()) {
      if (f.name.toLowerCase() === key && seen++ === index) return at
    }
    return undefined
  }

  #matching(name: string): HeaderField[] {
    const key = name.toLowerCase()
    return this.#fields.filter((f) => f.name.toLowerCase() === key)
  }
}

function fieldValue(f: HeaderField): string {
  const colon = f.raw.indexOf(0x3a)
  return f.raw
    .toString('utf8', colon + 1)
    .replace(/\r\n(?=[ \t])/g, '') // RFC 5322 §2.2.3 unfolding: remove the CRLF, keep the WSP
    .replace(/^[ \t]+/, '')
    .replace(/[ \t\r\n]+$/, '')
}

function checkName(name: string): void {
  if (name.length === 0 || name.length > 200) throw new TypeError('header name: 1 to 200 characters')
  for (let i = 0; i < name.length; i++) {
    if (!isFtext(name.charCodeAt(i))) throw new TypeError(`header name ${JSON.stringify(name)}: not RFC 5322 ftext`)
  }
}

/**
 * A value may contain CR and LF only as folding (CRLF followed by SP or HTAB, the new line not
 * blank), never a NUL: anything else would let a plugin inject a field or end the header section.
 */
function checkValue(value: string): void {
  if (/\0/.test(value)) throw new TypeError('header value contains NUL')
  const lines = value.split('\r\n')
  for (const [i, line] of lines.entries()) {
    if (/[\r\n]/.test(line)) throw new TypeError('header value contains a bare CR or LF')
    if (i > 0 && !/^[ \t]+[^ \t]/.test(line)) throw new TypeError('header value: CRLF is allowed only as folding')
  }
}

/** Throws what add() would throw for this field: for edits that are checked now and made later. */
export function checkField(name: string, value: string): void {
  checkName(name)
  checkValue(value)
}

function makeField(name: string, value: string): HeaderField {
  checkField(name, value)
  const text = value.includes('\r\n') ? `${name}: ${value}\r\n` : foldHeader(name, value)
  return { name, raw: Buffer.from(text, 'utf8') }
}

/**
 * Renders `Name: value\r\n`, folding at whitespace so that lines stay within 78 characters
 * where the value allows it (RFC 5322 §2.1.1). Words longer than a line are not split.
 * @example foldHeader('Subject', 'a long subject ...') // 'Subject: a long ...\r\n\tsubject ...\r\n'
 */
export function foldHeader(name: string, value: string, width = 78): string {
  const words = value.split(/(?=[ \t])/) // each word keeps its leading whitespace
  let out = `${name}:`
  let line = out.length
  let first = true
  for (const word of words) {
    const w = first && !/^[ \t]/.test(word) ? ` ${word}` : word
    first = false
    if (line + w.length > width && line > 0 && /^[ \t]/.test(w) && /[^ \t]/.test(w) && out.length > name.length + 1) {
      out += `\r\n${w}`
      line = w.length
    } else {
      out += w
      line += w.length
    }
  }
  return `${out}\r\n`
}
