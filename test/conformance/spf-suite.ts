/**
 * The RFC 7208 test suite (openspf.org, rfc7208-tests.yml; BSD licence beside it) as data: its
 * scenarios, and each scenario's zone served through our DnsResolver interface with the
 * suite's semantics: a name absent is NXDOMAIN, a name without records of a type is NODATA,
 * `TIMEOUT` makes the other types of a name time out, TXT falls back to the name's SPF records
 * unless `TXT: NONE` says there are none.
 */
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import type { DnsAnswer, DnsResolver, RecordData, RecordType } from '../../src/dns/types.ts'

export interface SpfCase {
  readonly scenario: string
  readonly name: string
  readonly spec: string
  readonly helo: string
  readonly host: string
  readonly mailfrom: string
  /** One result, or several the suite accepts. */
  readonly results: readonly string[]
  readonly explanation: string | undefined
}

type ZoneEntry = string | Readonly<Record<string, unknown>>
type Zone = ReadonlyMap<string, readonly ZoneEntry[]>

export interface SpfScenario {
  readonly description: string
  readonly cases: readonly SpfCase[]
  readonly dns: DnsResolver
}

const suiteFile = new URL('spf/rfc7208-tests.yml', import.meta.url)

export function loadSpfSuite(): SpfScenario[] {
  const docs = parseAllDocuments(readFileSync(suiteFile, 'utf8'))
  return docs.map((doc) => {
    const data = doc.toJS() as {
      description: string
      tests: Record<string, Record<string, unknown>>
      zonedata: Record<string, ZoneEntry[] | null>
    }
    const cases = Object.entries(data.tests).map(([name, t]) => ({
      scenario: data.description,
      name,
      spec: String(t.spec ?? ''),
      helo: String(t.helo ?? ''),
      host: String(t.host ?? ''),
      mailfrom: String(t.mailfrom ?? ''),
      results: ([] as unknown[]).concat(t.result).map(String),
      explanation: t.explanation === undefined ? undefined : String(t.explanation),
    }))
    const zone = new Map(Object.entries(data.zonedata ?? {}).map(([k, v]) => [k.toLowerCase(), v ?? []]))
    return { description: data.description, cases, dns: zoneResolver(zone) }
  })
}

/** What the bytes the suite writes as `\xNN` would read as from the wire: our DNS layer decodes TXT as UTF-8. */
function asWire(s: string): string {
  return /[\u0080-\u00ff]/.test(s) && /^[\u0000-\u00ff]*$/.test(s) ? Buffer.from(s, 'latin1').toString('utf8') : s
}

function recordOf(type: RecordType, value: unknown): RecordData[RecordType] {
  if (type === 'TXT') return ([] as unknown[]).concat(value).map((s) => asWire(String(s)))
  if (type === 'MX') {
    const [priority, exchange] = value as [number, string]
    return { priority, exchange }
  }
  return String(value)
}

function zoneResolver(zone: Zone): DnsResolver {
  const answer = (name: string, type: RecordType, depth: number): DnsAnswer<RecordData[RecordType]> => {
    const key = name.toLowerCase().replace(/\.$/, '')
    const entries = zone.get(key)
    if (entries === undefined) return { kind: 'nxdomain', ttl: 300 }
    const timesOut = entries.includes('TIMEOUT')
    const valuesOf = (t: string) =>
      entries.filter((e): e is Record<string, unknown> => typeof e === 'object' && t in e).map((e) => e[t])
    let values = valuesOf(type)
    // The suite's drivers synthesise TXT from SPF records unless `TXT: NONE` (RFC 7208 dropped type SPF).
    if (type === 'TXT' && values.length === 0) values = valuesOf('SPF')
    const real = values.filter((v) => v !== 'NONE' && v !== 'TIMEOUT')
    if (real.length > 0) return { kind: 'records', records: real.map((v) => recordOf(type, v)), ttl: 300, name: key }
    if (values.includes('TIMEOUT')) return { kind: 'timeout' }
    const cname = valuesOf('CNAME')[0]
    if (typeof cname === 'string' && type !== 'CNAME' && depth < 8) return answer(cname, type, depth + 1)
    if (timesOut) return { kind: 'timeout' }
    return { kind: 'nodata', ttl: 300 }
  }
  return {
    query: async <T extends RecordType>(name: string, type: T) => answer(name, type, 0) as DnsAnswer<RecordData[T]>,
  }
}
