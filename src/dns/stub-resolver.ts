/**
 * A stub resolver (RFC 1123 §6.1.3.1): asks the configured recursive servers, over UDP with
 * EDNS0 and over TCP when the answer is truncated, within one deadline per query shared by the
 * attempts (each attempt gets the time left divided by the attempts left). A server that timed
 * out or failed at the network level is asked last until it answers again. CNAME chains are
 * followed inside an answer and, when a server gave only part of one, by asking again, up to a
 * bound; a loop, a chain too long or a malformed answer is a failure, never "no records".
 * No cache here: cache.ts wraps this.
 */
import { randomInt } from 'node:crypto'
import {
  encodeQuery,
  negativeTtl,
  parseResponse,
  Rcode,
  type ResourceRecord,
  type Response,
  rcodeName,
  recordData,
} from './message.ts'
import { encodeQueryName, foldCase, type QueryName, sameName } from './name.ts'
import { createSlots } from './slots.ts'
import { type DnsServer, type Exchange, serverText, tcpExchange, udpExchange } from './transport.ts'
import type { DnsAnswer, DnsResolver, QueryOptions, RecordData, RecordType, UpstreamStats } from './types.ts'

export interface StubResolverOptions {
  readonly servers: readonly DnsServer[]
  /** The whole query's deadline, all attempts and CNAME follow-ups included. */
  readonly timeoutMs: number
  /** Attempts after the first, each to the next server. */
  readonly retries: number
  /** The UDP payload size announced with EDNS0 (RFC 6891 §6.2.5); 0 sends no OPT record. */
  readonly ednsUdpSize: number
  /** Larger answers are failures. */
  readonly maxAnswerSize: number
  /** CNAMEs followed from the query name before the answer is a failure. */
  readonly cnameLimit: number
  /** Lookups on the wire at once (one socket each); more wait for a turn within their deadline. */
  readonly maxInflight: number
}

export const defaultStubOptions = {
  timeoutMs: 5_000,
  retries: 2,
  // DNS Flag Day 2020: fits any path MTU without fragmentation.
  ednsUdpSize: 1232,
  maxAnswerSize: 65_535,
  cnameLimit: 8,
  maxInflight: 256,
} as const satisfies Omit<StubResolverOptions, 'servers'>

export interface StubResolver extends DnsResolver {
  upstreamStats(): UpstreamStats
}

type Answered = Extract<Response, { status: 'ok' }>
type Failure = Extract<DnsAnswer<never>, { kind: 'servfail' | 'timeout' }>

