/**
 * helo/checks (qpsmtpd `helo`, and Debian's `check_spamhelo`, which loads it): checks the
 * HELO/EHLO name. Policy `lenient` (the default, and check_spamhelo's): the `badhelo` list
 * (names, or Perl patterns, `!pattern` negated), `localhost` from a client that is not local,
 * an address literal that is not the client's address, a plain IP address. `rfc` adds: not a
 * FQDN, no forward DNS, no reverse DNS for the client; `strict` adds: any address literal, and
 * neither forward nor reverse DNS matching (dns-facts.ts; every lookup at once). The first
 * failing test decides: `550 5.7.1` and close by default (qpsmtpd's reject_type disconnect). A
 * DNS failure never refuses permanently: `on_error defer` (450/421 4.4.3) or `pass`. Relay
 * clients and whitelisted hosts are not checked. Every message gets an `X-HELO` header.
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../../config/config-error.ts'
import { type PerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import type { HookContext } from '../../host/context.ts'
import { adjustKarma, isImmune, rejectAs, rejectOptions, rejectTypes } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook, HeloHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import { parseIp } from '../../net/ip.ts'
import { type HeloDnsFacts, heloDnsFacts } from './dns-facts.ts'

/** An address of the HELO name is the client's, or in its network (qpsmtpd's helo_forward_match note). */
export const HeloForwardMatch = defineKey<boolean>('helo_forward_match', { scope: 'connection', initial: false })
/** A PTR name of the client is the HELO name, or in its domain (qpsmtpd's helo_reverse_match note). */
export const HeloReverseMatch = defineKey<boolean>('helo_reverse_match', { scope: 'connection', initial: false })

/** A failed test: the reply text and the word for the log. */
type Failure = readonly [reply: string, log: string]
type HeloTest = (ctx: HookContext, host: string) => Failure | undefined
/** A test on what DNS says: a failure, `dns-error` when DNS could not tell, or undefined. */
type DnsTest = (host: string, ip: string, facts: HeloDnsFacts) => Failure | 'dns-error' | undefined

const isAddressLiteral = (host: string): boolean => host.startsWith('[') && host.endsWith(']')

const notFqdn: HeloTest = (_ctx, host) => {
  if (isAddressLiteral(host)) return undefined
  if (!host.includes('.')) return ['HELO name is not fully qualified. Read RFC 2821', 'not FQDN']
  if (/[^a-zA-Z0-9.-]/.test(host))
    return ['HELO name contains invalid FQDN characters. Read RFC 1035', 'invalid FQDN chars']
  return undefined
}
const addressLiteral: HeloTest = (_ctx, host) =>
  isAddressLiteral(host) ? ['RFC 2821 allows an address literal, but we do not', 'bracketed IP'] : undefined

const noForwardDns: DnsTest = (_host, _ip, facts) => {
  switch (facts.forward) {
    case undefined:
    case 'found':
      return undefined
    case 'error':
      return 'dns-error'
    case 'nxdomain':
      return ['HELO hostname does not exist', 'no such host']
    case 'nodata':
      return ['HELO hostname did not resolve', 'no forward DNS']
  }
}
const noReverseDns: DnsTest = (_host, ip, facts) => {
  switch (facts.reverse) {
    case 'found':
      return undefined
    case 'error':
      return 'dns-error'
    case 'nxdomain':
      return [`no rDNS for ${ip}`, 'no rDNS']
    case 'nodata':
      return [`no reverse DNS for ${ip}`, 'no rDNS']
  }
}
const noMatchingDns: DnsTest = (_host, _ip, facts) => {
  if (facts.forwardMatch || facts.reverseMatch) return undefined
  if (facts.forward === 'error' || facts.reverse === 'error') return 'dns-error'
  return ['That HELO hostname fails FCrDNS', 'no matching DNS']
}

interface BadHelo {
  readonly names: ReadonlySet<string>
  readonly patterns: readonly { readonly pattern: PerlPattern; readonly negated: boolean }[]
}

/** qpsmtpd's test for "this badhelo line is a regexp". */
const PATTERN_CHARS = /[{}[\]()^$|*+?\\!]/

