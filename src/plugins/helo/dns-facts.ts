/**
 * What DNS says about a HELO name and the client, for the helo plugin's rfc and strict tests:
 * the name's A and AAAA records and the client's PTR names, asked at once (qpsmtpd asked them one
 * after the other, and A only, so a name with only AAAA "did not resolve"). Matches as qpsmtpd
 * counts them: an address of the name equal to the client's or in its /24 (IPv4) or /64 (IPv6);
 * a PTR name equal to the HELO name or with the same last two labels.
 */
import type { DnsAnswer, DnsResolver } from '../../dns/types.ts'
import { type IpAddress, parseIp, reverseName } from '../../net/ip.ts'

export type Lookup = 'found' | 'nxdomain' | 'nodata' | 'error'

export interface HeloDnsFacts {
  /** The HELO name's A/AAAA (undefined: not asked, an address literal). */
  readonly forward: Lookup | undefined
  readonly forwardMatch: boolean
  /** The client's PTR records. */
  readonly reverse: Lookup
  readonly reverseMatch: boolean
  /** Why a lookup failed, for the log. */
  readonly errors: readonly string[]
}

const kindOf = (a: DnsAnswer<unknown>): Lookup =>
  a.kind === 'records' ? 'found' : a.kind === 'nxdomain' || a.kind === 'nodata' ? a.kind : 'error'

const sameNetwork = (a: IpAddress, b: IpAddress): boolean =>
  a.family === 4 && b.family === 4
    ? a.value >>> 8 === b.value >>> 8
    : a.family === 6 && b.family === 6 && a.value >> 64n === b.value >> 64n

const lastTwo = (name: string): string => name.split('.').slice(-2).join('.')

export async function heloDnsFacts(
  dns: DnsResolver,
  host: string,
  clientIp: string,
  opts: { readonly literal: boolean; readonly signal?: AbortSignal | undefined; readonly timeoutMs?: number },
): Promise<HeloDnsFacts> {
  const client = parseIp(clientIp)
  const name = host.toLowerCase().replace(/\.$/, '')
  const q = { signal: opts.signal, timeoutMs: opts.timeoutMs }
  const ptrName = client === undefined ? undefined : reverseName(client)
  const [a, aaaa, ptr] = await Promise.all([
    opts.literal ? undefined : dns.query(name, 'A', q),
    opts.literal ? undefined : dns.query(name, 'AAAA', q),
    ptrName === undefined ? undefined : dns.query(ptrName, 'PTR', q),
  ])
  const errors: string[] = []
  const note = (what: string, x: DnsAnswer<unknown> | undefined) => {
    if (x?.kind === 'timeout') errors.push(`${what}: timeout`)
    if (x?.kind === 'servfail') errors.push(`${what}: ${x.detail}`)
  }
  note(`${name} A`, a)
  note(`${name} AAAA`, aaaa)
  note(`PTR of ${clientIp}`, ptr)

  let forward: Lookup | undefined
  let forwardMatch = false
  if (a !== undefined && aaaa !== undefined) {
    const addresses = [a, aaaa].flatMap((x) => (x.kind === 'records' ? x.records : []))
    const kinds = [kindOf(a), kindOf(aaaa)]
    forward =
      addresses.length > 0
        ? 'found'
        : kinds.includes('error')
          ? 'error'
          : kinds.includes('nxdomain')
            ? 'nxdomain'
            : 'nodata'
    forwardMatch =
      client !== undefined &&
      addresses.some((text) => {
        const ip = parseIp(text)
        return ip !== undefined && sameNetwork(ip, client)
      })
  }
  const reverse: Lookup = ptr === undefined ? 'nxdomain' : kindOf(ptr)
  const ptrNames = ptr?.kind === 'records' ? ptr.records.map((n) => n.toLowerCase().replace(/\.$/, '')) : []
  const reverseMatch = ptrNames.some((n) => n.includes('.') && (n === name || lastTwo(n) === lastTwo(name)))
  return { forward, forwardMatch, reverse, reverseMatch, errors }
}