export function createStubResolver(options: StubResolverOptions): StubResolver {
  if (options.servers.length === 0) throw new Error('no DNS servers configured')
  const o = options
  const counters = { udpQueries: 0, tcpQueries: 0, truncated: 0, ignored: 0, attemptTimeouts: 0, attemptFailures: 0 }
  const strikes = o.servers.map(() => 0)
  const onIgnored = () => counters.ignored++
  const slots = createSlots(o.maxInflight)

  /** Servers in configured order, those that recently timed out or failed last. */
  const serverOrder = (): DnsServer[] =>
    o.servers
      .map((server, i) => ({ server, i }))
      .sort((a, b) => Number(strikes[a.i]! > 0) - Number(strikes[b.i]! > 0) || a.i - b.i)
      .map((s) => s.server)
  const strike = (server: DnsServer, failed: boolean) => {
    const i = o.servers.indexOf(server)
    strikes[i] = failed ? strikes[i]! + 1 : 0
  }

  async function ask(
    server: DnsServer,
    qname: QueryName,
    type: RecordType,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ) {
    const deadline = Date.now() + timeoutMs
    let edns = o.ednsUdpSize
    for (;;) {
      const id = randomInt(0x10000)
      const query = encodeQuery(id, qname, type, edns)
      const read = (message: Buffer) => parseResponse(message, id, qname, type)
      const base = { server, query, read, maxAnswerSize: o.maxAnswerSize, signal, onIgnored }
      counters.udpQueries++
      let result: Exchange = await udpExchange({ ...base, timeoutMs: deadline - Date.now() })
      if (result.status === 'answer' && result.response.truncated) {
        counters.truncated++
        counters.tcpQueries++
        result = await tcpExchange({ ...base, timeoutMs: deadline - Date.now() })
      }
      // A server that does not know EDNS0 answers FORMERR (RFC 6891 §7): ask it again without.
      if (result.status === 'answer' && result.response.rcode === Rcode.FormErr && edns > 0 && deadline > Date.now()) {
        edns = 0
        continue
      }
      return result
    }
  }

  /** One question, asked of the servers in turn until one answers it. */
  async function resolveOnce(
    qname: QueryName,
    type: RecordType,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<Answered | Failure> {
    const attempts = o.retries + 1
    const servers = serverOrder()
    let failure: string | undefined
    for (let i = 0; i < attempts; i++) {
      const left = deadline - Date.now()
      if (left <= 0) break
      const server = servers[i % servers.length]!
      const result = await ask(server, qname, type, left / (attempts - i), signal)
      if (result.status === 'timeout') {
        counters.attemptTimeouts++
        strike(server, true)
        continue
      }
      counters.attemptFailures += result.status === 'error' || !answered(result.response.rcode) ? 1 : 0
      if (result.status === 'error') {
        failure = result.detail
        strike(server, true)
        continue
      }
      strike(server, false)
      if (answered(result.response.rcode)) return result.response
      failure = `${rcodeName(result.response.rcode)} from ${serverText(server)}`
    }
    return failure === undefined ? { kind: 'timeout' } : { kind: 'servfail', detail: failure }
  }

  async function query<T extends RecordType>(
    name: string,
    type: T,
    opts: QueryOptions = {},
  ): Promise<DnsAnswer<RecordData[T]>> {
    opts.signal?.throwIfAborted()
    const first = encodeQueryName(name)
    if (first === undefined) return { kind: 'nxdomain', ttl: 0 }
    const deadline = Date.now() + Math.min(opts.timeoutMs ?? o.timeoutMs, o.timeoutMs)
    if (!(await slots.acquire(deadline - Date.now(), opts.signal))) return { kind: 'timeout' }
    try {
      const chain: Chain = { seen: new Set([first.text]), ttl: Number.POSITIVE_INFINITY }
      let qname = first
      for (;;) {
        const response = await resolveOnce(qname, type, deadline, opts.signal)
        if (!('status' in response)) return response
        const step = interpret(response, qname.text, type, chain, o.cnameLimit)
        if (!('follow' in step)) return step
        const next = encodeQueryName(step.follow)
        if (next === undefined) return { kind: 'servfail', detail: `CNAME to an invalid name "${step.follow}"` }
        qname = next
      }
    } finally {
      slots.release()
    }
  }

  return { query, upstreamStats: () => ({ ...counters, waitedForSlot: slots.waited }) }
}

const answered = (rcode: number) => rcode === Rcode.NoError || rcode === Rcode.NxDomain

interface Chain {
  /** Names reached so far (case-folded), the query name included. */
  readonly seen: Set<string>
  /** The lowest TTL along the chain. */
  ttl: number
}

/** The answer for `owner`, following its CNAMEs through the answer section. */
function interpret<T extends RecordType>(
  response: Answered,
  asked: string,
  type: T,
  chain: Chain,
  cnameLimit: number,
): DnsAnswer<RecordData[T]> | { follow: string } {
  let owner = asked
  const at = (r: ResourceRecord, t: string) => r.type === t && sameName(r.name, owner)
  for (;;) {
    const found = response.answers.filter((r) => at(r, type))
    if (found.length > 0) {
      const records: RecordData[T][] = []
      for (const r of found) {
        const data = recordData(type, r.data)
        if (data === undefined) return { kind: 'servfail', detail: `malformed ${type} record for ${owner}` }
        records.push(data)
        chain.ttl = Math.min(chain.ttl, r.ttl)
      }
      return { kind: 'records', records, ttl: chain.ttl, name: owner }
    }
    const cname = type === 'CNAME' ? undefined : response.answers.find((r) => at(r, 'CNAME'))
    if (cname === undefined) break
    const target = recordData('CNAME', cname.data)
    if (target === undefined) return { kind: 'servfail', detail: `malformed CNAME record for ${owner}` }
    if (chain.seen.has(foldCase(target))) return { kind: 'servfail', detail: `CNAME loop at ${target}` }
    if (chain.seen.size > cnameLimit) return { kind: 'servfail', detail: `CNAME chain longer than ${cnameLimit}` }
    chain.seen.add(foldCase(target))
    chain.ttl = Math.min(chain.ttl, cname.ttl)
    owner = target
  }
  const ttl = Math.min(chain.ttl, negativeTtl(response.authorities))
  if (response.rcode === Rcode.NxDomain) return { kind: 'nxdomain', ttl }
  // A chain that ends without records and without a SOA was cut short by the server: go on from its end.
  const moved = !sameName(owner, asked)
  if (moved && !response.authorities.some((r) => r.type === 'SOA')) return { follow: owner }
  return { kind: 'nodata', ttl }
}
