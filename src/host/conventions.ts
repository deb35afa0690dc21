/**
 * qpsmtpd's cross-plugin conventions as typed keys and helpers: immunity (relay clients
 * and whitelists skip checks), the naughty note (detect now, reject later), karma, and the
 * common `reject 0|1|naughty` / `reject_type` / `loglevel` plugin arguments.
 */
import type { P0fAnswer } from '../clients/p0f/p0f.ts'
import type { EnhancedCode } from '../protocol/reply.ts'
import type { HookContext } from './context.ts'
import { defineKey } from './keys.ts'
import { opt } from './options.ts'
import { defer, pass, reject, type Verdict } from './verdict.ts'

/** Reasons collected for a later rejection by the `naughty` plugin; AUTH clears it. */
export const Naughty = defineKey<string[]>('naughty', { scope: 'connection', initial: () => [] })
/**
 * Why content filters want the message quarantined (milter's SMFIR_QUARANTINE), one entry per
 * request: `queue/quarantine` with `marked_only` keeps exactly these messages (Postfix's hold queue).
 */
export const Quarantined = defineKey<string[]>('quarantine', { scope: 'transaction', initial: () => [] })
/** Connection karma: plugins add or subtract. */
export const Karma = defineKey<number>('karma', { scope: 'connection', initial: 0 })
/**
 * The client's history from the karma plugin (qpsmtpd's `karma_history` note): its nice minus
 * naughty connections, 0 for a client karma has no record of; undefined when karma is not loaded
 * (or has not run yet). hosts_allow, earlytalker and limit read it.
 */
export const KarmaHistory = defineKey<number | undefined>('karma_history', { scope: 'connection', initial: undefined })

/**
 * The client's passive OS fingerprint (qpsmtpd's `p0f` note), set by `ident/p0f` at connect;
 * greylisting's `p0f` option and `p0f_blocked_operating_systems` read it. Fields p0f could not
 * tell are absent.
 */
export interface P0fFingerprint {
  /** The OS, p0f 3's name and flavor as qpsmtpd joined them: "Linux 2.2.x-3.x", "Windows 7 or 8". */
  readonly genre?: string | undefined
  /** The flavor alone ("2.2.x-3.x"): p0f 2's detail. */
  readonly detail?: string | undefined
  /** Hours. */
  readonly uptime?: number | undefined
  /** The link type ("Ethernet or modem", "DSL"). */
  readonly link?: string | undefined
  /** Network hops. */
  readonly distance?: number | undefined
  /** Everything p0f 3 said of the host. */
  readonly answer?: P0fAnswer | undefined
}
export const P0f = defineKey<P0fFingerprint | undefined>('p0f', { scope: 'connection', initial: undefined })

/** The client's country (qpsmtpd's `geoip_country` note: ISO 3166 code), set by `ident/geoip`. */
export const GeoIpCountry = defineKey<string | undefined>('geoip_country', { scope: 'connection', initial: undefined })

/**
 * Where the client is, by `ident/geoip` at connect (qpsmtpd's `geoip_*` notes): what the
 * databases did not say is absent; the whole key is undefined for an address they do not know.
 */
export interface GeoIpInfo {
  /** ISO 3166 code (`geoip_country`), as GeoIpCountry. */
  readonly country?: string | undefined
  /** In English (`geoip_country_name`). */
  readonly countryName?: string | undefined
  /** Two-letter continent code (`geoip_continent`): AF, AN, AS, EU, NA, OC, SA. */
  readonly continent?: string | undefined
  /** In English (`geoip_city`). */
  readonly city?: string | undefined
  readonly latitude?: number | undefined
  readonly longitude?: number | undefined
  /** Kilometres from our server (`geoip_distance`), with the plugin's `distance` option. */
  readonly distanceKm?: number | undefined
  /** The autonomous system's number (`geoip_asn`) and organisation. */
  readonly asn?: number | undefined
  readonly asnOrganization?: string | undefined
}
export const GeoIp = defineKey<GeoIpInfo | undefined>('geoip', { scope: 'connection', initial: undefined })

/** Set by whitelist plugins (qpsmtpd notes whitelisthost / whitelistsender). */
export const WhitelistHost = defineKey<boolean>('whitelisthost', { scope: 'connection', initial: false })
export const WhitelistSender = defineKey<boolean>('whitelistsender', { scope: 'transaction', initial: false })

/** Relay clients and whitelisted hosts or senders skip policy checks (qpsmtpd is_immune). */
export function isImmune(ctx: HookContext): boolean {
  if (ctx.connection.relayClient || ctx.connection.notes.get(WhitelistHost)) return true
  return ctx.transaction?.notes.get(WhitelistSender) === true
}

