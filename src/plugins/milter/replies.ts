/**
 * A milter's decision as the verdict of the hook that asked it, with Postfix's wording: reject
 * is `550 5.7.1 Command rejected`, tempfail `451 4.7.1 Service unavailable - try again later`,
 * SMFIR_REPLYCODE is the milter's own reply (checked as Postfix checks it), a 421 closes the
 * session. At connect the codes are SMTP's for a greeting (554, or 421 and close).
 */
import { MilterError } from '../../clients/milter/index.ts'
import { defer, type ReplyText, reject, type Verdict } from '../../host/verdict.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

export type Stage = 'connect' | 'helo' | 'mail' | 'rcpt' | 'data' | 'unknown' | 'content'

export type Refusal =
  | { readonly kind: 'reject' }
  | { readonly kind: 'tempfail' }
  | { readonly kind: 'shutdown' }
  | { readonly kind: 'replyCode'; readonly text: string }

const rejected: ReplyText = { code: 550, enhanced: '5.7.1', text: 'Command rejected' }
const tempfailed: ReplyText = { code: 451, enhanced: '4.7.1', text: 'Service unavailable - try again later' }
const closing: ReplyText = { code: 421, enhanced: '4.7.0', text: 'Service unavailable - closing connection' }

/** The verdict for a refusal at `stage`; throws MilterError('malformed') for a bad reply code. */
export function refusalVerdict(stage: Stage, r: Refusal): Verdict {
  switch (r.kind) {
    case 'reject':
      return permanent(stage, rejected)
    case 'tempfail':
      return temporary(stage, tempfailed, false)
    case 'shutdown':
      return defer(closing, { disconnect: true })
    case 'replyCode': {
      const parsed = parseReplyCode(r.text)
      return parsed.code >= 500 ? permanent(stage, parsed) : temporary(stage, parsed, parsed.code === 421)
    }
  }
}

/** The failure policy's verdict (Postfix's milter_default_action replies). */
export function policyVerdict(stage: Stage, policy: 'tempfail' | 'reject'): Verdict {
  return policy === 'reject'
    ? permanent(stage, { code: 550, enhanced: '5.5.0', text: 'Service unavailable' })
    : temporary(stage, tempfailed, false)
}

function permanent(stage: Stage, r: ReplyText): Verdict {
  return stage === 'connect' ? reject({ ...r, code: 554 }, { disconnect: true }) : reject(r)
}

function temporary(stage: Stage, r: ReplyText, disconnect: boolean): Verdict {
  return stage === 'connect' || disconnect ? defer({ ...r, code: 421 }, { disconnect: true }) : defer(r)
}

/**
 * `550 5.7.1 text`, or multi-line `550-5.7.1 one\r\n550 5.7.1 two`: 4xx or 5xx, one code on
 * every line, an enhanced code (if any) of the same class. Sendmail takes the text as a format
 * string, so milters write `%%` for `%`: we undo that as Postfix does and drop a lone `%`.
 */
export function parseReplyCode(text: string): { code: number; enhanced?: EnhancedCode; text: string[] } {
  const bad = (why: string) => new MilterError('malformed', `reply code "${text.slice(0, 80)}": ${why}`)
  const lines = text.replace(/\r?\n$/, '').split(/\r?\n/)
  let code: number | undefined
  let enhanced: EnhancedCode | undefined
  const out: string[] = []
  for (const [i, line] of lines.entries()) {
    const m = /^([45]\d\d)(?:([ -])(.*))?$/s.exec(line)
    if (m === null) throw bad('not a 4xx or 5xx reply')
    const lineCode = Number(m[1])
    if (code !== undefined && lineCode !== code) throw bad('lines with different codes')
    code = lineCode
    const last = i === lines.length - 1
    if ((m[2] ?? ' ') !== (last ? ' ' : '-')) throw bad('a continuation mark on the last line, or none before it')
    let rest = m[3] ?? ''
    const e = /^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)/.exec(rest)
    if (e !== null) {
      if (e[1] !== String(code)[0]) throw bad('the enhanced code is of another class')
      enhanced ??= `${e[1]}.${e[2]}.${e[3]}` as EnhancedCode
      rest = rest.slice(e[0].length)
    }
    out.push(rest.replace(/%(%?)/g, '$1'))
  }
  return enhanced === undefined ? { code: code as number, text: out } : { code: code as number, enhanced, text: out }
}
