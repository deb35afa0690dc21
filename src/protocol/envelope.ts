/**
 * Envelope values as the protocol layer hands them to the session and plugins:
 * parsed paths (RFC 5321 §4.1.2) and ESMTP parameters (RFC 1870 SIZE, RFC 6152/3030 BODY,
 * RFC 6531 SMTPUTF8, RFC 3461 DSN, RFC 4954 AUTH, RFC 8689 REQUIRETLS).
 */

/** A mailbox from an envelope path. `domain` is undefined only for the bare `<postmaster>`. */
export interface Address {
  readonly local: string
  readonly domain: string | undefined
  /** True when the local part or domain holds non-ASCII (needs SMTPUTF8). */
  readonly utf8: boolean
}

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME'
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY'

export interface MailParams {
  readonly size: number | undefined
  readonly body: BodyType | undefined
  readonly smtputf8: boolean
  readonly requireTls: boolean
  /** RFC 3461 RET. */
  readonly ret: 'FULL' | 'HDRS' | undefined
  /** RFC 3461 ENVID, xtext-decoded, for plugins and logs. */
  readonly envid: string | undefined
  /** ENVID as the client encoded it; a relay passes it on unchanged (RFC 3461 §4.4). */
  readonly envidEncoded: string | undefined
  /** RFC 4954 AUTH=, xtext-decoded; `<>` when the client sent it. */
  readonly auth: string | undefined
  /** Parameters no extension of ours claims, upper-cased keys (plugins may accept them). */
  readonly other: ReadonlyMap<string, string | undefined>
}

/** RFC 3461 ORCPT (and RFC 6533 `utf-8` addresses). */
export interface Orcpt {
  /** The addr-type as sent: `rfc822`, `utf-8`, ... */
  readonly type: string
  /** The decoded original recipient, for plugins and logs. */
  readonly address: string
  /** The address as the client encoded it; a relay passes it on unchanged (RFC 3461 §5.2.1). */
  readonly encoded: string
}

export interface RcptParams {
  readonly notify: readonly DsnNotify[] | undefined
  readonly orcpt: Orcpt | undefined
  readonly other: ReadonlyMap<string, string | undefined>
}

export interface MailFrom {
  /** null is the null reverse path `<>`. */
  readonly address: Address | null
  readonly params: MailParams
}

export interface RcptTo {
  readonly address: Address
  readonly params: RcptParams
}

/** `local@domain`, with the local part quoted when RFC 5321 requires it. */
export function formatAddress(a: Address | null): string {
  if (a === null) return ''
  const local =
    /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\u{10ffff}-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\u{10ffff}-]+)*$/u.test(
      a.local,
    )
      ? a.local
      : `"${a.local.replace(/(["\\])/g, '\\$1')}"`
  return a.domain === undefined ? local : `${local}@${a.domain}`
}
