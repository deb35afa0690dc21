/**
 * ESMTP parameters of MAIL and RCPT (RFC 5321 §4.1.2 esmtp-param) into MailParams / RcptParams.
 *
 * Only parameters of extensions advertised to this client are accepted (RFC 5321 §4.1.1.11: 555).
 * No policy: SIZE against the limit, REQUIRETLS without TLS and AUTH= trust are the session's job.
 * RFC 1870 SIZE, RFC 6152 / RFC 3030 BODY, RFC 6531 SMTPUTF8, RFC 3461 RET ENVID NOTIFY ORCPT,
 * RFC 4954 AUTH, RFC 8689 REQUIRETLS.
 * Security: values must be printable ASCII and xtext must not decode to control characters
 * (Exim CVE-2020-28021). One linear pass.
 */
import type { BodyType, DsnNotify, MailParams, Orcpt, RcptParams } from './envelope.ts'
import { type ParseResult, parsed, parseError } from './parse-result.ts'
import { decodeUtf8AddrXtext, decodeXtext } from './xtext.ts'

/** The extensions advertised in our EHLO reply to this client. */
export interface ExtensionSet {
  readonly size: boolean
  readonly eightBitMime: boolean
  readonly binaryMime: boolean
  readonly smtputf8: boolean
  readonly dsn: boolean
  readonly requireTls: boolean
  readonly auth: boolean
  /** Further upper-case keywords that plugins advertised; they land in `other` instead of getting 555. */
  readonly otherKeywords?: readonly string[]
}

interface Param {
  readonly keyword: string
  readonly value: string | undefined
}

const MAX_ENVID = 100 // RFC 3461 §4.4
const MAX_ORCPT = 500 // RFC 3461 §4.2
const MAX_AUTH = 256 // ours: an RFC 5321 path is at most 256 octets

const bad = <T>(message: string): ParseResult<T> => parseError(501, '5.5.4', message)
const unsupported = <T>(keyword: string): ParseResult<T> => parseError(555, '5.5.4', `Unsupported parameter ${keyword}`)

