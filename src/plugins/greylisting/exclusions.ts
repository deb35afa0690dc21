/**
 * Who greylisting leaves alone, besides immune clients: hosts in the files named by
 * `greylist_exclude_files` (qpsmtpd 1.0: an address, a host name, or `/regex/` against the
 * client's host name, one a line; `#` comments; CIDRs too here), clients whose p0f fingerprint
 * does not match the `p0f` criteria, and clients from the `geoip` countries.
 */
import { readFileSync } from 'node:fs'
import { parseCidrList } from '../../config/cidr-list.ts'
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import { type PerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import type { P0fFingerprint } from '../../host/conventions.ts'
import { type CidrList, parseCidr } from '../../net/cidr.ts'

export interface ExcludedHosts {
  readonly addresses: CidrList
  readonly hostNames: ReadonlySet<string>
  readonly patterns: readonly PerlPattern[]
}

/** Reads every file `greylist_exclude_files` names; a missing file or bad line names its place. */
export function readExcludeFiles(named: readonly ConfigLine[], resolve: (path: string) => string): ExcludedHosts {
  const addresses: ConfigLine[] = []
  const hostNames = new Set<string>()
  const patterns: PerlPattern[] = []
  for (const entry of named) {
    const file = resolve(entry.text.trim())
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (e) {
      throw new ConfigError(
        ConfigErrorCode.Syntax,
        entry.file,
        entry.line,
        `greylist exclude file ${file}: ${(e as Error).message}`,
      )
    }
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.replace(/#.*/, '').replace(/\s/g, '')
      if (line === '') continue
      const at = { text: line, file, line: i + 1 }
      const re = /^\/(.*)\/$/.exec(line)
      if (re) patterns.push(perlPatternAt(at, re[1] as string))
      else if (parseCidr(line) !== undefined) addresses.push(at)
      else hostNames.add(line.toLowerCase())
    }
  }
  return { addresses: parseCidrList(addresses), hostNames, patterns }
}

export function isExcludedHost(list: ExcludedHosts, ip: string, hostName: string | undefined): boolean {
  if (list.addresses.contains(ip)) return true
  if (hostName === undefined) return false
  return list.hostNames.has(hostName.toLowerCase()) || list.patterns.some((p) => p.test(hostName))
}

type P0fCriterion =
  | { readonly key: 'genre' | 'detail' | 'link'; readonly text: string }
  | { readonly key: 'uptime' | 'distance'; readonly value: number }

/** qpsmtpd's `p0f genre,windows,link,dsl,distance,3`: pairs of a fingerprint field and a value. */
export function parseP0fCriteria(text: string): P0fCriterion[] {
  const words = text.split(',').map((w) => w.trim())
  if (words.length % 2 !== 0) throw new Error(`p0f: expected field,value pairs, got "${text}"`)
  const out: P0fCriterion[] = []
  for (let i = 0; i < words.length; i += 2) {
    const [key, value] = [words[i] as string, words[i + 1] as string]
    if (key === 'genre' || key === 'detail' || key === 'link') out.push({ key, text: value.toLowerCase() })
    else if (key === 'uptime' || key === 'distance') {
      if (!/^\d+$/.test(value)) throw new Error(`p0f: ${key} needs a number, got "${value}"`)
      out.push({ key, value: Number(value) })
    } else throw new Error(`p0f: unknown field "${key}" (genre, detail, uptime, link, distance)`)
  }
  return out
}

/**
 * Whether any criterion matches (qpsmtpd p0f_match): genre, detail and link contain the text
 * (case-insensitive), the uptime is below the value (hours), the distance above it (hops).
 */
export function p0fMatches(criteria: readonly P0fCriterion[], fp: P0fFingerprint): boolean {
  return criteria.some((c) => {
    if ('value' in c) {
      const n = fp[c.key]
      return n !== undefined && (c.key === 'uptime' ? n < c.value : n > c.value)
    }
    return fp[c.key]?.toLowerCase().includes(c.text) === true
  })
}