function parseBadHelo(lines: readonly ConfigLine[]): BadHelo {
  const names = new Set<string>()
  const patterns: { pattern: PerlPattern; negated: boolean }[] = []
  const problems: ConfigError[] = []
  for (const at of lines) {
    const entry = at.text.trim()
    if (!PATTERN_CHARS.test(entry)) {
      names.add(entry.toLowerCase())
      continue
    }
    const negated = entry.startsWith('!')
    try {
      patterns.push({ pattern: perlPatternAt(at, negated ? entry.slice(1) : entry), negated })
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      problems.push(e)
    }
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return { names, patterns }
}

const V4_LITERAL = /^\[((?:\d{1,3}\.){3}\d{1,3})\]$/
const V6_LITERAL = /^\[IPv6:([0-9A-Fa-f:.]+)\]$/i

/** The address inside an address literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), canonical. */
function literalAddress(host: string): string | undefined {
  const inner = V4_LITERAL.exec(host)?.[1] ?? V6_LITERAL.exec(host)?.[1]
  return inner === undefined ? undefined : canonical(inner)
}

function canonical(ip: string): string | undefined {
  const parsed = parseIp(ip)
  return parsed === undefined ? undefined : `${parsed.family}:${parsed.value}`
}

const isLoopback = (ip: string): boolean => {
  const parsed = parseIp(ip)
  if (parsed === undefined) return false
  return parsed.family === 4 ? parsed.value >>> 24 === 127 : parsed.value === 1n
}

export default definePlugin({
  name: 'helo/checks',
  aliases: ['helo', 'check_spamhelo'],
  description: 'check the HELO/EHLO name: badhelo, localhost, forged literals, plain IPs (policy lenient, rfc, strict)',
  options: {
    policy: opt.enum(['lenient', 'rfc', 'strict'], { default: 'lenient', description: 'which tests run' }),
    timeout: opt.number({ default: 5, min: 0.1, description: 'seconds for each DNS query (rfc, strict)' }),
    on_error: opt.enum(['defer', 'pass'], {
      default: 'defer',
      description: 'rfc, strict: a DNS lookup that fails defers (4xx) or skips its test',
    }),
    reject: rejectOptions.reject,
    reject_type: opt.enum(rejectTypes, { default: 'disconnect', description: 'how a refusal is sent' }),
    loglevel: rejectOptions.loglevel,
  },
  timeoutMs: 30_000,
  setup({ options, config, dns }) {
    if (options.policy !== 'lenient' && dns === undefined)
      throw new Error(`policy ${options.policy} asks DNS, and this server has no DNS service`)
    const badhelo = config.live('badhelo', parseBadHelo)

    const isInBadhelo: HeloTest = (_ctx, host) => {
      const lower = host.toLowerCase()
      const list = badhelo.current()
      if (list.names.has(lower)) return [`I do not believe you are ${host}.`, 'in badhelo']
      for (const { pattern, negated } of list.patterns)
        if (pattern.test(lower) !== negated)
          return ['Your HELO hostname is not allowed', `badhelo pattern match (${negated ? '!' : ''}${pattern.source})`]
      return undefined
    }
    const invalidLocalhost: HeloTest = (ctx, host) =>
      host.toLowerCase() === 'localhost' && !isLoopback(ctx.connection.remote.ip)
        ? ['You are not localhost', 'invalid localhost']
        : undefined
    const isForgedLiteral: HeloTest = (ctx, host) => {
      if (!host.startsWith('[')) return undefined
      const literal = literalAddress(host)
      if (literal !== undefined && literal === canonical(ctx.connection.remote.ip)) return undefined
      return ['Forged IPs not accepted here', 'forged IP literal']
    }
    const isPlainIp: HeloTest = (_ctx, host) =>
      /^(?:\d{1,3}\.){3}\d{1,3}$/.test(host) || (host.includes(':') && parseIp(host) !== undefined)
        ? ['Plain IP is invalid HELO hostname (RFC 2821)', 'plain IP']
        : undefined
    type Step = { readonly local: HeloTest } | { readonly dns: DnsTest }
    const lenient: Step[] = [isInBadhelo, invalidLocalhost, isForgedLiteral, isPlainIp].map((local) => ({ local }))
    const steps: readonly Step[] = [
      ...lenient,
      ...(options.policy === 'lenient' ? [] : [{ local: notFqdn }, { dns: noForwardDns }, { dns: noReverseDns }]),
      ...(options.policy === 'strict' ? [{ local: addressLiteral }, { dns: noMatchingDns }] : []),
    ]
    const timeoutMs = options.timeout * 1000
    const dnsFailure = (ctx: HookContext, errors: readonly string[]): Verdict | undefined => {
      ctx.log.warn(`DNS failure: ${errors.join('; ')}`)
      if (options.on_error === 'pass' || options.reject !== '1') return undefined
      ctx.result('error', 'DNS failure')
      const close = options.reject_type === 'disconnect' || options.reject_type === 'temp_disconnect'
      return defer(
        {
          code: close ? 421 : 450,
          enhanced: '4.4.3',
          text: 'Cannot check your HELO name now (DNS failure), try again later',
        },
        { disconnect: close },
      )
    }

    const helo: HeloHook = async (ctx, host) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      let facts: Promise<HeloDnsFacts> | undefined
      for (const step of steps) {
        let failed: Failure | 'dns-error' | undefined
        if ('local' in step) failed = step.local(ctx, host)
        else if (dns !== undefined) {
          // Every lookup the policy needs starts with the first DNS test, all at once.
          facts ??= heloDnsFacts(dns, host, ctx.connection.remote.ip, {
            literal: isAddressLiteral(host),
            signal: ctx.signal,
            timeoutMs,
          }).then((f) => {
            ctx.connection.notes.set(HeloForwardMatch, f.forwardMatch)
            ctx.connection.notes.set(HeloReverseMatch, f.reverseMatch)
            return f
          })
          const f = await facts
          failed = step.dns(host, ctx.connection.remote.ip, f)
          if (failed === 'dns-error') {
            const verdict = dnsFailure(ctx, f.errors)
            if (verdict !== undefined) return verdict
            continue
          }
        }
        if (failed === undefined || failed === 'dns-error') continue
        adjustKarma(ctx, -1)
        ctx.log.info(`fail, ${failed[1]}`)
        return rejectAs(ctx, options, failed[0])
      }
      ctx.result('pass')
      return pass()
    }

    const dataPost: DataPostHook = (ctx, msg) => {
      const host = ctx.connection.helo?.host
      msg.headers.remove('X-HELO')
      if (host !== undefined) msg.headers.add('X-HELO', host)
      return pass()
    }

    return { hooks: { helo, ehlo: helo, dataPost } }
  },
})
