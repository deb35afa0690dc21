/**
 * Making a DKIM-Signature (RFC 6376 §5), relaxed/relaxed, RSA-SHA256 or Ed25519-SHA256 (RFC
 * 8463), over the header fields that matter to a reader, over-signed so that a field added on
 * the way (a second From, a Reply-To) breaks the signature (RFC 6376 §8.15). mailauth's signer
 * lists only the fields present, so it cannot over-sign: this is ours, checked against mailauth,
 * dkimpy and OpenDKIM in the tests. Signing does not change the message: the caller adds the
 * field on top.
 */
import { createHash, type KeyObject, sign } from 'node:crypto'
import type { HeaderField } from '../../message/headers.ts'
import { relaxedHeader } from './canonical.ts'

export type SigningAlgorithm = 'rsa-sha256' | 'ed25519-sha256'

export interface SigningKey {
  /** `d=`, as an A-label. */
  readonly domain: string
  /** `s=` */
  readonly selector: string
  readonly algorithm: SigningAlgorithm
  readonly privateKey: KeyObject
  /** Where the key was read from, for log lines. */
  readonly file: string
}

/**
 * How often each field name goes into `h=` (after rspamd's default sign_headers):
 * - `over`: every instance plus one, so that nobody can add one (From, To, Cc, Subject, Reply-To);
 * - `overIfPresent`: the same when present, left out when absent, because a relay after us may
 *   add a missing Date or Message-ID (RFC 5321 §6.4; Postfix does for local clients);
 * - `orAbsent`: every instance, or once when absent, so that none can be added;
 * - `present`: every instance.
 */
const fieldPolicy: readonly (readonly [string, 'over' | 'overIfPresent' | 'orAbsent' | 'present'])[] = [
  ['from', 'over'],
  ['sender', 'orAbsent'],
  ['reply-to', 'over'],
  ['subject', 'over'],
  ['date', 'overIfPresent'],
  ['message-id', 'overIfPresent'],
  ['to', 'over'],
  ['cc', 'over'],
  ['mime-version', 'orAbsent'],
  ['content-type', 'orAbsent'],
  ['content-transfer-encoding', 'orAbsent'],
  ['in-reply-to', 'orAbsent'],
  ['references', 'orAbsent'],
  ['resent-date', 'present'],
  ['resent-from', 'present'],
  ['resent-sender', 'present'],
  ['resent-to', 'present'],
  ['resent-cc', 'present'],
  ['resent-message-id', 'present'],
  ['list-id', 'present'],
  ['list-help', 'present'],
  ['list-unsubscribe', 'present'],
  ['list-unsubscribe-post', 'present'],
  ['list-subscribe', 'present'],
  ['list-post', 'present'],
  ['list-owner', 'present'],
  ['list-archive', 'present'],
]

type FieldPolicy = (typeof fieldPolicy)[number][1]

function timesListed(policy: FieldPolicy, present: number): number {
  switch (policy) {
    case 'over':
      return present + 1
    case 'overIfPresent':
      return present > 0 ? present + 1 : 0
    case 'orAbsent':
      return Math.max(present, 1)
    case 'present':
      return present
  }
}

/** The `h=` list for a header section: names in lower case, repeated as the policy says. */
export function signedFieldNames(fields: readonly HeaderField[]): string[] {
  const counts = new Map<string, number>()
  for (const f of fields) {
    const key = f.name.toLowerCase()
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const names: string[] = []
  for (const [name, policy] of fieldPolicy) {
    const times = timesListed(policy, counts.get(name) ?? 0)
    for (let i = 0; i < times; i++) names.push(name)
  }
  return names
}

/**
 * The fields `h=` selects, in its order: the k-th listing of a name takes that name's k-th
 * instance from the bottom; listings beyond the instances select nothing (RFC 6376 §5.4.2).
 */
export function selectFields(fields: readonly HeaderField[], names: readonly string[]): HeaderField[] {
  const used = new Map<string, number>()
  const out: HeaderField[] = []
  for (const name of names) {
    const skip = used.get(name) ?? 0
    used.set(name, skip + 1)
    let seen = 0
    for (let i = fields.length - 1; i >= 0; i--) {
      const f = fields[i] as HeaderField
      if (f.name.toLowerCase() !== name) continue
      if (seen++ === skip) {
        out.push(f)
        break
      }
    }
  }
  return out
}

const WIDTH = 76

/** Joins `tag=value` items with `; `, starting a new line (CRLF TAB) before one that would pass WIDTH. */
function foldTags(tags: readonly string[]): string {
  let out = ''
  let line = 'DKIM-Signature: '.length
  for (const [i, tag] of tags.entries()) {
    const piece = i === tags.length - 1 ? tag : `${tag};`
    if (i > 0 && line + 1 + piece.length > WIDTH) {
      out += `\r\n\t${piece}`
      line = 1 + piece.length
    } else {
      out += i === 0 ? piece : ` ${piece}`
      line += (i === 0 ? 0 : 1) + piece.length
    }
  }
  return out
}

/** `h=` with a fold after a colon where the line would get long (FWS is allowed there, §3.5). */
function foldNames(names: readonly string[]): string {
  const parts: string[] = []
  let line = ''
  for (const [i, name] of names.entries()) {
    const piece = i === names.length - 1 ? name : `${name}:`
    if (line.length + piece.length > WIDTH - 8 && line !== '') {
      parts.push(line)
      line = ''
    }
    line += piece
  }
  parts.push(line)
  return parts.join('\r\n\t ')
}

const chunks = (s: string, size: number): string[] => s.match(new RegExp(`.{1,${size}}`, 'g')) ?? ['']

export interface SignOptions {
  /** `t=`; default now. */
  readonly time?: Date
}

/**
 * The value of a DKIM-Signature field (without the name, folded with CRLF TAB) for a message
 * with these header fields and this relaxed body hash.
 * @example msg.headers.prepend('DKIM-Signature', dkimSignature(msg.headers.fields, bh, key))
 */
export function dkimSignature(
  fields: readonly HeaderField[],
  bodyHash: string,
  key: SigningKey,
  opts: SignOptions = {},
): string {
  const names = signedFieldNames(fields)
  const time = Math.floor((opts.time ?? new Date()).getTime() / 1000)
  const unsigned = `${foldTags([
    'v=1',
    `a=${key.algorithm}`,
    'c=relaxed/relaxed',
    `d=${key.domain}`,
    `s=${key.selector}`,
    `t=${time}`,
    `h=${foldNames(names)}`,
    `bh=${bodyHash}`,
  ])};\r\n\tb=`
  const data = Buffer.concat([
    ...selectFields(fields, names).map((f) => relaxedHeader(f.raw)),
    relaxedHeader(Buffer.from(`DKIM-Signature: ${unsigned}`, 'latin1'), false),
  ])
  const b =
    key.algorithm === 'rsa-sha256'
      ? sign('sha256', data, key.privateKey)
      : // Ed25519-SHA256 signs the SHA-256 of the data with PureEdDSA (RFC 8463 §3).
        sign(null, createHash('sha256').update(data).digest(), key.privateKey)
  return unsigned + chunks(b.toString('base64'), 70).join('\r\n\t ')
}