export const isNaughty = (ctx: HookContext): boolean => ctx.connection.notes.get(Naughty).length > 0

/**
 * Recipients the naughty plugin lets through although the connection is naughty: dnsbl spares
 * postmaster and abuse (RFC 5321 §4.5.1, RFC 2142), so that a listed client can still reach us.
 * qpsmtpd cleared the whole note instead, which let every later recipient of the session through.
 */
export const NaughtySpared = defineKey<Set<string>>('naughty/spared', {
  scope: 'transaction',
  initial: () => new Set(),
})

/** The form recipients are compared in for NaughtySpared. */
export const sparedKey = (a: { readonly local: string; readonly domain?: string | undefined }): string =>
  `${a.local}@${a.domain ?? ''}`.toLowerCase()

export function adjustKarma(ctx: HookContext, delta: number): number {
  const k = ctx.connection.notes.get(Karma) + delta
  ctx.connection.notes.set(Karma, k)
  return k
}

/** qpsmtpd's `reject_type` values; `hard` and `soft` are its other spellings of perm and temp (get_reject_type). */
export const rejectTypes = ['perm', 'temp', 'disconnect', 'temp_disconnect', 'hard', 'soft'] as const

/** The standard options every policy plugin accepts; spread into a plugin's option schema. */
export const rejectOptions = {
  reject: opt.enum(['0', '1', 'naughty'], {
    default: '1',
    description: '0 logs only, 1 rejects, naughty defers to the naughty plugin',
  }),
  reject_type: opt.enum(rejectTypes, {
    default: 'perm',
    description: 'how a rejection is sent',
  }),
  loglevel: opt.loglevel({
    description: "this plugin's log entries at level N (0-7 or a name), or N levels less (+N) or more (-N) severe",
  }),
} as const

export interface RejectPolicy {
  readonly reject: '0' | '1' | 'naughty'
  readonly reject_type: (typeof rejectTypes)[number]
}

/**
 * Turns a failed check into the verdict the operator chose (qpsmtpd get_reject):
 * `reject 0` logs "fail, tolerated" and passes; `naughty` records the reason and passes;
 * `1` rejects with the chosen reject_type.
 */
export function rejectAs(
  ctx: HookContext,
  policy: RejectPolicy,
  text: string,
  codes: { readonly perm?: [number, EnhancedCode]; readonly temp?: [number, EnhancedCode] } = {},
): Verdict {
  if (policy.reject === '0') {
    ctx.result('fail', `${text} (tolerated)`)
    return pass('fail, tolerated')
  }
  if (policy.reject === 'naughty') {
    ctx.result('fail', `${text} (naughty)`)
    ctx.connection.notes.get(Naughty).push(`(${ctx.plugin}) ${text}`)
    return pass('naughty')
  }
  ctx.result('fail', text)
  const [permCode, permEnh] = codes.perm ?? [550, '5.7.1']
  const [tempCode, tempEnh] = codes.temp ?? [450, '4.7.1']
  switch (policy.reject_type) {
    case 'temp':
    case 'soft':
      return defer({ code: tempCode, enhanced: tempEnh, text })
    case 'temp_disconnect':
      return defer({ code: 421, enhanced: tempEnh, text }, { disconnect: true })
    case 'disconnect':
      return reject({ code: permCode, enhanced: permEnh, text }, { disconnect: true })
    case 'perm':
    case 'hard':
      return reject({ code: permCode, enhanced: permEnh, text })
  }
}

/**
 * The failure policy of a plugin that asks an outside service (a scanner, a daemon): what a
 * request that failed (down, too slow, a broken answer) means for the message. Spread into a
 * plugin's option schema; `failedCheck` turns a failure into the verdict.
 */
export const failureOptions = {
  on_error: opt.enum(['defer', 'pass'], {
    default: 'defer',
    description: 'when the service cannot answer: defer (451 4.3.0, the sender retries) or pass (accept unchecked)',
  }),
} as const

/**
 * A check that could not be made: logged with `detail`, recorded as an `error` result, and
 * `451 4.3.0 <what> unavailable, try again later` (or pass, under `on_error pass`).
 */
export function failedCheck(
  ctx: HookContext,
  policy: { readonly on_error: 'defer' | 'pass' },
  what: string,
  detail: string,
): Verdict {
  ctx.log.warn(`${what} failed: ${detail}; ${policy.on_error === 'pass' ? 'accepted unchecked' : 'deferred'}`)
  ctx.result('error', `${detail} (${policy.on_error === 'pass' ? 'passed' : 'deferred'})`)
  if (policy.on_error === 'pass') return pass('check failed, passed unchecked')
  return defer({ code: 451, enhanced: '4.3.0', text: `${what} unavailable, try again later` })
}
