/**
 * One pass of mailauth's DKIM verifier over a message, bounded: only the signatures the caller
 * picks are verified (mailauth would verify every one, in turn), their keys are fetched in
 * parallel before mailauth asks for them one by one, and every lookup goes through our DNS
 * service with the hook's signal. The DKIM results feed dkim, the ARC data feeds arc.
 *
 * mailauth's DkimVerifier is not part of its documented API (dkimVerify() is, without a way
 * to limit the signatures): the package is pinned by package-lock.json and the limit is
 * tested (verify.test.ts), so a change in mailauth's internals fails the tests, not the mail.
 */
import { createRequire } from 'node:module'
import type { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { domainToASCII } from 'node:url'
import type { DKIMResult } from 'mailauth'
import type { DnsResolver } from '../../dns/types.ts'
import { type MailauthResolver, mailauthResolver } from '../dns-adapter.ts'

interface ParsedField {
  /** The name in lower case. */
  readonly key: string
  readonly casedKey: string
  /** The whole field as received. */
  readonly line: Buffer
}

interface ParsedHeaders {
  parsed: ParsedField[]
}

/** mailauth's parse of a DKIM-Signature or ARC field: tag → { value }. */
export interface SignatureTags {
  readonly parsed?: Readonly<Record<string, { readonly value?: unknown } | undefined>>
}

interface SignatureHeader {
  readonly type: 'DKIM' | 'ARC'
}

/** The ARC chain as mailauth's arc() takes it. */
export interface ArcData {
  readonly chain?: unknown
  readonly lastEntry?: unknown
  readonly error?: Error
}

interface KeyOptions {
  readonly strict?: boolean
  readonly hashAlgo?: string
}

/** mailauth's per-message cache of key lookups, which dkim and arc verification both ask. */
interface KeyCache {
  readonly resolver: MailauthResolver
  get(type: string, name: string, minBitLength: number, options?: KeyOptions): Promise<unknown>
}

interface MailauthVerifier extends Writable {
  readonly results: DKIMResult[]
  readonly arc: ArcData
  readonly keyCache: KeyCache
  signatureHeaders: SignatureHeader[]
  messageHeaders(headers: ParsedHeaders): Promise<void>
}

interface VerifierOptions {
  readonly resolver: MailauthResolver
  readonly minBitLength: number
  readonly rejectRsaSha1: boolean
  readonly strict: boolean
  readonly curTime?: Date | undefined
}

const require = createRequire(import.meta.url)
const { DkimVerifier } = require('mailauth/lib/dkim/dkim-verifier.js') as {
  DkimVerifier: new (opts: VerifierOptions) => MailauthVerifier
}
const { parseDkimHeaders, getPublicKey } = require('mailauth/lib/tools.js') as {
  parseDkimHeaders(line: Buffer | string): SignatureTags
  getPublicKey(
    type: string,
    name: string,
    minBitLength: number,
    resolver: MailauthResolver,
    options: KeyOptions,
  ): Promise<unknown>
}

/** A tag's value as text ('' when absent). */
export const tagValue = (tags: SignatureTags, name: string): string => {
  const v = tags.parsed?.[name]?.value
  return v === undefined || v === null ? '' : String(v)
}

export interface VerifierPass {
  /** mailauth's results for the DKIM signatures it was given (lenient mode: unprocessable ones left out). */
  readonly results: readonly DKIMResult[]
  readonly arc: ArcData
  /** The resolver the pass used, with its prefetched answers (arc() reuses it). */
  readonly resolver: MailauthResolver
  /** Lookups of this resolver that failed for a temporary reason (timeout, SERVFAIL), filled as they end. */
  readonly temporaryFailures: readonly string[]
}

export interface VerifierPassOptions {
  readonly dns: DnsResolver
  readonly signal?: AbortSignal | undefined
  /** Which DKIM-Signature fields (numbered from the top, with their tags) mailauth verifies. */
  readonly verify: (index: number, tags: SignatureTags) => boolean
  /** Also verify the newest ARC-Message-Signature, for arc(). */
  readonly arc: boolean
  /** RSA keys shorter than this get `policy` (RFC 8301 §3.2: 1024). */
  readonly minRsaBits: number
  /** The time signatures are judged at (t=, x=); default now. */
  readonly now?: Date | undefined
  /** mailauth's strict mode: RFC 6376 and 8617 syntax to the letter instead of its lenient defaults. */
  readonly strict?: boolean | undefined
}

/**
 * Runs mailauth's verifier over a message (header section and body, as the queue would
 * receive it) with the signatures `verify` picks.
 */
export async function verifierPass(input: Readable, opts: VerifierPassOptions): Promise<VerifierPass> {
  const temporaryFailures: string[] = []
  const resolver = memoized(mailauthResolver(opts.dns, { signal: opts.signal }), temporaryFailures)
  const verifier = new DkimVerifier({
    resolver,
    minBitLength: opts.minRsaBits,
    // RFC 8301 §3.1: rsa-sha1 MUST NOT be used for verifying: `policy`, not `pass`.
    rejectRsaSha1: true,
    strict: opts.strict === true,
    curTime: opts.now,
  })
  reuseParsedKeys(verifier.keyCache)
  const messageHeaders = verifier.messageHeaders.bind(verifier)
  verifier.messageHeaders = async (headers) => {
    const all = headers.parsed
    let index = 0
    headers.parsed = all.filter((field) => {
      if (field.key !== 'dkim-signature') return true
      const tags = parseDkimHeaders(field.line)
      const keep = opts.verify(index++, tags)
      if (keep) prefetchKey(resolver, tags)
      return keep
    })
    try {
      await messageHeaders(headers)
    } finally {
      // Signed fields are looked up in the whole section, other DKIM-Signature fields included.
      headers.parsed = all
    }
    if (!opts.arc) verifier.signatureHeaders = verifier.signatureHeaders.filter((s) => s.type !== 'ARC')
    else if (verifier.arc.lastEntry !== undefined) prefetchArcKeys(resolver, verifier.arc)
  }
  await pipeline(input, verifier, ...(opts.signal === undefined ? [] : [{ signal: opts.signal }]))
  return { results: verifier.results, arc: verifier.arc, resolver, temporaryFailures }
}

/**
 * Keys parsed from their records, shared by every message of the process: the record is still
 * looked up for each message (through the DNS cache, so a new record takes effect at its TTL),
 * but the same text is not parsed into a key object again (a third of mailauth's work per
 * signature, measured). Only keys that parsed are kept; at most PARSED_KEYS, oldest out first.
 */
const parsedKeys = new Map<string, Promise<unknown>>()
const PARSED_KEYS = 1000

function reuseParsedKeys(cache: KeyCache): void {
  const perMessage = new Map<string, Promise<unknown>>()
  cache.get = (type, name, minBitLength, options = {}) => {
    const asked = [type, options.strict === true, minBitLength, options.hashAlgo ?? '', name].join('|')
    let lookup = perMessage.get(asked)
    if (lookup === undefined) {
      lookup = parsedKey(cache.resolver, type, name, minBitLength, options)
      lookup.catch(() => undefined)
      perMessage.set(asked, lookup)
    }
    return lookup
  }
}

async function parsedKey(
  resolve: MailauthResolver,
  type: string,
  name: string,
  minBitLength: number,
  options: KeyOptions,
): Promise<unknown> {
  const answer = await resolve(name, 'TXT').then(
    (records) => ({ records }),
    (error: unknown) => ({ error }),
  )
  if ('error' in answer) return getPublicKey(type, name, minBitLength, () => Promise.reject(answer.error), options)
  const text = [type, options.strict === true, minBitLength, options.hashAlgo ?? '', JSON.stringify(answer.records)]
  const key = text.join('|')
  const known = parsedKeys.get(key)
  if (known !== undefined) return known
  const parsed = getPublicKey(type, name, minBitLength, () => Promise.resolve(answer.records), options)
  parsed.then(
    () => {
      parsedKeys.set(key, parsed)
      if (parsedKeys.size > PARSED_KEYS) parsedKeys.delete(parsedKeys.keys().next().value as string)
    },
    () => undefined,
  )
  return parsed
}

/** Failures that say nothing about the record: asking later may well succeed. */
const temporary = new Set(['ETIMEOUT', 'ESERVFAIL', 'ECANCELLED'])

/** Every answer asked once per pass: the prefetch and mailauth's own lookups share it. */
function memoized(resolve: MailauthResolver, temporaryFailures: string[]): MailauthResolver {
  const answers = new Map<string, Promise<unknown[]>>()
  return (name, rrtype) => {
    const key = `${rrtype.toUpperCase()} ${name.toLowerCase()}`
    let answer = answers.get(key)
    if (answer === undefined) {
      answer = resolve(name, rrtype)
      answer.catch((e: { code?: string }) => {
        if (temporary.has(e.code ?? '')) temporaryFailures.push(`${name}: ${e.code}`)
      })
      answers.set(key, answer)
    }
    return answer
  }
}

const keyName = (tags: SignatureTags): string | undefined => {
  const domain = domainToASCII(tagValue(tags, 'd'))
  const selector = tagValue(tags, 's')
  return domain === '' || selector === '' ? undefined : `${selector}._domainkey.${domain}`
}

function prefetchKey(resolver: MailauthResolver, tags: SignatureTags): void {
  const name = keyName(tags)
  // Failures are mailauth's to see when it asks; this only starts the question early.
  if (name !== undefined) resolver(name, 'TXT').catch(() => undefined)
}

/** The keys of every ARC-Seal and of the newest ARC-Message-Signature, asked at once. */
function prefetchArcKeys(resolver: MailauthResolver, arc: ArcData): void {
  if (!Array.isArray(arc.chain)) return
  for (const set of arc.chain as Record<string, SignatureTags | undefined>[]) {
    const seal = set['arc-seal']
    if (seal !== undefined) prefetchKey(resolver, seal)
  }
  const last = arc.lastEntry as Record<string, SignatureTags | undefined>
  const ams = last['arc-message-signature']
  if (ams !== undefined) prefetchKey(resolver, ams)
}
