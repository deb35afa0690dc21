/**
 * rcpt/badmailfromto (qpsmtpd `badmailfromto`): refuses a recipient for one sender only, from
 * the file `badmailfromto` of `sender recipient` pairs (the sender an address or `@domain`).
 * The refusal reads as if the recipient did not exist ("mail to ADDRESS not accepted here",
 * 5.1.1), so a harasser is not told that they are blocked. The file takes effect when edited.
 * The null sender is not checked.
 */
import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, combineConfigErrors } from '../../config/config-error.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { RcptHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'

/** For each listed sender (`user@domain` or `@domain`, lower case), the recipients refused. */
type Pairs = ReadonlyMap<string, ReadonlySet<string>>

function parsePairs(lines: readonly ConfigLine[]): Pairs {
  const pairs = new Map<string, Set<string>>()
  const problems: ConfigError[] = []
  for (const at of lines) {
    const [from = '', to = '', ...rest] = at.text.split(/\s+/)
    const bad = (why: string) => problems.push(new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', at.file, at.line, why))
    if (to === '') bad('expected a sender and a recipient')
    else if (rest.length > 0) bad('expected a sender and a recipient, and nothing after them')
    else if (!from.includes('@')) bad(`"${from}" is neither an address nor @domain`)
    else if (to.startsWith('@') || !to.includes('@')) bad(`"${to}" is not an address`)
    else {
      const key = from.toLowerCase()
      const set = pairs.get(key) ?? new Set<string>()
      set.add(to.toLowerCase())
      pairs.set(key, set)
    }
  }
  if (problems.length > 0) throw combineConfigErrors(problems)
  return pairs
}

export default definePlugin({
  name: 'rcpt/badmailfromto',
  aliases: ['badmailfromto'],
  description: 'refuse a recipient for listed senders (badmailfromto pairs), as if it did not exist',
  options: { loglevel: opt.loglevel() },
  timeoutMs: 5_000,
  setup({ config }) {
    const pairs = config.live('badmailfromto', parsePairs)

    const rcpt: RcptHook = (ctx, to) => {
      const sender = ctx.transaction.mailFrom.address
      if (sender === null || sender.domain === undefined || to.address.domain === undefined) {
        ctx.result('skip', 'null sender or no domain')
        return pass()
      }
      const domain = sender.domain.toLowerCase()
      const list = pairs.current()
      const refused = [list.get(`${sender.local.toLowerCase()}@${domain}`), list.get(`@${domain}`)]
      const recipient = `${to.address.local.toLowerCase()}@${to.address.domain.toLowerCase()}`
      if (!refused.some((set) => set?.has(recipient))) {
        ctx.result('pass')
        return pass()
      }
      ctx.result('fail', 'sender and recipient listed')
      return reject({ code: 550, enhanced: '5.1.1', text: `mail to ${recipient} not accepted here` })
    }

    return { hooks: { rcpt } }
  },
})
