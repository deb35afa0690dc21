/**
 * A client of p0f 3's API socket (p0f's docs/README §4 and api.h): a 21-byte query naming a
 * host (magic, address type, 16 address bytes), a 232-byte answer with what p0f saw of it (the
 * OS, network distance, uptime, link type, ...). Both are in the host's byte order: p0f runs on
 * the same machine (a Unix socket). One connection per query, under one deadline.
 *
 * p0f answers for a host, not a connection: it keeps the last fingerprint of each address.
 * p0f 2's protocol (magic 0x0defaced, per connection) is not spoken: p0f 2 was last released
 * in 2006 and no current system ships it.
 * Security: the answer is a fixed size; its strings are checked to be printable ASCII, since
 * they end up in header fields and logs.
 */
import { endianness } from 'node:os'
import type { ConnectTarget } from '../../net/index.ts'
import { parseIp } from '../../net/ip.ts'
import { type Connector, exchange, ScannerError, writeOne } from '../exchange.ts'

const QUERY_MAGIC = 0x50304601
const RESPONSE_MAGIC = 0x50304602
const STATUS_BADQUERY = 0x00
const STATUS_OK = 0x10
const STATUS_NOMATCH = 0x20
const ADDR_IPV4 = 0x04
const ADDR_IPV6 = 0x06
const MATCH_FUZZY = 0x01
const MATCH_GENERIC = 0x02
export const QUERY_BYTES = 21
export const RESPONSE_BYTES = 232
const STRING_BYTES = 32

const littleEndian = endianness() === 'LE'

/** What p0f knows of a host (api.h `struct p0f_api_response`); unknown fields are absent. */
export interface P0fAnswer {
  /** Unix time of the first and the last packet p0f saw from the host. */
  readonly firstSeen: number
  readonly lastSeen: number
  readonly totalConnections: number
  readonly uptimeMinutes?: number
  /** Days after which the uptime counter wraps (with uptimeMinutes). */
  readonly uptimeWrapDays?: number
  /** Unix time p0f last saw signs of address sharing (NAT), and of an OS change. */
  readonly lastNat?: number
  readonly lastChange?: number
  /** Network hops. */
  readonly distance?: number
  /** The software the host claims (HTTP User-Agent) contradicts its TCP fingerprint. */
  readonly badSoftware: 'none' | 'os mismatch' | 'mismatch'
  readonly osName?: string
  readonly osFlavor?: string
  /** The signature matched only approximately (fuzzy) or is a generic one. */
  readonly fuzzy: boolean
  readonly generic: boolean
  readonly httpName?: string
  readonly httpFlavor?: string
  /** "Ethernet or modem", "DSL", "IPIP or SIT", ... (from the MTU). */
  readonly linkType?: string
  readonly language?: string
}

/** p0f has no record of the host (it saw no packet of it yet, or its filter skips it). */
export type P0fResult = { readonly status: 'ok'; readonly answer: P0fAnswer } | { readonly status: 'nomatch' }

export interface P0fOptions {
  readonly connect: Connector
  /** p0f's API socket (`p0f -s PATH`). */
  readonly target: ConnectTarget
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
}

/** The 21-byte query for an address; undefined for text that is not an IP address. */
export function p0fQuery(ip: string): Buffer | undefined {
  const parsed = parseIp(ip)
  if (parsed === undefined) return undefined
  const q = Buffer.alloc(QUERY_BYTES)
  if (littleEndian) q.writeUInt32LE(QUERY_MAGIC, 0)
  else q.writeUInt32BE(QUERY_MAGIC, 0)
  if (parsed.family === 4) {
    q[4] = ADDR_IPV4
    q.writeUInt32BE(parsed.value, 5)
  } else {
    q[4] = ADDR_IPV6
    for (let i = 0; i < 16; i++) q[5 + i] = Number((parsed.value >> BigInt(8 * (15 - i))) & 0xffn)
  }
  return q
}

