/**
 * HAProxy PROXY protocol v1 (text) and v2 (binary) header parser: pure, incremental (call it
 * with everything received so far), with a size cap. v1 TCP4/TCP6/UNKNOWN; v2 PROXY/LOCAL
 * over INET/INET6 STREAM (UNSPEC and UNIX give `local`: use the socket's own addresses), and
 * the TLVs ALPN, AUTHORITY, UNIQUE_ID and SSL (version, CN, cipher, signature/key algorithms);
 * a CRC32C TLV is verified and a header whose checksum does not match is refused (spec §2.2.1).
 * Spec: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt.
 * Security: strict address syntax (no octal octets), bounded work and size, never guesses.
 */

import type { ProxySsl, ProxyTlvs } from '../host/connection-keys.ts'
import type { Peer } from '../host/context.ts'
import { crc32c } from '../net/crc32c.ts'
import { formatIPv6, parseIPv4, parseIPv6 } from '../net/ip.ts'

export type ProxyHeader =
  | {
      readonly command: 'proxy'
      readonly version: 1 | 2
      readonly source: Peer
      readonly destination: Peer
      readonly tlvs: ProxyTlvs
    }
  /** v1 UNKNOWN, v2 LOCAL or a v2 family we do not route: use the connection's own addresses. */
  | { readonly command: 'local'; readonly version: 1 | 2; readonly tlvs: ProxyTlvs }

export type ProxyParse =
  | { readonly status: 'incomplete' }
  | { readonly status: 'error'; readonly reason: string }
  | { readonly status: 'done'; readonly header: ProxyHeader; readonly length: number }

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
const V1_PREFIX = Buffer.from('PROXY ', 'latin1')
/** v1 headers are at most 107 bytes with the CRLF (spec §2.1). */
const V1_MAX = 107
export const defaultMaxHeader = 4096

const noTlvs: ProxyTlvs = Object.freeze({ alpn: undefined, authority: undefined, uniqueId: undefined, ssl: undefined })

/** Whether a connection's first bytes start with a PROXY header signature (v1 or v2). */
export function looksLikeProxyHeader(buf: Buffer): boolean {
  return (
    (buf.length >= 6 && buf.subarray(0, 6).equals(V1_PREFIX)) ||
    (buf.length >= 12 && buf.subarray(0, 12).equals(V2_SIGNATURE))
  )
}

export function parseProxyHeader(buf: Buffer, maxHeader = defaultMaxHeader): ProxyParse {
  if (buf.length === 0) return { status: 'incomplete' }
  if (buf[0] === 0x0d) return parseV2(buf, maxHeader)
  if (buf[0] === 0x50) return parseV1(buf)
  return { status: 'error', reason: 'not a PROXY protocol header' }
}

// --- v1 ----------------------------------------------------------------------------------

const PORT = /^(?:0|[1-9]\d{0,4})$/

function parseV1(buf: Buffer): ProxyParse {
  const head = buf.subarray(0, Math.min(buf.length, V1_PREFIX.length))
  if (!head.equals(V1_PREFIX.subarray(0, head.length)))
    return { status: 'error', reason: 'not a PROXY protocol header' }
  const window = buf.subarray(0, V1_MAX)
  const lf = window.indexOf(0x0a)
  if (lf >= 0 && window[lf - 1] !== 0x0d) return { status: 'error', reason: 'v1 header: bare LF' }
  const end = window.indexOf('\r\n')
  if (end < 0) {
    if (buf.length >= V1_MAX) return { status: 'error', reason: 'v1 header longer than 107 bytes' }
    return { status: 'incomplete' }
  }
  const line = buf.subarray(0, end).toString('latin1')
  const parts = line.split(' ')
  const length = end + 2
  if (parts[1] === 'UNKNOWN') return { status: 'done', header: { command: 'local', version: 1, tlvs: noTlvs }, length }
  if (parts.length !== 6) return { status: 'error', reason: 'v1 header: expected 6 fields' }
  const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string]
  if (proto !== 'TCP4' && proto !== 'TCP6') return { status: 'error', reason: `v1 header: unknown protocol ${proto}` }
  const valid = proto === 'TCP4' ? (a: string) => parseIPv4(a) !== undefined : (a: string) => isV6Text(a)
  if (!valid(src) || !valid(dst)) return { status: 'error', reason: `v1 header: bad ${proto} address` }
  if (!PORT.test(sport) || !PORT.test(dport) || Number(sport) > 65535 || Number(dport) > 65535)
    return { status: 'error', reason: 'v1 header: bad port' }
  const ip = (a: string) => (proto === 'TCP4' ? a : formatIPv6(parseIPv6(a) as bigint))
  return {
    status: 'done',
    header: {
      command: 'proxy',
      version: 1,
      source: { ip: ip(src), port: Number(sport) },
      destination: { ip: ip(dst), port: Number(dport) },
      tlvs: noTlvs,
    },
    length,
  }
}

const isV6Text = (a: string): boolean => a.includes(':') && !a.includes('%') && parseIPv6(a) !== undefined

// --- v2 ----------------------------------------------------------------------------------

