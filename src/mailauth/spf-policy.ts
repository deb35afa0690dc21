/**
 * qpsmtpd's sender_permitted_from `reject` levels: what an SPF result means for the MAIL
 * command at each level, exactly as its mail_handler decides (0 and 1 annotate only; 2 defers
 * on DNS trouble and fail; 3 refuses fail, defers softfail; 4 refuses softfail, defers
 * permerror; 5 refuses neutral; 6 refuses none and permerror). A temperror is never refused
 * permanently. Enhanced codes from RFC 7372 §3.2 (X.7.23 SPF validation failed, X.7.24 SPF
 * validation error).
 */
import type { EnhancedCode } from '../protocol/reply.ts'
import type { SpfCheck } from './spf.ts'

export type SpfLevel = 0 | 1 | 2 | 3 | 4 | 5 | 6

export type SpfDecision =
  | { readonly kind: 'pass' }
  | { readonly kind: 'reject' | 'defer'; readonly code: number; readonly enhanced: EnhancedCode; readonly text: string }

const refuse = (code: 550 | 450 | 451, enhanced: EnhancedCode, text: string): SpfDecision => ({
  kind: code === 550 ? 'reject' : 'defer',
  code,
  enhanced,
  text,
})

/** What qpsmtpd called local_explanation: the domain's exp= text for a fail, else our comment. */
function why(check: SpfCheck): string {
  const text = check.result === 'fail' && check.explanation !== undefined ? check.explanation : check.comment
  // Third-party text in our reply: printable and bounded.
  return text.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 200)
}

/**
 * @example spfDecision(3, { result: 'fail', ... }) // reject 550 5.7.23 "SPF - forgery: ..."
 */
export function spfDecision(level: SpfLevel, check: SpfCheck): SpfDecision {
  const w = why(check)
  switch (check.result) {
    case 'pass':
      return { kind: 'pass' }
    case 'fail':
      if (level >= 3) return refuse(550, '5.7.23', `SPF - forgery: ${w}`)
      if (level === 2) return refuse(450, '4.7.23', `SPF - fail: ${w}`)
      return { kind: 'pass' }
    case 'softfail':
      if (level >= 4) return refuse(550, '5.7.23', `SPF - fail: ${w}`)
      if (level === 3) return refuse(450, '4.7.23', `SPF - fail: ${w}`)
      return { kind: 'pass' }
    case 'neutral':
      return level >= 5 ? refuse(550, '5.7.23', `SPF - neutral: ${w}`) : { kind: 'pass' }
    case 'none':
      return level >= 6 ? refuse(550, '5.7.23', `SPF - none: ${w}`) : { kind: 'pass' }
    case 'permerror':
      if (level >= 6) return refuse(550, '5.7.24', `SPF - permerror: ${w}`)
      if (level >= 4) return refuse(450, '4.7.24', `SPF - permerror: ${w}`)
      return { kind: 'pass' }
    case 'temperror':
      return level >= 2 ? refuse(451, '4.7.24', `SPF - temperror: ${w}`) : { kind: 'pass' }
  }
}
