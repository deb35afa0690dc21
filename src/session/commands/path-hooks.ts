/**
 * The `*_parse` and `*_pre` hooks of MAIL and RCPT: plugins may refuse the raw path (501)
 * or rewrite it (dont_require_anglebrackets) before the core parses it.
 */
import type { RawPath } from '../../host/hook-map.ts'
import { reply } from '../../protocol/reply.ts'
import { verdictReply } from '../replies.ts'
import type { SessionCore } from '../session-core.ts'

const parseDefaults = {
  reject: reply(501, '5.5.4', 'Syntax error in parameters or arguments'),
  defer: reply(451, '4.3.0', 'Temporary failure, please try again later'),
}

/** Returns the (possibly rewritten) raw path, or undefined when a plugin refused it. */
export async function runPathHooks(s: SessionCore, verb: 'mail' | 'rcpt', raw: RawPath): Promise<RawPath | undefined> {
  let current = raw
  for (const hook of verb === 'mail' ? (['mailParse', 'mailPre'] as const) : (['rcptParse', 'rcptPre'] as const)) {
    if (!s.runner.has(hook)) continue
    const { verdict } = await s.runner.chain(hook, s, current)
    if (verdict.kind === 'rewrite') current = verdict.raw
    else if (verdict.kind === 'reject' || verdict.kind === 'defer') {
      const r = verdictReply(verdict, parseDefaults) ?? parseDefaults.reject
      if (verdict.disconnect) await s.close(r)
      else await s.error(r)
      return undefined
    } else if (verdict.kind === 'done') return undefined
  }
  return current
}