const isKeywordChar = (c: number, first: boolean): boolean =>
  (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || (!first && c === 0x2d)
// esmtp-value = 1*(%d33-60 / %d62-126), and UTF8-non-ascii in an SMTPUTF8 transaction (RFC 6531 §3.3).
const isValueChar = (c: number, utf8: boolean): boolean => (c >= 33 && c <= 126 && c !== 0x3d) || (utf8 && c >= 0xa0)

/**
 * Splits `KEY=value KEY2` into upper-cased keywords and raw values; refuses duplicates, except
 * that a keyword given without a value each time is kept once.
 */
function tokenize(params: string, utf8 = false): ParseResult<Param[]> {
  const out: Param[] = []
  const seen = new Set<string>()
  const valueless = new Set<string>()
  let i = 0
  while (i < params.length) {
    if (params.charCodeAt(i) === 0x20) {
      i++
      continue
    }
    let j = i
    while (j < params.length && params.charCodeAt(j) !== 0x20) j++
    const token = params.slice(i, j)
    i = j
    const eq = token.indexOf('=')
    const keyword = eq === -1 ? token : token.slice(0, eq)
    for (let k = 0; k < keyword.length; k++) {
      if (!isKeywordChar(keyword.charCodeAt(k), k === 0)) return bad('Bad parameter syntax: invalid keyword')
    }
    if (keyword === '') return bad('Bad parameter syntax: missing keyword')
    const upper = keyword.toUpperCase()
    if (eq !== -1) {
      const value = token.slice(eq + 1)
      if (value === '') return bad(`Bad ${upper} parameter: empty value`)
      for (let k = 0; k < value.length; k++) {
        if (!isValueChar(value.charCodeAt(k), utf8)) return bad(`Bad ${upper} parameter: value must be printable ASCII`)
      }
    }
    if (seen.has(upper)) {
      // A flag repeated without a value (Python's smtplib sends `SMTPUTF8 SMTPUTF8`) changes nothing.
      if (eq === -1 && valueless.has(upper)) continue
      return bad(`Duplicate parameter ${upper}`)
    }
    seen.add(upper)
    if (eq === -1) valueless.add(upper)
    out.push({ keyword: upper, value: eq === -1 ? undefined : token.slice(eq + 1) })
  }
  return parsed(out)
}

function noValue(p: Param): ParseResult<true> {
  return p.value === undefined ? parsed(true) : bad(`Bad ${p.keyword} parameter: takes no value`)
}

function needValue(p: Param): ParseResult<string> {
  return p.value === undefined ? bad(`Bad ${p.keyword} parameter: value required`) : parsed(p.value)
}

/** Decodes an xtext value; `asciiOnly` also refuses decoded non-ASCII (RFC 3461 wants printable US-ASCII). */
function xtextValue(p: Param, asciiOnly: boolean): ParseResult<string> {
  const raw = needValue(p)
  if (!raw.ok) return raw
  const d = decodeXtext(raw.value)
  if (!d.ok) return bad(`Bad ${p.keyword} parameter: ${d.message}`)
  if (asciiOnly && /[^\x20-\x7e]/.test(d.value)) return bad(`Bad ${p.keyword} parameter: decoded value is not ASCII`)
  return d
}

function parseSize(p: Param): ParseResult<number> {
  const v = needValue(p)
  if (!v.ok) return v
  // RFC 1870: size-value = 1*20DIGIT; past 2^53 a number would silently round.
  if (!/^[0-9]{1,20}$/.test(v.value)) return bad('Bad SIZE parameter: expected 1 to 20 digits')
  const n = Number(v.value)
  return Number.isSafeInteger(n) ? parsed(n) : bad('Bad SIZE parameter: value too large')
}

function parseBody(p: Param, ext: ExtensionSet): ParseResult<BodyType> {
  const v = needValue(p)
  if (!v.ok) return v
  const body = v.value.toUpperCase()
  if (body === '7BIT') return parsed(body)
  if (body === '8BITMIME') return ext.eightBitMime ? parsed(body) : unsupported('BODY=8BITMIME')
  if (body === 'BINARYMIME') return ext.binaryMime ? parsed(body) : unsupported('BODY=BINARYMIME')
  return bad('Bad BODY parameter: expected 7BIT, 8BITMIME or BINARYMIME')
}

function parseAuth(p: Param): ParseResult<string> {
  if (p.value === '<>') return parsed('<>')
  const d = xtextValue(p, false)
  if (!d.ok) return d
  if (d.value === '' || Buffer.byteLength(d.value) > MAX_AUTH) return bad('Bad AUTH parameter: bad length')
  return d
}

/**
 * Parses the parameters of MAIL FROM.
 *
 * @example
 * parseMailParams('SIZE=1000 BODY=8BITMIME', ext) // { ok: true, value: { size: 1000, body: '8BITMIME', ... } }
 */
export function parseMailParams(params: string, ext: ExtensionSet): ParseResult<MailParams> {
  const tokens = tokenize(params)
  if (!tokens.ok) return tokens
  let size: number | undefined
  let body: BodyType | undefined
  let smtputf8 = false
  let requireTls = false
  let ret: 'FULL' | 'HDRS' | undefined
  let envid: string | undefined
  let envidEncoded: string | undefined
  let auth: string | undefined
  const other = new Map<string, string | undefined>()
  const extra = new Set(ext.otherKeywords?.map((k) => k.toUpperCase()))
  for (const p of tokens.value) {
    const k = p.keyword
    if (k === 'SIZE' && ext.size) {
      const r = parseSize(p)
      if (!r.ok) return r
      size = r.value
    } else if (k === 'BODY' && (ext.eightBitMime || ext.binaryMime)) {
      const r = parseBody(p, ext)
      if (!r.ok) return r
      body = r.value
    } else if (k === 'SMTPUTF8' && ext.smtputf8) {
      const r = noValue(p)
      if (!r.ok) return r
      smtputf8 = true
    } else if (k === 'REQUIRETLS' && ext.requireTls) {
      const r = noValue(p)
      if (!r.ok) return r
      requireTls = true
    } else if (k === 'RET' && ext.dsn) {
      const v = p.value?.toUpperCase()
      if (v !== 'FULL' && v !== 'HDRS') return bad('Bad RET parameter: expected FULL or HDRS')
      ret = v
    } else if (k === 'ENVID' && ext.dsn) {
      const r = xtextValue(p, true)
      if (!r.ok) return r
      if (r.value.length > MAX_ENVID) return bad(`Bad ENVID parameter: longer than ${MAX_ENVID} characters`)
      envid = r.value
      envidEncoded = p.value
    } else if (k === 'AUTH' && ext.auth) {
      const r = parseAuth(p)
      if (!r.ok) return r
      auth = r.value
    } else if (extra.has(k)) {
      other.set(k, p.value)
    } else {
      return unsupported(k)
    }
  }
  return parsed({ size, body, smtputf8, requireTls, ret, envid, envidEncoded, auth, other })
}

const NOTIFY_VALUES: ReadonlySet<string> = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'])

function parseNotify(p: Param): ParseResult<DsnNotify[]> {
  const v = needValue(p)
  if (!v.ok) return v
  const list: DsnNotify[] = []
  for (const item of v.value.toUpperCase().split(',')) {
    if (!NOTIFY_VALUES.has(item)) return bad('Bad NOTIFY parameter: expected NEVER or SUCCESS,FAILURE,DELAY')
    if (!list.includes(item as DsnNotify)) list.push(item as DsnNotify)
  }
  // RFC 3461 §4.1: NEVER stands alone.
  if (list.includes('NEVER') && list.length > 1) return bad('Bad NOTIFY parameter: NEVER must be used alone')
  return parsed(list)
}

// RFC 3461 §4.2 addr-type = atom (RFC 5322 atext, e.g. rfc822, utf-8).
const ADDR_TYPE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/

/**
 * `type;address`: rfc822 (and unknown types) in xtext, utf-8 in RFC 6533 utf-8-addr-xtext or, in
 * an SMTPUTF8 transaction, utf-8-addr-unitext. UTF-8 in an rfc822 address (Postfix relaying
 * `RCPT TO:<üser@...>` sends `rfc822;+C3+BCser@...`) needs an SMTPUTF8 transaction too.
 */
function parseOrcpt(p: Param, smtputf8: boolean): ParseResult<Orcpt> {
  const v = needValue(p)
  if (!v.ok) return v
  if (v.value.length > MAX_ORCPT) return bad(`Bad ORCPT parameter: longer than ${MAX_ORCPT} characters`)
  const semi = v.value.indexOf(';')
  const type = v.value.slice(0, semi)
  if (semi <= 0 || !ADDR_TYPE.test(type)) return bad('Bad ORCPT parameter: expected addr-type;xtext')
  const encoded = v.value.slice(semi + 1)
  if (encoded === '') return bad('Bad ORCPT parameter: empty address')
  const kind = type.toLowerCase()
  const d =
    kind === 'utf-8' ? decodeUtf8AddrXtext(encoded, { utf8: smtputf8 }) : decodeXtext(encoded, { utf8: smtputf8 })
  if (!d.ok) return bad(`Bad ORCPT parameter: ${d.message}`)
  if (kind === 'rfc822' && !smtputf8 && /[^\x20-\x7e]/.test(d.value))
    return bad('Bad ORCPT parameter: decoded value is not ASCII (needs SMTPUTF8)')
  return parsed({ type, address: d.value, encoded })
}

/** What RCPT parameters depend on besides the offered extensions. */
export interface RcptContext {
  /** The transaction's MAIL had SMTPUTF8 (RFC 6531 §3.4): ORCPT may carry UTF-8. */
  readonly smtputf8: boolean
}

/**
 * Parses the parameters of RCPT TO.
 *
 * @example
 * parseRcptParams('NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c', ext, { smtputf8: false })
 * // { ok: true, value: { notify: ['SUCCESS', 'FAILURE'], orcpt: { type: 'rfc822', address: 'a+b@c', encoded: 'a+2Bb@c' }, ... } }
 */
export function parseRcptParams(params: string, ext: ExtensionSet, txn: RcptContext): ParseResult<RcptParams> {
  const tokens = tokenize(params, txn.smtputf8)
  if (!tokens.ok) return tokens
  let notify: DsnNotify[] | undefined
  let orcpt: Orcpt | undefined
  const other = new Map<string, string | undefined>()
  const extra = new Set(ext.otherKeywords?.map((k) => k.toUpperCase()))
  for (const p of tokens.value) {
    if (p.keyword === 'NOTIFY' && ext.dsn) {
      const r = parseNotify(p)
      if (!r.ok) return r
      notify = r.value
    } else if (p.keyword === 'ORCPT' && ext.dsn) {
      const r = parseOrcpt(p, txn.smtputf8)
      if (!r.ok) return r
      orcpt = r.value
    } else if (extra.has(p.keyword)) {
      other.set(p.keyword, p.value)
    } else {
      return unsupported(p.keyword)
    }
  }
  return parsed({ notify, orcpt, other })
}
