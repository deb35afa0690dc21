/**
 * The DNS service plugins get: one query function whose answer says which of records, NXDOMAIN,
 * NODATA, server failure or timeout happened, so that each plugin applies its own failure policy
 * and a DNS outage never reads as "not listed" (RFC 5782 §5 asks DNSBL clients for exactly this).
 * Implementations: the stub resolver with its cache (real DNS, one per process) and the scripted
 * resolver for tests.
 */

/** The record types plugins ask for, with the data of one record of each. */
export interface RecordData {
  readonly A: string
  readonly AAAA: string
  /** The character-strings of one TXT record, in order; SPF and DKIM join them without a separator. */
  readonly TXT: readonly string[]
  readonly MX: { readonly exchange: string; readonly priority: number }
  readonly PTR: string
  readonly CNAME: string
  readonly NS: string
}

export type RecordType = keyof RecordData

export type DnsAnswer<T> =
  /** `name` is the owner of the records: the query name, or the end of its CNAME chain. */
  | { readonly kind: 'records'; readonly records: readonly T[]; readonly ttl: number; readonly name: string }
  /** The name does not exist (RCODE 3), or cannot exist (an empty label, a label over 63 octets). */
  | { readonly kind: 'nxdomain'; readonly ttl: number }
  /** The name exists but has no records of this type. */
  | { readonly kind: 'nodata'; readonly ttl: number }
  /** SERVFAIL, REFUSED, FORMERR, a malformed, oversized or looping answer, a network error. */
  | { readonly kind: 'servfail'; readonly detail: string }
  /** No server answered within the deadline. */
  | { readonly kind: 'timeout' }

export type DnsAnswerKind = DnsAnswer<unknown>['kind']

export interface QueryOptions {
  /**
   * Aborting rejects the query with the signal's reason at once; pass the hook's `ctx.signal`.
   * A query shared with other callers (coalesced) goes on for them.
   */
  readonly signal?: AbortSignal | undefined
  /** A deadline shorter than the resolver's own for this call; past it the answer is `timeout`. */
  readonly timeoutMs?: number | undefined
}

export interface DnsResolver {
  /**
   * @example
   * const answer = await dns.query(`${reversedLabels(ip)}.zen.spamhaus.org`, 'A', { signal: ctx.signal })
   * switch (answer.kind) {
   *   case 'records': return reject(554, '5.7.1', `listed: ${answer.records.join(', ')}`)
   *   case 'nxdomain': case 'nodata': return pass('not listed')
   *   case 'servfail': case 'timeout': return defer(451, '4.4.3', 'DNS list unavailable, try again later')
   * }
   */
  query<T extends RecordType>(name: string, type: T, opts?: QueryOptions): Promise<DnsAnswer<RecordData[T]>>
}

/** Counters since start, for the metrics endpoint. */
export interface DnsStats {
  /** Calls of `query`. */
  readonly queries: number
  /** Answered from the cache without waiting. */
  readonly cacheHits: number
  /** Joined an identical query already under way. */
  readonly coalesced: number
  /** Callers whose signal aborted the wait. */
  readonly aborted: number
  /** Answers given to callers, by kind. */
  readonly answers: Readonly<Record<DnsAnswerKind, number>>
  /** Entries in the cache now. */
  readonly cacheEntries: number
  /** What went over the network (absent for resolvers that do no I/O). */
  readonly upstream?: UpstreamStats
}

export interface UpstreamStats {
  readonly udpQueries: number
  readonly tcpQueries: number
  /** Truncated UDP answers retried over TCP. */
  readonly truncated: number
  /** Datagrams ignored because their id, question or source did not match (forgery, RFC 5452). */
  readonly ignored: number
  /** Attempts that got no answer in time (a query can time out on one server and succeed on the next). */
  readonly attemptTimeouts: number
  /** Attempts answered with a failure (SERVFAIL, REFUSED, malformed, network error). */
  readonly attemptFailures: number
  /** Lookups that waited for a turn because dns_max_inflight were on the wire. */
  readonly waitedForSlot: number
}

/** The resolver as the process holds it: queries plus counters. */
export interface DnsService extends DnsResolver {
  stats(): DnsStats
}
