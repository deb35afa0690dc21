/**
 * Random fuzzer for the SMTP framer (src/protocol/codec.ts): `node test/fuzz/codec.fuzz.ts [seconds]`.
 *
 * Feeds byte mixes rich in CR, LF, ".", NUL and SMTP verbs, split at random boundaries, through a small
 * session stand-in (`drive`), and checks: no throw; chunked and whole feeding give the same events; both
 * match a naive byte-at-a-time reference framer; under 'normalize' content never holds a bare CR or LF.
 * Seeded, so a failure prints a seed and the input that reproduce it.
 */
import { type CodecEvent, type ContentResult, type MessageScanOptions, SmtpCodec } from '../../src/protocol/codec.ts'
import { forSeconds, rng } from './random.ts'

/** What a session sees, with content merged per data-end, so that chunk boundaries do not matter. */
export type Rec =
  | { readonly kind: 'cmd'; readonly line: string }
  | { readonly kind: 'err'; readonly error: string }
  | {
      readonly kind: 'end'
      readonly message: number // counts beginMessage() calls
      readonly last: boolean // end of DATA, or of BDAT ... LAST
      readonly content: string
      readonly result: ContentResult
    }
  | { readonly kind: 'partial'; readonly content: string }

/** The part of SmtpCodec that drive() uses, so the reference framer can stand in for it. */
export interface Framer {
  push(chunk: Buffer): void
  next(): CodecEvent | undefined
  beginMessage(opts: MessageScanOptions): void
  startData(): void
  startBdat(size: number, last?: boolean): void
}

export const defaultScan: MessageScanOptions = {
  maxMessageSize: 1 << 20,
  maxLineLength: 998,
  bareLineEndings: 'reject',
  binary: false,
}

/**
 * Feeds `pieces` one push at a time and drains events like a session would: `DATA` starts a message,
 * `BDAT n [LAST]` a chunk (the first chunk of a message also calls beginMessage).
 */
export function drive(codec: Framer, pieces: readonly Buffer[], scan: MessageScanOptions = defaultScan): Rec[] {
  const recs: Rec[] = []
  let content: Buffer[] = []
  let inBdat = false
  let message = 0
  let last = false
  for (const piece of pieces) {
    codec.push(piece)
    for (let ev = codec.next(); ev !== undefined; ev = codec.next()) {
      switch (ev.type) {
        case 'command': {
          const line = ev.line.toString('latin1')
          recs.push({ kind: 'cmd', line })
          const bdat = /^BDAT (\d+)( LAST)?$/.exec(line)
          if (line === 'DATA') {
            codec.beginMessage(scan)
            message++
            inBdat = false
            last = true
            codec.startData()
          } else if (bdat !== null) {
            if (!inBdat) {
              codec.beginMessage(scan)
              message++
            }
            last = bdat[2] !== undefined
            inBdat = !last
            codec.startBdat(Number(bdat[1]), last)
          }
          break
        }
        case 'command-error':
          recs.push({ kind: 'err', error: ev.error })
          break
        case 'data':
          content.push(ev.chunk)
          break
        case 'data-end':
          recs.push({
            kind: 'end',
            message,
            last,
            content: Buffer.concat(content).toString('latin1'),
            result: ev.result,
          })
          content = []
          break
      }
    }
  }
  if (content.length > 0) recs.push({ kind: 'partial', content: Buffer.concat(content).toString('latin1') })
  return recs
}

/** Splits `input` at the given offsets. */
export function splitAt(input: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = []
  let from = 0
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut > from && cut < input.length) {
      out.push(input.subarray(from, cut))
      from = cut
    }
  }
  out.push(input.subarray(from))
  return out
}

const CR = 13
const LF = 10
const DOT = 46

/**
 * A deliberately naive framer: one byte at a time, one-byte data events, written from the framing rules
 * rather than from codec.ts, so the two can disagree.
 */
export class ReferenceFramer implements Framer {
  #in: number[] = []
  #at = 0
  #mode: 'command' | 'data' | 'bdat' = 'command'
  #limit: number
  #discarding = false
  #scan = defaultScan
  #remaining = 0
  #last = false
  #lineStart = false
  #prevCr = false
  #out: number[] = []
  #size = 0
  #bareLf = 0
  #bareCr = 0
  #lineLen = 0
  #longLine = false

  constructor(limit = 512) {
    this.#limit = limit
  }

  push(chunk: Buffer): void {
    this.#in.push(...chunk)
  }

