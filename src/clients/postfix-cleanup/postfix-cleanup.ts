/**
 * A client for Postfix's cleanup service, as smtpd(8) and pickup(8) use it: the attribute
 * protocol (attr_print0: `name\0value\0`, a list ends with `\0`) around a stream of queue-file
 * records (type byte, base-128 little-endian length, data; src/global/record.c, rec_type.h).
 * cleanup answers `queue_id` first and, after the END record, `status` and `reason`; status 0
 * means the queue file is fsynced and in the incoming queue. Does not speak the TCP-only
 * `attr_print_plain` variant; cleanup over TCP (qpsmtpd's host:port form) uses the same 0-format.
 */
import { createConnection, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { MailParams, RcptParams } from '../../protocol/envelope.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

export const cleanupFlags = {
  FLAG_NONE: 0,
  FLAG_BOUNCE: 1 << 0,
  FLAG_FILTER: 1 << 1,
  FLAG_HOLD: 1 << 2,
  FLAG_DISCARD: 1 << 3,
  FLAG_BCC_OK: 1 << 4,
  FLAG_MAP_OK: 1 << 5,
  FLAG_MILTER: 1 << 6,
  FLAG_SMTP_REPLY: 1 << 7,
  FLAG_SMTPUTF8: 1 << 8,
  FLAG_AUTOUTF8: 1 << 9,
  FLAG_FILTER_ALL: (1 << 1) | (1 << 6),
  FLAG_MASK_EXTERNAL: (1 << 1) | (1 << 6) | (1 << 4) | (1 << 5),
  FLAG_MASK_INTERNAL: 1 << 5,
} as const
export type CleanupFlagName = keyof typeof cleanupFlags

/** cleanup_strerror.c: most severe first, as cleanup_stat_detail() picks the first match. */
const statusMap: readonly { bit: number; code: number; enhanced: EnhancedCode; text: string }[] = [
  { bit: 1 << 8, code: 451, enhanced: '4.7.1', text: 'service unavailable' },
  { bit: 1 << 7, code: 451, enhanced: '4.3.0', text: 'queue file write error' },
  { bit: 1 << 0, code: 451, enhanced: '4.3.0', text: 'internal protocol error' },
  { bit: 1 << 6, code: 550, enhanced: '5.1.0', text: 'no recipients specified' },
  { bit: 1 << 4, code: 554, enhanced: '5.4.0', text: 'too many hops' },
  { bit: 1 << 2, code: 552, enhanced: '5.3.4', text: 'message file too big' },
  { bit: 1 << 3, code: 550, enhanced: '5.7.1', text: 'message content rejected' },
  { bit: 1 << 1, code: 451, enhanced: '4.3.0', text: 'queue file write error' },
  { bit: 1 << 9, code: 550, enhanced: '5.7.1', text: 'service denied' },
]

/** The SMTP reply for a non-zero cleanup status, using cleanup's reason when it has one. */
export function cleanupStatusReply(
  status: number,
  reason: string | undefined,
): { code: number; enhanced: EnhancedCode; text: string } {
  const d = statusMap.find((s) => (s.bit & status) !== 0) ?? {
    code: 451,
    enhanced: '4.3.0' as EnhancedCode,
    text: `unknown cleanup status ${status}`,
  }
  // cleanup's reasons start with a DSN code ("5.7.1 no thanks") when a header_checks or milter spoke.
  const m = /^([245])\.(\d{1,3})\.(\d{1,3}) (.*)$/s.exec(reason ?? '')
  const clean = (s: string) => s.replace(/[^\x20-\x7e]/g, ' ').slice(0, 400)
  // Content and policy refusals may be temporary ("REJECT 4.7.1 ..."), as qmqpd(8) honours.
  const code = m !== null && d.code === 550 ? (m[1] === '4' ? 451 : 550) : d.code
  if (m !== null && m[1] === String(code)[0])
    return { code, enhanced: `${m[1]}.${m[2]}.${m[3]}` as EnhancedCode, text: clean(m[4] ?? '') }
  return { code: d.code, enhanced: d.enhanced, text: clean(reason || d.text) }
}

/** One queue-file record. */
export function record(type: string, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data
  const len: number[] = []
  let n = body.length
  while (n >= 0x80) {
    len.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  len.push(n)
  return Buffer.concat([Buffer.from(type, 'latin1'), Buffer.from(len), body])
}

/** An attribute list in attr_print0 form. */
export function attrList(attrs: Readonly<Record<string, string>>): Buffer {
  const parts: string[] = []
  for (const [k, v] of Object.entries(attrs)) parts.push(`${k}\0${v}\0`)
  return Buffer.from(`${parts.join('')}\0`, 'utf8')
}

/** Reads attr_print0 lists from a byte stream. */
export class AttrReader {
  private buf: Buffer = Buffer.alloc(0)
  private current: Record<string, string> = {}
  private readonly lists: Record<string, string>[] = []
  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    if (this.buf.length > 65_536) throw new Error('cleanup attribute list too long')
    for (;;) {
      const a = this.buf.indexOf(0)
      if (a === -1) return
      if (a === 0) {
        this.lists.push(this.current)
        this.current = {}
        this.buf = this.buf.subarray(1)
        continue
      }
      const b = this.buf.indexOf(0, a + 1)
      if (b === -1) return
      this.current[this.buf.subarray(0, a).toString('utf8')] = this.buf.subarray(a + 1, b).toString('utf8')
      this.buf = this.buf.subarray(b + 1)
    }
  }
  shift(): Record<string, string> | undefined {
    return this.lists.shift()
  }
}

/** Splits a message into content records: one NORM per line (no line end), CONT for long pieces. */
export async function* contentRecords(message: AsyncIterable<Buffer>, maxRecord = 2048): AsyncGenerator<Buffer> {
  let line: Buffer[] = []
  let lineLen = 0
  const flushPiece = (type: 'N' | 'L', trimCr: boolean): Buffer => {
    let data: Buffer = Buffer.concat(line)
    if (trimCr && data.length > 0 && data[data.length - 1] === 0x0d) data = data.subarray(0, -1)
    line = []
    lineLen = 0
    return record(type, data)
  }
  for await (const chunk of message) {
    let start = 0
    for (;;) {
      const lf = chunk.indexOf(0x0a, start)
      const end = lf === -1 ? chunk.length : lf
      line.push(chunk.subarray(start, end))
      lineLen += end - start
      if (lf === -1) break
      yield flushPiece('N', true)
      start = lf + 1
    }
    // A long line goes out in CONT pieces; keep a trailing CR back in case LF follows.
    while (lineLen > maxRecord) {
      const all = Buffer.concat(line)
      line = [all.subarray(0, maxRecord)]
      const rest = all.subarray(maxRecord)
      yield flushPiece('L', false)
      line = [rest]
      lineLen = rest.length
    }
  }
  if (lineLen > 0) yield flushPiece('N', true)
}

/** RET and NOTIFY as the bit masks Postfix keeps (src/global/dsn_mask.h). */
const dsnRetBits = { FULL: 1 << 0, HDRS: 1 << 1 } as const
const dsnNotifyBits = { NEVER: 1 << 0, SUCCESS: 1 << 1, FAILURE: 1 << 2, DELAY: 1 << 3 } as const

/**
 * MAIL's DSN parameters as the named attributes smtpd(8) sends cleanup before the sender
 * (smtpd.c mail_open_stream): `envelope_id` (decoded: Postfix encodes it again when it relays)
 * and `ret_flags`. Absent parameters stay absent (RFC 3461 §5.2.1: a relay must not make them up).
 */
export function dsnMailAttributes(p: MailParams): Record<string, string> {
  return {
    ...(p.envid === undefined ? {} : { envelope_id: p.envid }),
    ...(p.ret === undefined ? {} : { ret_flags: String(dsnRetBits[p.ret]) }),
  }
}

/** RCPT's DSN parameters as smtpd(8)'s attributes before the recipient: `notify_flags`, `dsn_orig_rcpt`. */
export function dsnRcptAttributes(p: RcptParams): Record<string, string> {
  const notify = p.notify?.reduce((bits, n) => bits | dsnNotifyBits[n], 0)
  return {
    ...(notify === undefined ? {} : { notify_flags: String(notify) }),
    ...(p.orcpt === undefined ? {} : { dsn_orig_rcpt: `${p.orcpt.type};${p.orcpt.address}` }),
  }
}

export interface CleanupRecipient {
  readonly address: string
  /** `A` records sent just before the recipient (notify_flags, dsn_orig_rcpt), as smtpd(8) does. */
  readonly attributes: Readonly<Record<string, string>>
}

export interface InjectRequest {
  readonly sockets: readonly string[]
  readonly flags: number
  readonly sender: string
  readonly recipients: readonly CleanupRecipient[]
  /** Extra `A` records (name=value) before the sender, e.g. rewrite_context=remote, envelope_id. */
  readonly attributes: Readonly<Record<string, string>>
  readonly message: () => AsyncIterable<Buffer>
  readonly timeoutMs: number
  readonly signal?: AbortSignal
}

export type InjectResult =
  | { readonly ok: true; readonly queueId: string; readonly socket: string }
  | { readonly ok: false; readonly queueId: string | undefined; readonly status: number; readonly reason: string }

function connectTo(target: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const m = /^(.*):(\d+)$/.exec(target)
    const sock = target.startsWith('/')
      ? createConnection({ path: target })
      : createConnection({ host: (m?.[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(m?.[2]) })
    const t = setTimeout(() => sock.destroy(new Error(`connect to ${target} timed out`)), timeoutMs)
    sock.once('connect', () => {
      clearTimeout(t)
      resolve(sock)
    })
    sock.once('error', (e) => {
      clearTimeout(t)
      reject(e)
    })
  })
}

/** Hands one message to cleanup. Never throws: failures come back as `{ ok: false }` (status -1 = ours). */
export async function injectMessage(req: InjectRequest): Promise<InjectResult> {
  let sock: Socket | undefined
  let socketName = ''
  const errors: string[] = []
  for (const s of req.sockets) {
    try {
      sock = await connectTo(s, Math.min(req.timeoutMs, 10_000))
      socketName = s
      break
    } catch (e) {
      errors.push(`${s}: ${(e as Error).message}`)
    }
  }
  if (sock === undefined) return { ok: false, queueId: undefined, status: -1, reason: errors.join('; ') }
  const conn = sock
  const reader = new AttrReader()
  let waiting: (() => void) | undefined
  let failure: Error | undefined
  conn.on('data', (d: Buffer) => {
    try {
      reader.push(d)
    } catch (e) {
      failure = e as Error
      conn.destroy()
    }
    waiting?.()
  })
  conn.on('error', (e) => {
    failure ??= e
    waiting?.()
  })
  conn.on('close', () => {
    failure ??= new Error('cleanup closed the connection')
    waiting?.()
  })
  const timer = setTimeout(() => conn.destroy(new Error('cleanup did not answer in time')), req.timeoutMs)
  const onAbort = () => conn.destroy(new Error('aborted'))
  req.signal?.addEventListener('abort', onAbort, { once: true })
  const nextList = async (): Promise<Record<string, string>> => {
    for (;;) {
      const l = reader.shift()
      if (l !== undefined) return l
      if (failure !== undefined) throw failure
      await new Promise<void>((r) => {
        waiting = r
      })
      waiting = undefined
    }
  }
  let queueId: string | undefined
  try {
    // Postfix ≥ 3.7 puts `protocol` in the same list as queue_id; later versions may send it alone.
    while (queueId === undefined) queueId = (await nextList()).queue_id
    const head = [
      attrList({ flags: String(req.flags) }),
      record('T', `${Math.floor(Date.now() / 1000)} ${(Date.now() % 1000) * 1000}`),
      ...Object.entries(req.attributes).map(([k, v]) => record('A', `${k}=${v}`)),
      record('S', req.sender),
      ...req.recipients.flatMap((r) => [
        ...Object.entries(r.attributes).map(([k, v]) => record('A', `${k}=${v}`)),
        record('R', r.address),
      ]),
      record('M', ''),
    ]
    async function* all(): AsyncGenerator<Buffer> {
      yield Buffer.concat(head)
      yield* contentRecords(req.message())
      yield Buffer.concat([record('X', ''), record('E', '')])
    }
    await pipeline(Readable.from(all()), conn, { end: false })
    const answer = await nextList()
    const status = Number(answer.status ?? 'NaN')
    if (!Number.isInteger(status)) throw new Error(`cleanup sent no status (${JSON.stringify(answer)})`)
    if (status === 0) return { ok: true, queueId, socket: socketName }
    return { ok: false, queueId, status, reason: answer.reason ?? '' }
  } catch (e) {
    return { ok: false, queueId, status: -1, reason: `${socketName}: ${(e as Error).message}` }
  } finally {
    clearTimeout(timer)
    req.signal?.removeEventListener('abort', onAbort)
    conn.destroy()
  }
}
