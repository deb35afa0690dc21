/**
 * limit (Haraka's `limit`, Postfix's anvil): rate limits from `config/limits` on connections,
 * messages (MAIL), recipients (RCPT) and failed AUTH attempts, per client address, per IPv4 or
 * IPv6 network, per sender, per authenticated user, per recipient or recipient domain, each
 * over a sliding window. Counts live in the store, so a limit holds across every worker and (on
 * Redis) every node. Past a limit: 421 4.7.0 (connections, and AUTH from an address with too many
 * failures: the session ends), 450 4.7.1 (messages, recipients), 454 4.7.0 (AUTH as a user with
 * too many failures, whatever the password). Attempts count, refused ones too, so a client that
 * keeps hammering stays limited until it slows down. When the store cannot answer the mail is
 * not limited (`on_error pass`, the default) or deferred (`on_error defer`).
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import type { HookContext } from '../../host/context.ts'
import { failedCheck, KarmaHistory } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import { formatIp, parseIp } from '../../net/index.ts'
import type { Address } from '../../protocol/envelope.ts'
import { StoreUnavailable } from '../../store/index.ts'
import { type ClientClass, type LimitEvent, parseLimits, type Rule, ruleFor, type Scope } from './rules.ts'

/** What a rule counts for this event: the value of its scope, or undefined when it does not apply. */
interface Subject {
  readonly ip: string
  readonly sender?: Address | null | undefined
  readonly user?: string | undefined
  readonly rcpt?: Address | undefined
}

const lower = (a: Address) => `${a.local}@${a.domain ?? ''}`.toLowerCase()

/** The network of `ip` with `bits` of prefix, as `address/bits`. */
function network(ip: string, family: 4 | 6, bits: number): string | undefined {
  const parsed = parseIp(ip)
  if (parsed === undefined || parsed.family !== family) return undefined
  if (parsed.family === 4) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0
    return `${formatIp({ family: 4, value: (parsed.value & mask) >>> 0 })}/${bits}`
  }
  const mask = ((1n << BigInt(bits)) - 1n) << BigInt(128 - bits)
  return `${formatIp({ family: 6, value: parsed.value & mask })}/${bits}`
}

function subjectValue(scope: Scope, s: Subject, exempt: boolean): string | undefined {
  switch (scope.kind) {
    case 'ip':
      return exempt ? undefined : s.ip
    case 'net4':
      return exempt ? undefined : network(s.ip, 4, scope.bits)
    case 'net6':
      return exempt ? undefined : network(s.ip, 6, scope.bits)
    case 'sender':
      return s.sender === undefined ? undefined : s.sender === null ? '<>' : lower(s.sender)
    case 'sender_domain':
      return s.sender?.domain?.toLowerCase()
    case 'user':
      return s.user
    case 'rcpt':
      return s.rcpt === undefined ? undefined : lower(s.rcpt)
    case 'rcpt_domain':
      return s.rcpt?.domain?.toLowerCase()
  }
}

/** A limit that was reached: which, for whom. */
interface Reached {
  readonly rule: Rule
  readonly value: string
  readonly count: number
}

