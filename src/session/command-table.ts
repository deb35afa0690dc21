/**
 * The commands the core knows, with flags from the RFCs (Postfix smtpd_cmd_table style):
 * `lastInGroup` per RFC 2920 §3.1, `preTls` per RFC 3207 §4, `junk` for Postfix's
 * junk_command_limit. Unknown verbs go to the unrecognized_command hook.
 */
import { auth } from './commands/auth.ts'
import { bdat } from './commands/bdat.ts'
import { data } from './commands/data.ts'
import { ehlo, helo } from './commands/hello.ts'
import { help } from './commands/help.ts'
import { mail } from './commands/mail.ts'
import { noop } from './commands/noop.ts'
import { quit } from './commands/quit.ts'
import { rcpt } from './commands/rcpt.ts'
import { rset } from './commands/rset.ts'
import { starttls } from './commands/starttls.ts'
import { vrfy } from './commands/vrfy.ts'
import { xclient } from './commands/xclient.ts'
import { xforward } from './commands/xforward.ts'
import type { SessionCore } from './session-core.ts'

export interface CommandSpec {
  readonly verb: string
  readonly run: (s: SessionCore, args: string) => Promise<void>
  /** Must end a pipelined group: nothing may follow it in the same write. */
  readonly lastInGroup: boolean
  /** Allowed before STARTTLS when TLS is required. */
  readonly preTls: boolean
  /** Counts towards the junk-command limit. */
  readonly junk: boolean
}

const cmd = (verb: string, run: CommandSpec['run'], flags: Partial<Omit<CommandSpec, 'verb' | 'run'>> = {}) =>
  [verb, { verb, run, lastInGroup: false, preTls: false, junk: false, ...flags }] as const

export const commandTable: ReadonlyMap<string, CommandSpec> = new Map([
  cmd('EHLO', ehlo, { lastInGroup: true, preTls: true }),
  cmd('HELO', helo, { lastInGroup: true, preTls: true }),
  cmd('MAIL', mail),
  cmd('RCPT', rcpt),
  cmd('DATA', data, { lastInGroup: true }),
  cmd('BDAT', bdat),
  cmd('RSET', rset, { preTls: true, junk: true }),
  cmd('NOOP', noop, { lastInGroup: true, preTls: true, junk: true }),
  cmd('QUIT', quit, { lastInGroup: true, preTls: true }),
  cmd('VRFY', vrfy, { lastInGroup: true, junk: true }),
  cmd('HELP', help, { preTls: true, junk: true }),
  cmd('STARTTLS', starttls, { lastInGroup: true, preTls: true }),
  cmd('AUTH', auth, { lastInGroup: true }),
  cmd('XCLIENT', xclient, { lastInGroup: true, preTls: true }),
  cmd('XFORWARD', xforward),
])
