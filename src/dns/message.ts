/**
 * DNS messages (RFC 1035 §4.1): the query we send, with an EDNS0 OPT record (RFC 6891), and
 * the checks on what comes back. Record data is decoded by dns-packet; the framing around it
 * (header, one question, each record's RDLENGTH) is checked here, so that a record whose data
 * does not fill exactly its RDLENGTH is malformed instead of shifting the records after it.
 * Security: a datagram whose id, question or flags do not match our query is ignored, not
 * believed (RFC 5452 §9.1); anything that does not parse is a failure, never an answer.
 */
import packet from 'dns-packet'
import { formatIPv6, parseIPv6 } from '../net/ip.ts'
import { type QueryName, sameName } from './name.ts'
import type { RecordData, RecordType } from './types.ts'

/** dns-packet's per-part codecs, which it exports but its type definitions leave out. */
interface PartCodec<T> {
  readonly decode: ((buf: Buffer, offset?: number) => T) & { readonly bytes: number }
}
interface DecodedRecord {
  readonly name: string
  readonly type: string
  readonly ttl?: number
  readonly data?: unknown
}
const codec = packet as unknown as { readonly name: PartCodec<string>; readonly answer: PartCodec<DecodedRecord> }

const TYPE_CODES: Readonly<Record<RecordType | 'SOA' | 'OPT', number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
}
const CLASS_IN = 1
const FLAG_QR = 0x8000
const FLAG_TC = 0x0200
const FLAG_RD = 0x0100
const OPCODE_MASK = 0x7800

export const Rcode = { NoError: 0, FormErr: 1, ServFail: 2, NxDomain: 3, NotImp: 4, Refused: 5 } as const
const RCODE_NAMES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED']
export const rcodeName = (rcode: number): string => RCODE_NAMES[rcode] ?? `RCODE ${rcode}`

/** A standard recursive query for one name and type; `ednsUdpSize` 0 sends none. */
export function encodeQuery(id: number, qname: QueryName, type: RecordType, ednsUdpSize: number): Buffer {
  const opt = ednsUdpSize > 0 ? 11 : 0
  const buf = Buffer.alloc(12 + qname.wire.length + 4 + opt)
  buf.writeUInt16BE(id, 0)
  buf.writeUInt16BE(FLAG_RD, 2)
  buf.writeUInt16BE(1, 4)
  buf.writeUInt16BE(opt > 0 ? 1 : 0, 10)
  let at = 12 + qname.wire.copy(buf, 12)
  at = buf.writeUInt16BE(TYPE_CODES[type], at)
  at = buf.writeUInt16BE(CLASS_IN, at)
  if (opt > 0) {
    // Root owner, type OPT, CLASS = our UDP payload size, TTL 0 (version 0, no DO bit), no options.
    at = buf.writeUInt8(0, at)
    at = buf.writeUInt16BE(TYPE_CODES.OPT, at)
    buf.writeUInt16BE(ednsUdpSize, at)
  }
  return buf
}

export interface ResourceRecord {
  readonly name: string
  readonly type: string
  readonly ttl: number
  readonly data: unknown
}

export type Response =
  /** Not an answer to our query (forged, stale or misdirected). */
  | { readonly status: 'ignore' }
  /** The answer to our query, but broken. */
  | { readonly status: 'malformed'; readonly detail: string }
  | {
      readonly status: 'ok'
      readonly rcode: number
      readonly truncated: boolean
      readonly answers: readonly ResourceRecord[]
      readonly authorities: readonly ResourceRecord[]
    }