export default definePlugin({
  name: 'limit',
  aliases: ['ratelimit'],
  description: 'rate limits on connections, messages, recipients and failed AUTH, shared through the store',
  requires: ['store'],
  timeoutMs: 10_000,
  options: {
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'when the store cannot answer: no limits (pass) or defer (4xx)',
    }),
    loglevel: opt.loglevel(),
  },
  setup({ options, config, store, metrics }) {
    const rules = config.live('limits', (lines) => {
      const parsed = parseLimits(lines)
      return { ...parsed, exemptList: parseCidrList(parsed.exempt) }
    })
    const refused = metrics.counter({
      name: 'qtsmtpd_limit_refused_total',
      help: 'Commands and connections refused by a rate limit',
      labelNames: ['event', 'per'],
    })

    const classOf = (ctx: HookContext): ClientClass => {
      const h = ctx.connection.notes.get(KarmaHistory) ?? 0
      return h > 0 ? 'good' : h < 0 ? 'bad' : 'unknown'
    }

    /** The rules of `event` that apply to this client, with the values they count. */
    const applicable = (ctx: HookContext, event: LimitEvent, s: Subject) => {
      const current = rules.current()
      const exempt = current.exemptList.contains(s.ip)
      const who = classOf(ctx)
      const out: { rule: Rule; value: string }[] = []
      for (const g of current.groups.get(event) ?? []) {
        const rule = ruleFor(g, who)
        const value = subjectValue(g.scope, s, exempt)
        if (rule !== undefined && rule.limit > 0 && value !== undefined) out.push({ rule, value })
      }
      return out
    }
    const key = (r: Rule, value: string) => `${r.event}:${r.per}:${value}`

    /** Counts this event against every applicable rule; the first limit it passes, if any. */
    const count = async (ctx: HookContext, event: LimitEvent, s: Subject): Promise<Reached | undefined> => {
      const todo = applicable(ctx, event, s)
      if (todo.length === 0) return undefined
      const counts = await Promise.all(todo.map(({ rule, value }) => store.hit(key(rule, value), rule.windowMs)))
      const i = counts.findIndex((n, j) => n > todo[j]!.rule.limit)
      return i < 0 ? undefined : { ...todo[i]!, count: counts[i]! }
    }

    const reached = (ctx: HookContext, r: Reached, reply: (who: string) => Verdict): Verdict => {
      ctx.result('fail', `${r.rule.event} per ${r.rule.per} ${r.value}: ${r.count} > ${r.rule.limit} (${r.rule.at})`)
      refused.labels({ event: r.rule.event, per: r.rule.per }).inc()
      return reply(r.value)
    }

    /** The store did not answer: the declared policy, with the reply this event uses. */
    const unavailable = (ctx: HookContext, e: unknown, deferred: Verdict): Verdict => {
      if (!(e instanceof StoreUnavailable)) throw e
      if (options.on_error === 'pass') return failedCheck(ctx, options, 'rate limits', e.message)
      ctx.log.warn(`rate limits failed: ${e.message}; deferred`)
      ctx.result('error', `${e.message} (deferred)`)
      return deferred
    }

    const connect: HookMap['connect'] = async (ctx) => {
      try {
        const r = await count(ctx, 'connections', { ip: ctx.connection.remote.ip })
        if (r === undefined) return pass()
        return reached(ctx, r, (who) =>
          defer(
            { code: 421, enhanced: '4.7.0', text: `Too many connections from ${who}, slow down` },
            { disconnect: true },
          ),
        )
      } catch (e) {
        return unavailable(
          ctx,
          e,
          defer(
            { code: 421, enhanced: '4.3.0', text: 'Rate limits unavailable, try again later' },
            { disconnect: true },
          ),
        )
      }
    }

    const later = defer({ code: 451, enhanced: '4.3.0', text: 'Rate limits unavailable, try again later' })

    const mail: HookMap['mail'] = async (ctx, from) => {
      try {
        const subject = { ip: ctx.connection.remote.ip, sender: from.address, user: ctx.connection.auth?.user }
        const r = await count(ctx, 'messages', subject)
        if (r === undefined) return pass()
        return reached(ctx, r, (who) =>
          defer({ code: 450, enhanced: '4.7.1', text: `Too much mail from ${who}, slow down` }),
        )
      } catch (e) {
        return unavailable(ctx, e, later)
      }
    }

    const rcpt: HookMap['rcpt'] = async (ctx, to) => {
      try {
        const subject = {
          ip: ctx.connection.remote.ip,
          sender: ctx.transaction.mailFrom.address,
          user: ctx.connection.auth?.user,
          rcpt: to.address,
        }
        const r = await count(ctx, 'recipients', subject)
        if (r === undefined) return pass()
        const toward = r.rule.scope.kind === 'rcpt' || r.rule.scope.kind === 'rcpt_domain'
        return reached(ctx, r, (who) =>
          defer({
            code: 450,
            enhanced: '4.7.1',
            text: toward ? `Too much mail for ${who}, try again later` : `Too many recipients from ${who}, slow down`,
          }),
        )
      } catch (e) {
        return unavailable(ctx, e, later)
      }
    }

    /** Failures so far for each applicable auth_failures rule (fixed windows from the first failure). */
    const failures = async (ctx: HookContext, s: Subject) => {
      const todo = applicable(ctx, 'auth_failures', s)
      const counts = await Promise.all(todo.map(({ rule, value }) => store.get(key(rule, value))))
      return todo.map((t, i) => ({ ...t, count: Number(counts[i] ?? 0) || 0 }))
    }
    const tempAuth = defer({ code: 454, enhanced: '4.7.0', text: 'Temporary authentication failure' })

    // An address past its limit of failures sends no more credentials.
    const authAttempt: HookMap['authAttempt'] = async (ctx) => {
      try {
        const full = (await failures(ctx, { ip: ctx.connection.remote.ip })).find((f) => f.count >= f.rule.limit)
        if (full === undefined) return pass()
        return reached(ctx, full, (who) =>
          defer(
            { code: 421, enhanced: '4.7.0', text: `Too many failed authentications from ${who}, try again later` },
            { disconnect: true },
          ),
        )
      } catch (e) {
        return unavailable(ctx, e, tempAuth)
      }
    }

    // A user past its limit is refused whether the password was right or not, with one reply.
    const authOutcome: HookMap['authOutcome'] = async (ctx, outcome) => {
      try {
        const subject = { ip: ctx.connection.remote.ip, user: outcome.user }
        const known = await failures(ctx, subject)
        const locked = known.find((f) => f.rule.scope.kind === 'user' && f.count >= f.rule.limit)
        if (!outcome.success)
          await Promise.all(known.map(({ rule, value }) => store.incr(key(rule, value), 1, { ttlMs: rule.windowMs })))
        if (locked === undefined) return pass()
        return reached(ctx, locked, () =>
          defer({ code: 454, enhanced: '4.7.0', text: 'Too many failed authentications, try again later' }),
        )
      } catch (e) {
        return unavailable(ctx, e, tempAuth)
      }
    }

    return { hooks: { connect, mail, rcpt, authAttempt, authOutcome } }
  },
})
