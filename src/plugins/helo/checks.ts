/**
 * helo/checks (qpsmtpd `helo`, and Debian's `check_spamhelo`, which loads it): checks the
 * HELO/EHLO name. Policy `lenient` (the default, and check_spamhelo's): the `badhelo` list
 * (names, or Perl patterns, `!pattern` negated), `localhost` from a client that is not local,
 * an address literal that is not the client's address, a plain IP address. `rfc` and
 * `strict` add the name-syntax tests and, with `strict`, refuse address literals; their DNS
 * tests (forward, reverse, matching) need the DNS layer and are refused at start-up until
 * they exist. The first failing test decides: `550 5.7.1` and close by default (qpsmtpd's
 * reject_type disconnect). Relay clients and whitelisted hosts are not checked. Every message
 * gets an `X-HELO` header with the name.
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../../config/config-error.ts'
import { type PerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import type { HookContext } from '../../host/context.ts'
import { adjustKarma, isImmune, rejectAs, rejectOptions, rejectTypes } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook, HeloHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { parseIp } from '../../net/ip.ts'

/** A failed test: the reply text and the word for the log. */
type Failure = readonly [reply: string, log: string]
type HeloTest = (ctx: HookContext, host: string) => Failure | undefined

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
    reject: rejectOptions.reject,
    reject_type: opt.enum(rejectTypes, { default: 'disconnect', description: 'how a refusal is sent' }),
    loglevel: rejectOptions.loglevel,
  },
  timeoutMs: 30_000,
  setup({ options, config }) {
    if (options.policy !== 'lenient')
      throw new Error(
        `policy ${options.policy} needs the DNS tests (forward, reverse and matching DNS), which qtsmtpd does not have yet: use policy lenient`,
      )
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
    const tests: readonly HeloTest[] = [isInBadhelo, invalidLocalhost, isForgedLiteral, isPlainIp]

    const helo: HeloHook = (ctx, host) => {
      if (isImmune(ctx)) {
        ctx.result('skip', 'immune')
        return pass()
      }
      for (const test of tests) {
        const failed = test(ctx, host)
        if (failed === undefined) continue
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