  beginMessage(opts: MessageScanOptions): void {
    this.#scan = opts
    this.#size = this.#bareLf = this.#bareCr = this.#lineLen = 0
    this.#longLine = this.#prevCr = false
  }

  startData(): void {
    this.#mode = 'data'
    this.#lineStart = true
  }

  startBdat(size: number, last = false): void {
    this.#mode = 'bdat'
    this.#remaining = size
    this.#last = last
  }

  next(): CodecEvent | undefined {
    for (;;) {
      const queued = this.#out.shift()
      if (queued !== undefined) return { type: 'data', chunk: Buffer.from([queued]) }
      if (this.#mode === 'command') return this.#command()
      const ev = this.#content()
      if (ev !== null) return ev
    }
  }

  #command(): CodecEvent | undefined {
    for (;;) {
      const lf = this.#in.indexOf(LF, this.#at)
      const avail = this.#in.length - this.#at
      if (this.#discarding) {
        // Only a real CRLF ends the line being discarded; the CR may have been consumed already.
        // Every bare LF on the way is reported.
        if (lf < 0) {
          this.#at = this.#in.length
          return undefined
        }
        this.#at = lf + 1
        if (lf > 0 && this.#in[lf - 1] === CR) this.#discarding = false
        else return { type: 'command-error', error: 'bare-lf' }
        continue
      }
      if (lf < 0) {
        if (avail === 0 || avail < this.#limit) return undefined
        this.#at = this.#in.length
        this.#discarding = true
        return { type: 'command-error', error: 'too-long' }
      }
      const line = this.#in.slice(this.#at, lf + 1)
      this.#at = lf + 1
      const crlf = line.length >= 2 && line[line.length - 2] === CR
      if (line.length > this.#limit) {
        if (!crlf) {
          this.#discarding = true
          this.#at = lf
        }
        return { type: 'command-error', error: 'too-long' }
      }
      if (!crlf) {
        this.#discarding = true
        return { type: 'command-error', error: 'bare-lf' }
      }
      const body = line.slice(0, -2)
      if (body.includes(CR)) return { type: 'command-error', error: 'bare-cr' }
      if (body.includes(0)) return { type: 'command-error', error: 'nul' }
      return { type: 'command', line: Buffer.from(body) }
    }
  }

  /** One input byte (or the end of a chunk); null when there is nothing to report yet. */
  #content(): CodecEvent | undefined | null {
    const normalize = this.#scan.bareLineEndings === 'normalize'
    if (this.#mode === 'bdat' && this.#remaining === 0) {
      if (this.#last && this.#prevCr) {
        this.#prevCr = false
        this.#bareCr++
        if (normalize) this.#emit(LF)
        return null
      }
      this.#mode = 'command'
      return { type: 'data-end', result: this.#result() }
    }
    const avail = this.#in.length - this.#at
    if (avail === 0) return undefined
    const x = this.#in[this.#at]!
    if (this.#mode === 'data' && this.#lineStart && x === DOT) {
      const a = this.#in[this.#at + 1]
      const b = this.#in[this.#at + 2]
      if (a === undefined || (a === CR && b === undefined)) return undefined
      this.#at++
      this.#lineStart = false
      if (a === CR && b === LF) {
        this.#at += 2
        this.#mode = 'command'
        return { type: 'data-end', result: this.#result() }
      }
      return null
    }
    this.#lineStart = false
    this.#at++
    if (this.#mode === 'bdat') this.#remaining--
    if (this.#mode === 'bdat' && this.#scan.binary) {
      this.#emit(x)
      return null
    }
    if (this.#prevCr) {
      this.#prevCr = false
      if (x === LF) {
        this.#emit(LF)
        this.#lineStart = this.#mode === 'data'
        return null
      }
      this.#bareCr++
      if (normalize) this.#emit(LF)
    }
    if (x === CR) {
      this.#lineLen = 0
      this.#prevCr = true
      this.#emit(CR)
    } else if (x === LF) {
      this.#lineLen = 0
      this.#bareLf++
      if (normalize) this.#emit(CR)
      this.#emit(LF)
    } else {
      if (++this.#lineLen > this.#scan.maxLineLength) this.#longLine = true
      this.#emit(x)
    }
    return null
  }

  #emit(byte: number): void {
    if (++this.#size <= this.#scan.maxMessageSize) this.#out.push(byte)
  }

  #result(): ContentResult {
    return {
      size: this.#size,
      overSize: this.#size > this.#scan.maxMessageSize,
      bareLf: this.#bareLf,
      bareCr: this.#bareCr,
      longLine: this.#longLine,
    }
  }
}

const TOKENS = [
  '\r',
  '\n',
  '\r\n',
  '.',
  '\0',
  'a',
  'xyz ',
  '\r\n.\r\n',
  '\r\n.',
  '.\r\n',
  '..',
  'DATA\r\n',
  'BDAT 0\r\n',
  'BDAT 3\r\n',
  'BDAT 7 LAST\r\n',
  'BDAT 0 LAST\r\n',
  'MAIL FROM:<a@b.test>\r\n',
  'QUIT\r\n',
]

function randomInput(rand: () => number): Buffer {
  const parts: string[] = []
  const n = 1 + Math.floor(rand() * 40)
  for (let i = 0; i < n; i++) {
    const r = rand()
    if (r < 0.05) parts.push('y'.repeat(Math.floor(rand() * 80)))
    else if (r < 0.1) parts.push(String.fromCharCode(Math.floor(rand() * 256)))
    else parts.push(TOKENS[Math.floor(rand() * TOKENS.length)]!)
  }
  return Buffer.from(parts.join(''), 'latin1')
}

/** A CR or LF in `content` that is not part of a CRLF. */
const hasBareEnding = (content: string): boolean => /\r(?!\n)|(?<!\r)\n/.test(content)

const show = (s: string): string => JSON.stringify(s)

/** Runs random cases for about `seconds`; throws with a reproducible description on the first failure. */
export async function fuzzCodec(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const more = forSeconds(seconds)
  let iterations = 0
  while (more()) {
    for (let batch = 0; batch < 50; batch++, iterations++) {
      const input = randomInput(rand)
      const limit = rand() < 0.5 ? 24 : 512
      const scan: MessageScanOptions = {
        maxMessageSize: rand() < 0.3 ? Math.floor(rand() * 20) : 1 << 20,
        maxLineLength: rand() < 0.3 ? Math.floor(rand() * 10) : 998,
        bareLineEndings: rand() < 0.5 ? 'normalize' : 'reject',
        binary: rand() < 0.15,
      }
      const cuts = Array.from({ length: Math.floor(rand() * 6) }, () => Math.floor(rand() * input.length))
      const fail = (what: string): never => {
        throw new Error(
          `codec fuzz: ${what}\nseed=${seed} iteration=${iterations} limit=${limit} scan=${JSON.stringify(scan)}` +
            ` cuts=${JSON.stringify(cuts)}\ninput=${show(input.toString('latin1'))}`,
        )
      }
      let whole: Rec[] = []
      let chunked: Rec[] = []
      let bytewise: Rec[] = []
      let reference: Rec[] = []
      try {
        whole = drive(new SmtpCodec({ maxCommandLine: limit }), [input], scan)
        chunked = drive(new SmtpCodec({ maxCommandLine: limit }), splitAt(input, cuts), scan)
        bytewise = drive(
          new SmtpCodec({ maxCommandLine: limit }),
          Array.from(input, (_, i) => input.subarray(i, i + 1)),
          scan,
        )
        reference = drive(new ReferenceFramer(limit), [input], scan)
      } catch (err) {
        fail(`threw ${String(err)}`)
      }
      const w = JSON.stringify(whole)
      if (JSON.stringify(chunked) !== w) fail(`chunked differs\nwhole=  ${w}\nchunked=${JSON.stringify(chunked)}`)
      if (JSON.stringify(bytewise) !== w) fail(`bytewise differs\nwhole=   ${w}\nbytewise=${JSON.stringify(bytewise)}`)
      if (JSON.stringify(reference) !== w)
        fail(`reference differs\nwhole=    ${w}\nreference=${JSON.stringify(reference)}`)
      if (scan.bareLineEndings === 'normalize' && !scan.binary) {
        // Whole messages only: a BDAT chunk may end between the CR and LF of a pair, and so may the size limit.
        let content = ''
        let message = 0
        for (const r of whole) {
          if (r.kind !== 'end') continue
          if (r.message !== message) content = ''
          message = r.message
          content += r.content
          if (!r.last) continue
          if (!r.result.overSize && hasBareEnding(content))
            fail(`bare ending in message ${r.message}: ${show(content)}`)
          content = ''
        }
      }
    }
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
  return { iterations }
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  const { iterations } = await fuzzCodec(seconds, seed)
  console.log(`codec fuzz: ${iterations} cases in ${seconds} s, seed ${seed}, no failures`)
}