/** Asks p0f about `ip`. Throws ScannerError when p0f cannot be asked or answers wrongly. */
export async function p0fLookup(ip: string, o: P0fOptions): Promise<P0fResult> {
  const query = p0fQuery(ip)
  if (query === undefined) throw new ScannerError('malformed', `not an IP address: ${ip}`)
  const reply = await exchange({
    connect: o.connect,
    target: o.target,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    maxReplyBytes: RESPONSE_BYTES,
    write: (socket, signal) => writeOne(socket, query, signal),
    complete: (received) => {
      // A wrong magic is known from the first 4 bytes: no need to wait for the rest.
      if (received.length >= 4 && u32(received, 0) !== RESPONSE_MAGIC)
        throw new ScannerError('malformed', `p0f answered with magic 0x${u32(received, 0).toString(16)}`)
      return received.length >= RESPONSE_BYTES ? RESPONSE_BYTES : undefined
    },
  })
  return parseP0fResponse(reply)
}

/** The 232-byte answer. Throws ScannerError for a wrong magic, a refused query or bad strings. */
export function parseP0fResponse(r: Buffer): P0fResult {
  if (r.length !== RESPONSE_BYTES)
    throw new ScannerError('malformed', `p0f answered ${r.length} bytes, not ${RESPONSE_BYTES}`)
  if (u32(r, 0) !== RESPONSE_MAGIC)
    throw new ScannerError('malformed', `p0f answered with magic 0x${u32(r, 0).toString(16)}`)
  const status = u32(r, 4)
  if (status === STATUS_NOMATCH) return { status: 'nomatch' }
  if (status === STATUS_BADQUERY) throw new ScannerError('refused', 'p0f refused the query as malformed')
  if (status !== STATUS_OK) throw new ScannerError('malformed', `p0f answered with status 0x${status.toString(16)}`)
  const distance = littleEndian ? r.readInt16LE(36) : r.readInt16BE(36)
  const badSw = r[38] as number
  const quality = r[39] as number
  const text = (n: number, name: string): string | undefined => {
    const field = r.subarray(40 + n * STRING_BYTES, 40 + (n + 1) * STRING_BYTES)
    const end = field.indexOf(0)
    const s = field.subarray(0, end < 0 ? field.length : end).toString('latin1')
    if (!/^[\x20-\x7e]*$/.test(s)) throw new ScannerError('malformed', `p0f's ${name} is not printable text`)
    return s === '' ? undefined : s
  }
  const positive = (n: number) => (n === 0 ? undefined : n)
  const answer: P0fAnswer = {
    firstSeen: u32(r, 8),
    lastSeen: u32(r, 12),
    totalConnections: u32(r, 16),
    ...defined('uptimeMinutes', positive(u32(r, 20))),
    ...defined('uptimeWrapDays', positive(u32(r, 24))),
    ...defined('lastNat', positive(u32(r, 28))),
    ...defined('lastChange', positive(u32(r, 32))),
    ...defined('distance', distance < 0 ? undefined : distance),
    badSoftware: badSw === 0 ? 'none' : badSw === 1 ? 'os mismatch' : 'mismatch',
    fuzzy: (quality & MATCH_FUZZY) !== 0,
    generic: (quality & MATCH_GENERIC) !== 0,
    ...defined('osName', text(0, 'OS name')),
    ...defined('osFlavor', text(1, 'OS flavor')),
    ...defined('httpName', text(2, 'HTTP software')),
    ...defined('httpFlavor', text(3, 'HTTP software flavor')),
    ...defined('linkType', text(4, 'link type')),
    ...defined('language', text(5, 'language')),
  }
  return { status: 'ok', answer }
}

const u32 = (b: Buffer, at: number): number => (littleEndian ? b.readUInt32LE(at) : b.readUInt32BE(at))

/** `{ key: value }`, or nothing for undefined (exactOptionalPropertyTypes). */
const defined = <K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: V }