function parseV2(buf: Buffer, maxHeader: number): ProxyParse {
  const sig = buf.subarray(0, Math.min(buf.length, 12))
  if (!sig.equals(V2_SIGNATURE.subarray(0, sig.length)))
    return { status: 'error', reason: 'not a PROXY protocol header' }
  if (buf.length < 16) return { status: 'incomplete' }
  const verCmd = buf[12] as number
  const fam = buf[13] as number
  const len = buf.readUInt16BE(14)
  if (verCmd >> 4 !== 2) return { status: 'error', reason: `v2 header: version ${verCmd >> 4}` }
  const cmd = verCmd & 0x0f
  if (cmd > 1) return { status: 'error', reason: `v2 header: unknown command ${cmd}` }
  if (16 + len > maxHeader) return { status: 'error', reason: `v2 header of ${16 + len} bytes exceeds ${maxHeader}` }
  if (buf.length < 16 + len) return { status: 'incomplete' }
  const body = buf.subarray(16, 16 + len)
  const length = 16 + len
  const family = fam >> 4
  const transport = fam & 0x0f
  const addrLen = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0
  if (family > 3) return { status: 'error', reason: `v2 header: unknown address family ${family}` }
  if (len < addrLen) return { status: 'error', reason: 'v2 header: address block truncated' }
  const tlvs = parseTlvs(buf.subarray(0, length), 16 + addrLen)
  if (typeof tlvs === 'string') return { status: 'error', reason: `v2 header: ${tlvs}` }
  if (cmd === 0 || family === 0 || family === 3)
    return { status: 'done', header: { command: 'local', version: 2, tlvs }, length }
  if (transport !== 1) return { status: 'error', reason: 'v2 header: not a stream (TCP) connection' }
  const half = family === 1 ? 4 : 16
  const addr = (at: number): string =>
    family === 1
      ? [...body.subarray(at, at + 4)].join('.')
      : formatIPv6(body.readBigUInt64BE(at) * 2n ** 64n + body.readBigUInt64BE(at + 8))
  return {
    status: 'done',
    header: {
      command: 'proxy',
      version: 2,
      source: { ip: addr(0), port: body.readUInt16BE(2 * half) },
      destination: { ip: addr(half), port: body.readUInt16BE(2 * half + 2) },
      tlvs,
    },
    length,
  }
}

const TLV = { alpn: 0x01, authority: 0x02, crc32c: 0x03, uniqueId: 0x05, ssl: 0x20 } as const
const SSL_SUB = { version: 0x21, cn: 0x22, cipher: 0x23, sigAlg: 0x24, keyAlg: 0x25 } as const

/** The TLVs in b from offset `from` on; `valueAt` is where a value starts in b. */
function* tlvEntries(b: Buffer, from = 0): Generator<{ type: number; value: Buffer; valueAt: number } | string> {
  let at = from
  while (at < b.length) {
    if (b.length - at < 3) return yield 'truncated TLV'
    const type = b[at] as number
    const len = b.readUInt16BE(at + 1)
    if (at + 3 + len > b.length) return yield 'TLV longer than the header'
    yield { type, value: b.subarray(at + 3, at + 3 + len), valueAt: at + 3 }
    at += 3 + len
  }
}

/**
 * Spec §2.2.1: the CRC32C of the whole header (signature to last TLV) with the checksum's own
 * four octets as zeros, sent in network byte order as HAProxy writes it. Computed in three
 * pieces so that the received bytes are not changed.
 */
function crc32cMismatch(header: Buffer, valueAt: number, value: Buffer): string | undefined {
  if (value.length !== 4) return `CRC32C TLV of ${value.length} bytes, not 4`
  const sent = value.readUInt32BE(0)
  const zeroed = crc32c(header.subarray(valueAt + 4), crc32c(zeroCrc, crc32c(header.subarray(0, valueAt))))
  if (zeroed !== sent)
    return `CRC32C mismatch (header says ${hex32(sent)}, computed ${hex32(zeroed)}): altered in transit or a broken proxy`
  return undefined
}

const zeroCrc = Buffer.alloc(4)
const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`

const text = (v: Buffer): string | undefined => {
  const s = v.toString('utf8')
  // Values reach logs and plugins: printable ASCII only, as host names and cipher names are.
  return /^[\x21-\x7e]{1,255}$/.test(s) ? s : undefined
}

/** The TLVs of a whole v2 header, which start at `from`. */
function parseTlvs(header: Buffer, from: number): ProxyTlvs | string {
  let alpn: string | undefined
  let authority: string | undefined
  let uniqueId: Buffer | undefined
  let ssl: ProxySsl | undefined
  let checksummed = false
  for (const e of tlvEntries(header, from)) {
    if (typeof e === 'string') return e
    if (e.type === TLV.crc32c) {
      // One checksum field: a second one could not be zeroed for the first one's sum.
      if (checksummed) return 'more than one CRC32C TLV'
      checksummed = true
      const mismatch = crc32cMismatch(header, e.valueAt, e.value)
      if (mismatch !== undefined) return mismatch
    } else if (e.type === TLV.alpn) alpn = text(e.value)
    else if (e.type === TLV.authority) authority = text(e.value)
    else if (e.type === TLV.uniqueId) {
      if (e.value.length > 128) return 'UNIQUE_ID longer than 128 bytes'
      uniqueId = Buffer.from(e.value)
    } else if (e.type === TLV.ssl) {
      if (e.value.length < 5) return 'truncated SSL TLV'
      const client = e.value[0] as number
      const verify = e.value.readUInt32BE(1)
      const sub: Record<number, string | undefined> = {}
      for (const s of tlvEntries(e.value.subarray(5))) {
        if (typeof s === 'string') return `SSL ${s}`
        sub[s.type] = text(s.value)
      }
      ssl = {
        ssl: (client & 0x01) !== 0,
        certConnection: (client & 0x02) !== 0,
        certSession: (client & 0x04) !== 0,
        verified: (client & 0x01) !== 0 && verify === 0,
        version: sub[SSL_SUB.version],
        cn: sub[SSL_SUB.cn],
        cipher: sub[SSL_SUB.cipher],
        sigAlg: sub[SSL_SUB.sigAlg],
        keyAlg: sub[SSL_SUB.keyAlg],
      }
    }
  }
  return { alpn, authority, uniqueId, ssl }
}
