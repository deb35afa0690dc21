/**
 * The limit plugin's rules file, `config/limits`, one rule a line:
 *
 *   EVENT          PER          LIMIT/WINDOW  [good|unknown|bad]
 *   connections    ip           30/1m
 *   connections    ip/24        100/1m
 *   recipients     ip6/64       500/1h
 *   messages       user         200/1h
 *   recipients     rcpt_domain  1000/1m
 *   auth_failures  ip           5/10m
 *   exempt         192.0.2.0/24
 *
 * A limit of 0 lifts the limit (for that class of client). The last word picks clients by
 * karma history (above 0, 0 or unknown, below 0); a line without it applies to the others.
 * Every mistake names the file and line.
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import { parseCidr } from '../../net/cidr.ts'

export const events = ['connections', 'messages', 'recipients', 'auth_failures'] as const
export type LimitEvent = (typeof events)[number]

export type Scope =
  | { readonly kind: 'ip' }
  | { readonly kind: 'net4'; readonly bits: number }
  | { readonly kind: 'net6'; readonly bits: number }
  | { readonly kind: 'sender' | 'sender_domain' | 'user' | 'rcpt' | 'rcpt_domain' }

export type ClientClass = 'good' | 'unknown' | 'bad'

export interface Rule {
  readonly event: LimitEvent
  readonly scope: Scope
  /** As written: `ip/24`, `sender`; part of the store key. */
  readonly per: string
  /** 0: no limit. */
  readonly limit: number
  readonly windowMs: number
  readonly who: ClientClass | undefined
  readonly at: string
}

/** The scopes each event can be counted per. */
const allowed: Readonly<Record<LimitEvent, readonly Scope['kind'][]>> = {
  connections: ['ip', 'net4', 'net6'],
  messages: ['ip', 'net4', 'net6', 'sender', 'sender_domain', 'user'],
  recipients: ['ip', 'net4', 'net6', 'sender', 'sender_domain', 'user', 'rcpt', 'rcpt_domain'],
  auth_failures: ['ip', 'net4', 'net6', 'user'],
}

export interface LimitRules {
  /** Per event, the groups of rules counted under one key (same event and scope). */
  readonly groups: ReadonlyMap<LimitEvent, readonly RuleGroup[]>
  /** Lines of `exempt`: addresses and networks no address-based rule applies to. */
  readonly exempt: readonly ConfigLine[]
}

/** The rules of one event and scope: the one for each class of client, and the default. */
export interface RuleGroup {
  readonly per: string
  readonly scope: Scope
  readonly byClass: Readonly<Partial<Record<ClientClass | 'any', Rule>>>
}

/** `30s`, `10m`, `1h`, `1d`; a bare number is seconds. */
export function parseWindow(text: string): number | undefined {
  const m = /^(\d{1,7})(s|m|h|d)?$/.exec(text)
  if (!m || Number(m[1]) === 0) return undefined
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 's']
}

function parseScope(text: string): Scope | undefined {
  const net = /^ip(6?)\/(\d{1,3})$/.exec(text)
  if (net) {
    const bits = Number(net[2])
    if (net[1] === '6') return bits >= 1 && bits <= 128 ? { kind: 'net6', bits } : undefined
    return bits >= 1 && bits <= 32 ? { kind: 'net4', bits } : undefined
  }
  if (text === 'ip') return { kind: 'ip' }
  for (const kind of ['sender', 'sender_domain', 'user', 'rcpt', 'rcpt_domain'] as const)
    if (text === kind) return { kind }
  return undefined
}

export function parseLimits(lines: readonly ConfigLine[]): LimitRules {
  const groups = new Map<string, { per: string; scope: Scope; byClass: Partial<Record<ClientClass | 'any', Rule>> }>()
  const exempt: ConfigLine[] = []
  for (const l of lines) {
    const fail = (why: string): never => {
      throw new ConfigError(ConfigErrorCode.Syntax, l.file, l.line, `${why}: ${JSON.stringify(l.text)}`)
    }
    const words = l.text.trim().split(/\s+/)
    if (words[0] === 'exempt') {
      if (words.length !== 2 || parseCidr(words[1] as string) === undefined) fail('expected "exempt ADDRESS[/BITS]"')
      exempt.push({ ...l, text: words[1] as string })
      continue
    }
    if (words.length < 3 || words.length > 4) fail('expected "EVENT PER LIMIT/WINDOW [good|unknown|bad]"')
    const [event, per, amount, who] = words as [string, string, string, string | undefined]
    if (!(events as readonly string[]).includes(event)) fail(`unknown event "${event}" (${events.join(', ')}, exempt)`)
    const scope =
      parseScope(per) ??
      fail(`unknown "per" ${per} (ip, ip/BITS, ip6/BITS, sender, sender_domain, user, rcpt, rcpt_domain)`)
    if (!allowed[event as LimitEvent].includes(scope.kind))
      fail(
        `${event} cannot be counted per ${per} (per ${allowed[event as LimitEvent].join(', ').replace('net4, net6', 'ip/BITS, ip6/BITS')})`,
      )
    const m = /^(\d{1,9})\/(\S+)$/.exec(amount)
    const windowMs = m ? parseWindow(m[2] as string) : undefined
    if (!m || windowMs === undefined) fail(`expected LIMIT/WINDOW such as 30/1m (s, m, h, d), got "${amount}"`)
    if (who !== undefined && who !== 'good' && who !== 'unknown' && who !== 'bad')
      fail(`the last word picks clients by karma: good, unknown or bad, not "${who}"`)
    const rule: Rule = {
      event: event as LimitEvent,
      scope,
      per,
      limit: Number(m![1]),
      windowMs: windowMs!,
      who: who as ClientClass | undefined,
      at: `${l.file}:${l.line}`,
    }
    const id = `${event} ${per}`
    const group = groups.get(id) ?? { per, scope, byClass: {} }
    groups.set(id, group)
    const slot = rule.who ?? 'any'
    const before = group.byClass[slot]
    if (before !== undefined) fail(`${id}${rule.who ? ` ${rule.who}` : ''} is already limited at ${before.at}`)
    group.byClass[slot] = rule
  }
  const byEvent = new Map<LimitEvent, RuleGroup[]>()
  for (const [id, g] of groups) {
    const event = id.split(' ')[0] as LimitEvent
    byEvent.set(event, [...(byEvent.get(event) ?? []), g])
  }
  return { groups: byEvent, exempt }
}

/** The rule of a group that applies to a client of this class, if any. */
export const ruleFor = (g: RuleGroup, who: ClientClass): Rule | undefined => g.byClass[who] ?? g.byClass.any
