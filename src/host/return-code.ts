/**
 * qpsmtpd's return-code names in config files (rcpt_regexp, rcpt_map: `addr DENY No such
 * user`) as verdicts. DONE and YIELD are refused: from a config file they would leave the
 * client without a reply (qpsmtpd sent none).
 */
import { accept, defer, pass, reject, type Verdict } from './verdict.ts'

export type VerdictFromText = (text: string | undefined) => Verdict

const codes: Readonly<Record<string, VerdictFromText>> = {
  OK: (t) => accept(t),
  DECLINED: () => pass(),
  DENY: (t) => reject(t),
  DENYSOFT: (t) => defer(t),
  DENY_DISCONNECT: (t) => reject(t, { disconnect: true }),
  DENYHARD: (t) => reject(t, { disconnect: true }),
  DENYSOFT_DISCONNECT: (t) => defer(t, { disconnect: true }),
}

/** The names a config file may use, for error messages. */
export const returnCodeNames = Object.keys(codes)

/** The verdict maker for a return-code name (as written, upper case), or a reason it is refused. */
export function parseReturnCode(name: string): VerdictFromText | string {
  const found = codes[name]
  if (found !== undefined) return found
  if (name === 'DONE' || name === 'YIELD' || name === 'CONTINUATION')
    return `${name} would leave the client without a reply; use one of ${returnCodeNames.join(', ')}`
  return `"${name}" is not a return code; use one of ${returnCodeNames.join(', ')}`
}
