/**
 * The process's DNS cache, in front of a resolver and shared by every plugin: answers live as long
 * as their TTL, negative answers as long as RFC 2308 §5 allows (the SOA's TTL and MINIMUM), each
 * capped by the operator's maximum; failures and timeouts are not kept, so the next caller asks
 * again. Bounded in entries, least recently used first out. Identical questions under way are
 * asked once: later callers wait for the same answer (a connection's DNSBL zones, or many
 * connections from one client, cost one query each). A caller that gives up (its signal, its own
 * deadline) leaves the others waiting; when the last one leaves, the query is abandoned.
 */
import { encodeQueryName, foldCase } from './name.ts'
import type {
  DnsAnswer,
  DnsAnswerKind,
  DnsResolver,
  DnsService,
  QueryOptions,
  RecordData,
  RecordType,
  UpstreamStats,
} from './types.ts'

export interface DnsCacheOptions {
  /** Answers kept at most; 0 keeps none (queries are still coalesced). */
  readonly maxEntries: number
  /** The longest any answer is kept, in seconds, whatever its TTL. */
  readonly maxTtl: number
  /** The longest a negative answer (NXDOMAIN, NODATA) is kept, in seconds. */
  readonly maxNegativeTtl: number
  /** Milliseconds since some epoch; tests move time with it. */
  readonly now?: () => number
}

export const defaultCacheOptions = {
  maxEntries: 10_000,
  maxTtl: 86_400,
  // unbound's cache-max-negative-ttl: a name listed a minute ago is seen within the hour.
  maxNegativeTtl: 3_600,
} as const satisfies DnsCacheOptions

type Answer = DnsAnswer<unknown>
type Cacheable = Extract<Answer, { ttl: number }>
interface Entry {
  readonly answer: Cacheable
  readonly expiresAt: number
}
interface Pending {
  readonly answer: Promise<Answer>
  readonly controller: AbortController
  waiters: number
}

export function createDnsCache(
  upstream: DnsResolver & { upstreamStats?: () => UpstreamStats },
  options: DnsCacheOptions = defaultCacheOptions,
): DnsService {
  const now = options.now ?? Date.now
  const entries = new Map<string, Entry>()
  const pending = new Map<string, Pending>()
  const answers: Record<DnsAnswerKind, number> = { records: 0, nxdomain: 0, nodata: 0, servfail: 0, timeout: 0 }
  const counters = { queries: 0, cacheHits: 0, coalesced: 0, aborted: 0 }

  const give = <A extends Answer>(answer: A): A => {
    answers[answer.kind]++
    return answer
  }

  function cached(key: string): Answer | undefined {
    const entry = entries.get(key)
    if (entry === undefined) return undefined
    const left = entry.expiresAt - now()
    entries.delete(key)
    if (left <= 0) return undefined
    entries.set(key, entry)
    return { ...entry.answer, ttl: Math.ceil(left / 1000) }
  }

  function store(key: string, answer: Answer): void {
    if (options.maxEntries <= 0 || !('ttl' in answer)) return
    const cap = answer.kind === 'records' ? options.maxTtl : options.maxNegativeTtl
    const ttl = Math.min(answer.ttl, cap)
    if (ttl <= 0) return
    entries.delete(key)
    entries.set(key, { answer, expiresAt: now() + ttl * 1000 })
    for (const oldest of entries.keys()) {
      if (entries.size <= options.maxEntries) break
      entries.delete(oldest)
    }
  }

  function start(key: string, name: string, type: RecordType): Pending {
    const controller = new AbortController()
    const answer = upstream.query(name, type, { signal: controller.signal }).then((a) => {
      if (pending.get(key) === entry) pending.delete(key)
      store(key, a)
      return a
    })
    // Abandoned queries reject with nobody waiting.
    answer.catch(() => {
      if (pending.get(key) === entry) pending.delete(key)
    })
    const entry: Pending = { answer, controller, waiters: 0 }
    pending.set(key, entry)
    return entry
  }

  function wait(key: string, job: Pending, { signal, timeoutMs }: QueryOptions): Promise<Answer> {
    job.waiters++
    return new Promise((resolve, reject) => {
      let settled = false
      const settle = (givesUp: boolean, then: () => void) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        if (--job.waiters === 0 && givesUp) {
          if (pending.get(key) === job) pending.delete(key)
          job.controller.abort(new Error('every caller has given up'))
        }
        then()
      }
      const onAbort = () =>
        settle(true, () => {
          counters.aborted++
          reject(signal?.reason)
        })
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => settle(true, () => resolve({ kind: 'timeout' })), timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      job.answer.then(
        (a) => settle(false, () => resolve(a)),
        (e: unknown) => settle(false, () => reject(e)),
      )
    })
  }

  async function query<T extends RecordType>(
    name: string,
    type: T,
    opts: QueryOptions = {},
  ): Promise<DnsAnswer<RecordData[T]>> {
    counters.queries++
    opts.signal?.throwIfAborted()
    const key = `${type} ${foldCase(name)}`
    const hit = cached(key)
    if (hit !== undefined) {
      counters.cacheHits++
      return give(hit as DnsAnswer<RecordData[T]>)
    }
    if (encodeQueryName(name) === undefined) return give({ kind: 'nxdomain', ttl: 0 })
    let job = pending.get(key)
    if (job === undefined) job = start(key, name, type)
    else counters.coalesced++
    return give((await wait(key, job, opts)) as DnsAnswer<RecordData[T]>)
  }

  return {
    query,
    stats: () => ({
      ...counters,
      answers: { ...answers },
      cacheEntries: entries.size,
      ...(upstream.upstreamStats === undefined ? {} : { upstream: upstream.upstreamStats() }),
    }),
  }
}
