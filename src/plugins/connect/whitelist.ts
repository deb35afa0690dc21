/**
 * connect/whitelist (qpsmtpd `whitelist`): exemptions from later checks, per SMTP phase, from
 * four files: `whitelisthosts` (addresses, CIDRs, `10.` prefixes) accepts at connect,
 * `whitelisthelo` at HELO/EHLO, `whitelistsenders` (addresses or domains) at MAIL,
 * `whitelistrcpt` at RCPT. A match accepts (later plugins of that hook do not run) and sets the
 * key other plugins read (`WhitelistHost`, `WhitelistHelo`, `WhitelistSender`, `WhitelistRcpt`).
 * `per_recipient 1` does every check at RCPT with each recipient's own configuration (userConfig
 * hooks), merged with the global files unless `merge 0`. Env WHITELISTCLIENT accepts every client.
 * Security: a recipient accepted here passes no other rcpt plugin, rcpt_ok included (relaying).
 */

import { parseCidrList } from '../../config/cidr-list.ts'
import type { ConfigLine } from '../../config/config-dir.ts'
import type { HookContext } from '../../host/context.ts'
import { adjustKarma, WhitelistHost, WhitelistSender } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { ConnectHook, HeloHook, Hooks, MailHook, RcptHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { accept, pass, type Verdict } from '../../host/verdict.ts'
import type { CidrList } from '../../net/cidr.ts'
import type { Address } from '../../protocol/envelope.ts'

/** The client matched whitelisthelo (qpsmtpd's `whitelisthelo` note). */
export const WhitelistHelo = defineKey<boolean>('whitelisthelo', { scope: 'connection', initial: false })
/** WHITELISTCLIENT was set (qpsmtpd's `whitelistclient` note). */
export const WhitelistClient = defineKey<boolean>('whitelistclient', { scope: 'connection', initial: false })
/** How many recipients of the transaction matched whitelistrcpt (qpsmtpd's `whitelistrcpt` note). */
export const WhitelistRcpt = defineKey<number>('whitelistrcpt', { scope: 'transaction', initial: 0 })

const names = (lines: readonly ConfigLine[]): ReadonlySet<string> =>
  new Set(lines.map((l) => l.text.trim().toLowerCase()).filter((t) => t !== ''))

/** `local@domain`, lower case, for comparison with whitelistsenders and whitelistrcpt entries. */
const lowerAddress = (a: Address): string => `${a.local}@${a.domain ?? ''}`.toLowerCase()

const matchesAddress = (list: ReadonlySet<string>, a: Address): boolean =>
  list.has(lowerAddress(a)) || (a.domain !== undefined && list.has(a.domain.toLowerCase()))

export default definePlugin({
  name: 'connect/whitelist',
  aliases: ['whitelist'],
  description: 'accept listed hosts, HELO names, senders and recipients, exempting them from later checks',
  options: {
    per_recipient: opt.boolean({ default: false, description: 'do every check at RCPT with per-recipient config' }),
    merge: opt.boolean({ default: true, description: 'per_recipient: merge the global files with the recipient’s' }),
    loglevel: opt.loglevel(),
  },
  setup({ options, config, log }) {
    const hosts = config.live('whitelisthosts', (lines) => parseCidrList(lines))
    const helos = config.live('whitelisthelo', names)
    const senders = config.live('whitelistsenders', names)
    const rcpts = config.live('whitelistrcpt', names)
    const fromEnv = process.env.WHITELISTCLIENT !== undefined
    if (fromEnv) log.warn('WHITELISTCLIENT is set: every client is whitelisted')

    const hostMatch = (ctx: HookContext, list: CidrList): Verdict => {
      if (fromEnv) {
        ctx.connection.notes.set(WhitelistClient, true)
        adjustKarma(ctx, 5)
        ctx.result('pass', 'whitelisted client (WHITELISTCLIENT)')
        return accept()
      }
      if (!list.contains(ctx.connection.remote.ip)) return pass()
      ctx.connection.notes.set(WhitelistHost, true)
      adjustKarma(ctx, 5)
      ctx.result('pass', 'whitelisted host')
      return accept()
    }
    const heloMatch = (ctx: HookContext, host: string | undefined, list: ReadonlySet<string>): Verdict => {
      if (host === undefined || !list.has(host.toLowerCase())) return pass()
      ctx.connection.notes.set(WhitelistHelo, true)
      ctx.result('pass', `helo host ${host} in whitelisthelo`)
      return accept()
    }
    const senderMatch = (ctx: HookContext, from: Address | null, list: ReadonlySet<string>): Verdict => {
      if (from === null || !matchesAddress(list, from)) return pass()
      ctx.transaction?.notes.set(WhitelistSender, true)
      ctx.result('pass', `envelope sender ${lowerAddress(from)} in whitelistsenders`)
      return accept()
    }
    const rcptMatch = (ctx: HookContext, to: Address, list: ReadonlySet<string>): Verdict => {
      if (!matchesAddress(list, to)) return pass()
      const txn = ctx.transaction
      txn?.notes.set(WhitelistRcpt, txn.notes.get(WhitelistRcpt) + 1)
      ctx.result('pass', `recipient ${lowerAddress(to)} in whitelistrcpt`)
      return accept()
    }

    if (!options.per_recipient) {
      const connect: ConnectHook = (ctx) => hostMatch(ctx, hosts.current())
      const helo: HeloHook = (ctx, host) => heloMatch(ctx, host, helos.current())
      const mail: MailHook = (ctx, from) => senderMatch(ctx, from.address, senders.current())
      const rcpt: RcptHook = (ctx, to) => rcptMatch(ctx, to.address, rcpts.current())
      const hooks: Hooks = { connect, helo, ehlo: helo, mail, rcpt }
      return { hooks }
    }

    // Per recipient: the recipient's lines (userConfig hooks; else the global file), and with
    // merge the global file's too.
    const forRecipient = (to: Address, key: string, global: ReadonlySet<string>): ReadonlySet<string> => {
      const own = config.forUser(lowerAddress(to), key).map((t) => t.trim().toLowerCase())
      return new Set(options.merge ? [...global, ...own] : own)
    }
    const hostsFor = (to: Address): CidrList => {
      const file = `whitelisthosts for ${lowerAddress(to)}`
      const own = config
        .forUser(lowerAddress(to), 'whitelisthosts')
        .map((text, i) => ({ text: text.trim(), file, line: i + 1 }))
      const global = options.merge ? config.located('whitelisthosts') : []
      return parseCidrList([...global, ...own])
    }
    const rcpt: RcptHook = (ctx, to) => {
      const a = to.address
      const checks = [
        () => hostMatch(ctx, hostsFor(a)),
        () => heloMatch(ctx, ctx.connection.helo?.host, forRecipient(a, 'whitelisthelo', helos.current())),
        () =>
          senderMatch(ctx, ctx.transaction.mailFrom.address, forRecipient(a, 'whitelistsenders', senders.current())),
        () => rcptMatch(ctx, a, forRecipient(a, 'whitelistrcpt', rcpts.current())),
      ]
      for (const check of checks) {
        const v = check()
        if (v.kind !== 'pass') return v
      }
      return pass()
    }
    return { hooks: { rcpt } }
  },
})
