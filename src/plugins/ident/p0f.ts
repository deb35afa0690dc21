/**
 * ident/p0f (qpsmtpd's plugin): asks p0f 3 at connect what OS the client runs and how far away
 * it is, from the TCP fingerprint p0f saw on the wire, and keeps the answer as the connection's
 * `P0f` key (qpsmtpd's `p0f` note) for later plugins: greylisting's `p0f` option, karma through
 * `smite_os`, and the recipients of clients whose OS is listed in `p0f_blocked_operating_systems`
 * are refused. X-P0F-Genre and X-P0F-Link-Type go on top of each message.
 *
 * Differs from qpsmtpd: the query has a deadline and a declared failure policy (`on_error`,
 * default pass: a fingerprint is a hint, as it was in qpsmtpd, which had no deadline); a host p0f
 * has not seen yet is asked again for up to `nomatch_wait` ms, since p0f may still be reading
 * the client's SYN when the connect hook runs; IPv6 clients are asked correctly; p0f 2 is refused.
 */
import { ScannerError } from '../../clients/exchange.ts'
import { type P0fAnswer, type P0fResult, p0fLookup } from '../../clients/p0f/p0f.ts'
import type { ConfigLine } from '../../config/config-dir.ts'
import { compilePerlPattern, type PerlPattern, perlPatternAt } from '../../config/perl-pattern.ts'
import { adjustKarma, isImmune, P0f, type P0fFingerprint } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, DataPostHook, RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, reject } from '../../host/verdict.ts'
import { identMetrics } from './metrics.ts'

