/**
 * For the DNS plugins' tests: a private unbound on loopback serving the records a test writes
 * (test/peers/unbound.ts), and the process's DNS service (stub resolver and cache) pointed at it,
 * as the daemon builds it from config/dns_servers. Test-only; not part of the public API.
 */

import { startUnbound, type Unbound } from '../../test/peers/unbound.ts'
import { objectConfigSource } from '../config/config-source.ts'
import { createDnsService, type DnsService } from '../dns/index.ts'

export interface LoopbackDns {
  readonly dns: DnsService
  readonly unbound: Unbound
  /** `dns_servers` line for a config directory. */
  readonly server: string
  stop(): Promise<void>
}

/**
 * Zones are the parent names of the records (every name outside them is NXDOMAIN anyway, the
 * root being a static local zone); records are zone-file lines (`a.test. 300 IN A 192.0.2.1`).
 */
export async function startLoopbackDns(
  records: readonly string[],
  opts: { readonly zones?: readonly string[]; readonly settings?: readonly string[] } = {},
): Promise<LoopbackDns> {
  const unbound = await startUnbound({
    zones: Object.fromEntries((opts.zones ?? []).map((z) => [z.endsWith('.') ? z : `${z}.`, 'static' as const])),
    records,
  })
  const server = `127.0.0.1:${unbound.port}`
  const dns = createDnsService(objectConfigSource({ dns_servers: [server], 'smtpd.conf': [...(opts.settings ?? [])] }))
  return { dns, unbound, server, stop: () => unbound.stop() }
}