/** Checks that `buf` answers query `id` for `qname`/`type`, then decodes its records. */
export function parseResponse(buf: Buffer, id: number, qname: QueryName, type: RecordType): Response {
  if (buf.length < 12 || buf.readUInt16BE(0) !== id) return { status: 'ignore' }
  const flags = buf.readUInt16BE(2)
  if ((flags & FLAG_QR) === 0 || (flags & OPCODE_MASK) !== 0) return { status: 'ignore' }
  const rcode = flags & 0xf
  const counts = [4, 6, 8].map((at) => buf.readUInt16BE(at)) as [number, number, number]
  // A server that does not understand the query may answer FORMERR or NOTIMP without echoing it.
  if (counts[0] === 0 && rcode !== Rcode.NoError && rcode !== Rcode.NxDomain)
    return { status: 'ok', rcode, truncated: false, answers: [], authorities: [] }
  let at = 12
  try {
    if (counts[0] !== 1) return { status: 'ignore' }
    const question = codec.name.decode(buf, at)
    at += codec.name.decode.bytes
    if (at + 4 > buf.length) return { status: 'ignore' }
    if (!sameName(question, qname.text)) return { status: 'ignore' }
    if (buf.readUInt16BE(at) !== TYPE_CODES[type] || buf.readUInt16BE(at + 2) !== CLASS_IN) return { status: 'ignore' }
    at += 4
  } catch {
    return { status: 'ignore' }
  }
  // A truncated answer is cut anywhere; its records are not read (RFC 2181 §9).
  if ((flags & FLAG_TC) !== 0) return { status: 'ok', rcode, truncated: true, answers: [], authorities: [] }
  try {
    const answers: ResourceRecord[] = []
    const authorities: ResourceRecord[] = []
    for (const [count, list] of [
      [counts[1], answers],
      [counts[2], authorities],
    ] as const) {
      for (let i = 0; i < count; i++) {
        const { record, next } = decodeRecord(buf, at)
        list.push(record)
        at = next
      }
    }
    return { status: 'ok', rcode, truncated: false, answers, authorities }
  } catch (e) {
    return { status: 'malformed', detail: `malformed answer: ${(e as Error).message}` }
  }
}

function decodeRecord(buf: Buffer, at: number): { record: ResourceRecord; next: number } {
  codec.name.decode(buf, at)
  const fixed = at + codec.name.decode.bytes
  if (fixed + 10 > buf.length) throw new Error('record header past the end')
  const next = fixed + 10 + buf.readUInt16BE(fixed + 8)
  if (next > buf.length) throw new Error('record data past the end')
  const rr = codec.answer.decode(buf, at)
  if (at + codec.answer.decode.bytes !== next) throw new Error(`${rr.type} record data does not match its length`)
  return {
    record: { name: rr.name, type: rr.type, ttl: rr.ttl ?? 0, data: rr.data ?? null },
    next,
  }
}

/** One record's data in the shape plugins get; undefined for data that cannot be that type. */
export function recordData<T extends RecordType>(type: T, data: unknown): RecordData[T] | undefined {
  return convert[type](data) as RecordData[T] | undefined
}

const hostName = (d: unknown) => (typeof d === 'string' ? d : undefined)
const convert: { readonly [T in RecordType]: (data: unknown) => RecordData[T] | undefined } = {
  A: hostName,
  AAAA: (d) => {
    const n = typeof d === 'string' ? parseIPv6(d) : undefined
    return n === undefined ? undefined : formatIPv6(n)
  },
  TXT: (d) =>
    Array.isArray(d) && d.every((s) => Buffer.isBuffer(s)) ? d.map((s: Buffer) => s.toString('utf8')) : undefined,
  MX: (d) => {
    const mx = d as { preference?: unknown; exchange?: unknown } | null
    return typeof mx?.exchange === 'string' && typeof mx.preference === 'number'
      ? { exchange: mx.exchange, priority: mx.preference }
      : undefined
  },
  PTR: hostName,
  CNAME: hostName,
  NS: hostName,
}

/** RFC 2308 §5: a negative answer lives as long as the SOA record's TTL and MINIMUM allow. */
export function negativeTtl(authorities: readonly ResourceRecord[]): number {
  const soa = authorities.find((r) => r.type === 'SOA')
  if (soa === undefined) return 0
  const minimum = (soa.data as { minimum?: number } | null)?.minimum ?? 0
  return Math.min(soa.ttl, minimum)
}
