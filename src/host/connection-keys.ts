/**
 * Connection facts the server (not a plugin) knows, as typed connection-scoped keys.
 *
 * @example
 *   import { ConnectionsFromIp } from '../../host/connection-keys.ts'
 *   if (ctx.get(ConnectionsFromIp) > max) return defer('too many connections')
 */

import type { Peer } from './context.ts'
import { defineKey } from './keys.ts'

/** Open connections from this client's address, this one included, when the session starts. */
export const ConnectionsFromIp = defineKey<number>('server/connections-from-ip', { scope: 'connection', initial: 1 })

/** The TLS a PROXY v2 header reports (PP2_TYPE_SSL and its sub-TLVs). */
export interface ProxySsl {
  /** The client connected over TLS/SSL (PP2_CLIENT_SSL). */
  readonly ssl: boolean
  readonly certConnection: boolean
  readonly certSession: boolean
  /** PP2_CLIENT_SSL set and verify == 0: the client certificate was verified. */
  readonly verified: boolean
  readonly version: string | undefined
  readonly cn: string | undefined
  readonly cipher: string | undefined
  readonly sigAlg: string | undefined
  readonly keyAlg: string | undefined
}

/** PROXY v2 TLVs (server/proxy-protocol.ts parses them). */
export interface ProxyTlvs {
  readonly alpn: string | undefined
  /** The host name the client asked for (SNI), as the proxy saw it. */
  readonly authority: string | undefined
  readonly uniqueId: Buffer | undefined
  readonly ssl: ProxySsl | undefined
}

/** What a trusted proxy said about this connection (PROXY protocol), when it came through one. */
export interface ProxiedConnection {
  readonly version: 1 | 2
  /** The proxy's own address: the TCP peer of this connection. */
  readonly proxy: Peer
  /** PROXY v2 TLVs: the client's TLS to the proxy (ssl), SNI (authority), ALPN, unique id. */
  readonly tlvs: ProxyTlvs
}

export const ProxyInfo = defineKey<ProxiedConnection | undefined>('server/proxy', {
  scope: 'connection',
  initial: undefined,
})

/** The client may use XCLIENT and XFORWARD: its address is in `xclient_trusted`. */
export const ForwarderTrusted = defineKey<boolean>('server/forwarder-trusted', { scope: 'connection', initial: false })

/** What XCLIENT/XFORWARD changed, and who sent it (the forwarder's own address). */
export interface Forwarded {
  readonly command: 'XCLIENT' | 'XFORWARD'
  readonly by: Peer
  /** The attributes as decoded, upper-case names (e.g. IDENT, SOURCE, PROTO). */
  readonly attributes: Readonly<Record<string, string>>
}

export const ForwardedInfo = defineKey<Forwarded | undefined>('server/forwarded', {
  scope: 'connection',
  initial: undefined,
})
