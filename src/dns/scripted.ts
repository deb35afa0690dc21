/**
 * A DNS resolver that answers from a script, for plugin tests that test logic rather than DNS:
 * no sockets, no cache, and every call is recorded. Names not in the script are NXDOMAIN; a name
 * in it without records of the asked type is NODATA; CNAMEs in the script are followed as a
 * recursive server would (a loop is a SERVFAIL). Delays honour the caller's signal.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { foldCase } from './name.ts'
import type { DnsAnswer, DnsAnswerKind, DnsService, QueryOptions, RecordData, RecordType } from './types.ts'

export interface ScriptedRecords {
  readonly A?: readonly string[]
  readonly AAAA?: readonly string[]
  /** A string is a record of one character-string; an array gives the record's strings. */
  readonly TXT?: readonly (string | readonly string[])[]
  readonly MX?: readonly RecordData['MX'][]
  readonly PTR?: readonly string[]
  readonly NS?: readonly string[]
  /** An alias: questions of other types continue at the target. */
  readonly CNAME?: string
  /** Seconds; default 300. */
  readonly ttl?: number
  /** Wait this long before answering (the caller's signal ends the wait). */
  readonly delayMs?: number
}

/** `'timeout'` answers `{ kind: 'timeout' }` at once (after `delayMs` of the options, if any). */
export type ScriptedName = ScriptedRecords | 'timeout' | 'servfail' | 'refused' | 'nxdomain'

export interface ScriptedDnsOptions {
  /** A delay for every answer, in milliseconds. */
  readonly delayMs?: number
  /** The TTL of negative answers, in seconds; default 300. */
  readonly negativeTtl?: number
}

export interface ScriptedDns extends DnsService {
  /** Every question asked, in order. */
  readonly calls: readonly { readonly name: string; readonly type: RecordType }[]
  /** Changes (or with undefined, removes) a name's script. */
  set(name: string, entry: ScriptedName | undefined): void
}

const MAX_CHAIN = 8

/**
 * @example
 * const dns = scriptedDns({
 *   'example.com': { MX: [{ exchange: 'mx.example.com', priority: 10 }] },
 *   'mx.example.com': { A: ['192.0.2.25'] },
 *   '2.0.0.127.zen.spamhaus.org': { A: ['127.0.0.2'], TXT: ['listed'] },
 *   'slow.test': 'timeout',
 *   'broken.test': 'servfail',
 * })
 */
export function scriptedDns(
  script: Readonly<Record<string, ScriptedName>>,
  options: ScriptedDnsOptions = {},
): ScriptedDns {
  const names = new Map(Object.entries(script).map(([k, v]) => [foldCase(k), v]))
  const calls: { name: string; type: RecordType }[] = []
  const answers: Record<DnsAnswerKind, number> = { records: 0, nxdomain: 0, nodata: 0, servfail: 0, timeout: 0 }
  let queries = 0
  let aborted = 0
  const negativeTtl = options.negativeTtl ?? 300

  function answer<T extends RecordType>(name: string, type: T): DnsAnswer<RecordData[T]> {
    let owner = name
    for (let depth = 0; depth <= MAX_CHAIN; depth++) {
      const entry = names.get(foldCase(owner))
      if (entry === undefined || entry === 'nxdomain') return { kind: 'nxdomain', ttl: negativeTtl }
      if (entry === 'timeout') return { kind: 'timeout' }
      if (entry === 'servfail' || entry === 'refused')
        return { kind: 'servfail', detail: `${entry.toUpperCase()} (scripted) for ${owner}` }
      const ttl = entry.ttl ?? 300
      const found = records(entry, type)
      if (found.length > 0) return { kind: 'records', records: found, ttl, name: owner }
      if (entry.CNAME === undefined || type === 'CNAME') return { kind: 'nodata', ttl: negativeTtl }
      owner = entry.CNAME
    }
    return { kind: 'servfail', detail: `CNAME chain longer than ${MAX_CHAIN} at ${owner}` }
  }

  async function query<T extends RecordType>(
    name: string,
    type: T,
    opts: QueryOptions = {},
  ): Promise<DnsAnswer<RecordData[T]>> {
    queries++
    calls.push({ name, type })
    const entry = names.get(foldCase(name))
    const delayMs = (typeof entry === 'object' ? entry.delayMs : undefined) ?? options.delayMs ?? 0
    try {
      opts.signal?.throwIfAborted()
      if (delayMs > 0) await sleep(delayMs, undefined, opts.signal === undefined ? {} : { signal: opts.signal })
    } catch (e) {
      aborted++
      throw opts.signal?.aborted ? opts.signal.reason : e
    }
    const a = answer(name, type)
    answers[a.kind]++
    return a
  }

  return {
    query,
    calls,
    set(name, entry) {
      if (entry === undefined) names.delete(foldCase(name))
      else names.set(foldCase(name), entry)
    },
    stats: () => ({ queries, cacheHits: 0, coalesced: 0, aborted, answers: { ...answers }, cacheEntries: 0 }),
  }
}

function records<T extends RecordType>(entry: ScriptedRecords, type: T): RecordData[T][] {
  if (type === 'CNAME') return (entry.CNAME === undefined ? [] : [entry.CNAME]) as RecordData[T][]
  const list = entry[type as Exclude<RecordType, 'CNAME'>] ?? []
  if (type === 'TXT') return list.map((t) => (typeof t === 'string' ? [t] : t)) as RecordData[T][]
  return [...list] as RecordData[T][]
}
