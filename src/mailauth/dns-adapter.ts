/**
 * Our DNS service as mailauth's `resolver(name, rrtype)`: answers shaped as node:dns gives
 * them (TXT as lists of character-strings, MX as {exchange, priority}), failures thrown as
 * node:dns errors, so mailauth tells "no such record" (ENOTFOUND, ENODATA: a void lookup,
 * RFC 7208 §4.6.4) from a temporary failure (ETIMEOUT, ESERVFAIL: temperror, never permerror).
 * The hook's AbortSignal ends every lookup at once, as a temporary failure.
 */
import type { DnsAnswer, DnsResolver, RecordData, RecordType } from '../dns/types.ts'

/** The resolver function mailauth's spf(), dmarc(), dkimVerify() and arc() take. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown[]>

const supported = new Set<string>(['A', 'AAAA', 'TXT', 'MX', 'PTR', 'CNAME', 'NS'])

/**
 * An Error with a node:dns code (`ENOTFOUND`, `ENODATA`, `ETIMEOUT`, `ESERVFAIL`, ...). mailauth
 * copies the message into comments that reach headers and replies, so which server failed stays
 * in `detail`, out of the message.
 */
export function dnsError(code: string, name: string, rrtype: string, detail?: string): Error {
  const err = new Error(`${rrtype} ${name}: ${code}`) as Error & { code: string; hostname: string; detail?: string }
  err.code = code
  err.hostname = name
  if (detail !== undefined) err.detail = detail
  return err
}

/**
 * @example
 *   const resolver = mailauthResolver(api.dns, { signal: ctx.signal })
 *   const result = await spf({ ip, sender, helo, resolver })
 */
export function mailauthResolver(
  dns: DnsResolver,
  opts: { readonly signal?: AbortSignal | undefined; readonly timeoutMs?: number | undefined } = {},
): MailauthResolver {
  const { signal, timeoutMs } = opts
  return async (name, rrtype) => {
    const type = rrtype.toUpperCase()
    if (!supported.has(type)) throw dnsError('ENOTIMP', name, rrtype)
    if (signal?.aborted) throw dnsError('ECANCELLED', name, rrtype, 'the check was abandoned')
    let answer: DnsAnswer<RecordData[RecordType]>
    try {
      answer = await dns.query(name, type as RecordType, { signal, timeoutMs })
    } catch (e) {
      // The signal's reason: the hook timed out or the client left.
      throw dnsError('ECANCELLED', name, rrtype, e instanceof Error ? e.message : String(e))
    }
    switch (answer.kind) {
      case 'records':
        return answer.records.map((r) => (Array.isArray(r) ? [...r] : typeof r === 'object' ? { ...r } : r))
      case 'nxdomain':
        throw dnsError('ENOTFOUND', name, rrtype)
      case 'nodata':
        throw dnsError('ENODATA', name, rrtype)
      case 'servfail':
        throw dnsError('ESERVFAIL', name, rrtype, answer.detail)
      case 'timeout':
        throw dnsError('ETIMEOUT', name, rrtype)
    }
  }
}