export default definePlugin({
  name: 'ident/p0f',
  description: 'the client OS and network distance from p0f 3; X-P0F-* fields, OS blocking',
  options: {
    p0f_socket: opt.string({ positional: 0, description: "p0f's API socket (p0f -s PATH)" }),
    version: opt.enum(['2', '3'], { default: '3', description: "p0f's version: only 3 is spoken" }),
    local_ip: opt.optionalString({ description: 'p0f 2 only (our public address); ignored with p0f 3' }),
    smite_os: opt.optionalString({ description: 'a pattern: clients whose OS matches lose a karma point' }),
    add_headers: opt.boolean({ default: true, description: 'add X-P0F-Genre and X-P0F-Link-Type' }),
    timeout: opt.number({ default: 2, min: 0.01, max: 30, description: 'seconds for one question to p0f' }),
    nomatch_wait: opt.number({
      default: 200,
      min: 0,
      max: 5000,
      integer: true,
      description: 'ms to keep asking about a host p0f has not seen yet',
    }),
    on_error: opt.enum(['defer', 'pass'], {
      default: 'pass',
      description: 'when p0f cannot answer: pass (no fingerprint) or defer (421, the client retries)',
    }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 60_000,
  setup({ options, net, clock, config, metrics, name }) {
    if (options.version === '2')
      throw new Error(
        'p0f 2 is not supported (its last release was in 2006): run p0f 3 (Debian\'s "p0f") with -s SOCKET and drop "version 2"',
      )
    const smite = options.smite_os === undefined ? undefined : pattern('smite_os', options.smite_os)
    const blocked = config.live('p0f_blocked_operating_systems', parseBlockedList)
    const target = { path: options.p0f_socket }
    const timeoutMs = options.timeout * 1000
    const recorded = identMetrics(metrics, name)

    /** Asks p0f, again while it has no record of the host, for up to nomatch_wait ms. */
    const lookup = async (ip: string, signal: AbortSignal): Promise<P0fResult> => {
      let waited = 0
      for (let pause = 20; ; pause *= 2) {
        const result = await p0fLookup(ip, { connect: net.connect, target, timeoutMs, signal })
        if (result.status === 'ok' || waited >= options.nomatch_wait) return result
        const nap = Math.min(pause, options.nomatch_wait - waited)
        await clock.sleep(nap, signal)
        waited += nap
      }
    }

    const connect: ConnectHook = async (ctx) => {
      // XCLIENT runs the connect hooks again for another client: the old answer must not stay.
      ctx.connection.notes.set(P0f, undefined)
      const started = performance.now()
      let result: P0fResult
      try {
        result = await lookup(ctx.connection.remote.ip, ctx.signal)
      } catch (e) {
        if (!(e instanceof ScannerError)) throw e
        recorded.record('failed')
        const ms = (performance.now() - started).toFixed(0)
        const policy = options.on_error === 'pass' ? 'passed' : 'deferred'
        ctx.log.warn(`p0f failed: ${e.failure}: ${e.message} (${ms} ms); ${policy}`)
        ctx.result('error', `${e.failure}: ${e.message} (${policy})`)
        if (options.on_error === 'pass') return pass('p0f failed, no fingerprint')
        return defer({ code: 421, enhanced: '4.3.0', text: 'p0f unavailable, try again later' }, { disconnect: true })
      }
      if (result.status === 'nomatch') {
        recorded.record('unknown')
        ctx.result('skip', 'no match')
        return pass()
      }
      recorded.record('found')
      const fp = fingerprint(result.answer)
      ctx.connection.notes.set(P0f, fp)
      ctx.result('pass', describe(fp))
      if (smite !== undefined && fp.genre !== undefined && smite.test(fp.genre)) adjustKarma(ctx, -1)
      return pass()
    }

    const rcpt: RcptHook = (ctx) => {
      const list = blocked.current()
      if (list.phrases.size === 0 && list.patterns.length === 0) return pass()
      const genre = ctx.connection.notes.get(P0f)?.genre
      if (genre === undefined || isImmune(ctx)) return pass()
      if (!list.phrases.has(genre) && !list.patterns.some((p) => p.test(genre))) return pass()
      ctx.result('fail', `OS blocked: ${genre}`)
      return reject({ code: 550, enhanced: '5.7.1', text: 'OS Blocked' })
    }

    // qpsmtpd deleted the fields a message arrived with and put ours on top.
    const dataPost: DataPostHook = (ctx, msg) => {
      const fp = ctx.connection.notes.get(P0f)
      for (const [field, value] of [
        ['X-P0F-Genre', fp?.genre],
        ['X-P0F-Link-Type', fp?.link],
      ] as const) {
        if (value === undefined) continue
        msg.headers.remove(field)
        msg.headers.prepend(field, value)
      }
      return pass()
    }

    return { hooks: { connect, rcpt, ...(options.add_headers ? { dataPost } : {}) } }
  },
})

/** The note in qpsmtpd's shape (genre, detail, uptime in hours, link, distance) and p0f's whole answer. */
function fingerprint(a: P0fAnswer): P0fFingerprint {
  const genre = [a.osName, a.osFlavor].filter((s) => s !== undefined).join(' ')
  return {
    ...(genre === '' ? {} : { genre }),
    ...(a.osFlavor === undefined ? {} : { detail: a.osFlavor }),
    ...(a.uptimeMinutes === undefined ? {} : { uptime: Math.floor(a.uptimeMinutes / 60) }),
    ...(a.linkType === undefined ? {} : { link: a.linkType }),
    ...(a.distance === undefined ? {} : { distance: a.distance }),
    answer: a,
  }
}

function describe(fp: P0fFingerprint): string {
  const parts = [fp.genre ?? 'OS unknown']
  if (fp.distance !== undefined) parts.push(`distance ${fp.distance}`)
  if (fp.link !== undefined) parts.push(fp.link)
  return parts.join(', ')
}

interface BlockedList {
  /** Lines matched whole, as written (qpsmtpd: `$genre eq $phrase`). */
  readonly phrases: ReadonlySet<string>
  /** `/.../` lines, case-insensitive. */
  readonly patterns: readonly PerlPattern[]
}

function parseBlockedList(lines: readonly ConfigLine[]): BlockedList {
  const phrases = new Set<string>()
  const patterns: PerlPattern[] = []
  for (const line of lines) {
    const text = line.text.trim()
    const re = /^\/(.*)\/$/.exec(text)
    if (re === null) phrases.add(text)
    else patterns.push(perlPatternAt(line, re[1] as string, { caseInsensitive: true }))
  }
  return { phrases, patterns }
}

function pattern(option: string, source: string): PerlPattern {
  try {
    return compilePerlPattern(source, { caseInsensitive: true })
  } catch (e) {
    throw new Error(`option "${option}": pattern ${source}: ${(e as Error).message}`)
  }
}
