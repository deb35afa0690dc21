/**
 * The core's own replies, named (tests import them too), and the one function that turns
 * a plugin's verdict into a reply: the plugin may choose the text, code and enhanced code
 * within the verdict's class; the hook's default fills the rest.
 */
import type { ReplyText, Verdict } from '../host/verdict.ts'
import type { CommandError } from '../protocol/codec.ts'
import { type EnhancedCode, enhancedFits, type Reply, reply, replyClass } from '../protocol/reply.ts'

export const Replies = {
  ok: reply(250, '2.0.0', 'OK'),
  senderOk: reply(250, '2.1.0', 'Sender OK'),
  recipientOk: reply(250, '2.1.5', 'Recipient OK'),
  startData: reply(354, undefined, 'End data with <CR><LF>.<CR><LF>'),
  startTls: reply(220, '2.0.0', 'Ready to start TLS'),
  authOk: reply(235, '2.7.0', 'Authentication successful'),
  vrfyCannot: reply(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery'),
  needHelo: reply(503, '5.5.1', 'Error: send HELO/EHLO first'),
  needMail: reply(503, '5.5.1', 'Error: need MAIL command'),
  needRcpt: reply(503, '5.5.1', 'Error: need RCPT command'),
  nestedMail: reply(503, '5.5.1', 'Error: nested MAIL command'),
  noValidRecipients: reply(554, '5.5.1', 'Error: no valid recipients'),
  mixedDataBdat: reply(503, '5.5.1', 'Error: DATA and BDAT cannot be mixed in one transaction'),
  badSequence: reply(503, '5.5.1', 'Error: bad sequence of commands'),
  lineTooLong: reply(500, '5.5.2', 'Error: line too long'),
  bareLf: reply(500, '5.5.2', 'Error: bare <LF> received, lines must end with <CR><LF>; closing connection'),
  bareCr: reply(500, '5.5.2', 'Error: bare <CR> received, lines must end with <CR><LF>'),
  nulInCommand: reply(500, '5.5.2', 'Error: NUL character in command'),
  badUtf8: reply(500, '5.5.2', 'Error: command is not valid UTF-8'),
  unrecognized: reply(500, '5.5.1', 'Error: command not recognized'),
  notImplemented: reply(502, '5.5.1', 'Error: command not implemented'),
  noParams: reply(501, '5.5.4', 'Error: this command takes no parameters'),
  syncError: reply(554, '5.5.0', 'Error: SMTP protocol synchronization'),
  httpRefused: reply(421, '4.7.0', 'This is an SMTP server, not a web server; closing connection'),
  tooManyErrors: reply(421, '4.7.0', 'Error: too many errors; closing connection'),
  tooManyUnknown: reply(421, '4.7.0', 'Error: too many unrecognized commands; closing connection'),
  tooManyJunk: reply(421, '4.7.0', 'Error: too many commands without mail; closing connection'),
  tooManyMessages: reply(421, '4.7.0', 'Error: too many messages in one session; closing connection'),
  tooManyCommands: reply(421, '4.7.0', 'Error: too many commands in one session; closing connection'),
  tooManyRecipients: reply(452, '4.5.3', 'Error: too many recipients'),
  timeout: reply(421, '4.4.2', 'Error: timeout exceeded; closing connection'),
  sessionTimeout: reply(421, '4.4.2', 'Error: session time limit exceeded; closing connection'),
  tooSlow: reply(421, '4.4.2', 'Error: data rate below the minimum; closing connection'),
  shuttingDown: reply(421, '4.3.2', 'Service shutting down; closing connection'),
  messageTooBig: reply(552, '5.3.4', 'Error: message size exceeds fixed maximum message size'),
  headerTooBig: reply(552, '5.3.4', 'Error: message header exceeds the size limit'),
  dataLineTooLong: reply(554, '5.6.0', 'Error: message contains a line that is too long'),
  bareLineEnding: reply(554, '5.6.0', 'Error: message contains bare <CR> or <LF>; lines must end with <CR><LF>'),
  tooManyHops: reply(554, '5.4.6', 'Error: too many hops, this message is looping'),
  incompleteData: reply(451, '4.3.0', 'Error: incomplete message'),
  tlsNotAvailable: reply(454, '4.7.0', 'TLS not available'),
  tlsAlready: reply(503, '5.5.1', 'Error: TLS already active'),
  tlsFirst: reply(530, '5.7.0', 'Must issue a STARTTLS command first'),
  authFirst: reply(530, '5.7.0', 'Authentication required'),
  authAlready: reply(503, '5.5.1', 'Error: already authenticated'),
  authInTxn: reply(503, '5.5.1', 'Error: AUTH not permitted during a mail transaction'),
  authNotAvailable: reply(503, '5.5.1', 'Error: authentication not enabled'),
  authMechanism: reply(504, '5.5.4', 'Error: unrecognized authentication mechanism'),
  authNeedsTls: reply(538, '5.7.11', 'Encryption required for requested authentication mechanism'),
  authCancelled: reply(501, '5.7.0', 'Authentication cancelled'),
  authBadBase64: reply(501, '5.5.2', 'Error: cannot decode response'),
  authFailed: reply(535, '5.7.8', 'Authentication credentials invalid'),
  authTempFail: reply(454, '4.7.0', 'Temporary authentication failure'),
  authTooManyFailures: reply(421, '4.7.0', 'Error: too many failed authentication attempts; closing connection'),
  requireTlsNoTls: reply(530, '5.7.10', 'REQUIRETLS needs an encrypted session'),
  queueDeclined: reply(451, '4.3.0', 'Queuing declined or disabled; try again later'),
  queueFailed: reply(451, '4.3.0', 'Error: queuing failed; try again later'),
  internalError: reply(451, '4.3.0', 'Temporary failure, please try again later'),
} as const

/** The reply to each kind of malformed command line the codec reports. */
export const commandErrorReplies: Readonly<Record<CommandError, Reply>> = {
  'too-long': Replies.lineTooLong,
  'bare-lf': Replies.bareLf,
  'bare-cr': Replies.bareCr,
  nul: Replies.nulInCommand,
}

export interface VerdictReplies {
  /** For accept and, when absent, for pass (the command then succeeds). */
  readonly accept?: Reply
  readonly reject: Reply
  readonly defer: Reply
}

const closingDefer = reply(421, '4.7.0', 'Service not available, closing transmission channel')

/**
 * The reply for a refusal or acceptance verdict. A plugin code of the wrong class (a 4xx for
 * a reject) is replaced by the default, so a verdict's meaning cannot be inverted by its text.
 */
export function verdictReply(v: Verdict, defaults: VerdictReplies): Reply | undefined {
  switch (v.kind) {
    case 'accept':
      return defaults.accept === undefined ? undefined : merge(defaults.accept, v.reply)
    case 'reject':
      return merge(defaults.reject, v.reply)
    case 'defer':
      // RFC 5321 §3.8: a server closing the channel answers 421.
      return merge(v.disconnect ? closingDefer : defaults.defer, v.reply, v.disconnect ? 421 : undefined)
    case 'pass':
    case 'done':
      return undefined
  }
}

function merge(base: Reply, t: ReplyText | undefined, forceCode?: number): Reply {
  if (t === undefined) return base
  const code = forceCode ?? (t.code !== undefined && replyClass(t.code) === replyClass(base.code) ? t.code : base.code)
  let enhanced: EnhancedCode | undefined = base.enhanced
  if (t.enhanced !== undefined && enhancedFits(code, t.enhanced)) enhanced = t.enhanced
  if (enhanced !== undefined && !enhancedFits(code, enhanced)) enhanced = `${replyClass(code) as 4 | 5}.0.0`
  return reply(code, enhanced, t.text ?? base.lines)
}
