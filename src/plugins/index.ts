/** The built-in plugins, each loadable by its name and its qpsmtpd name. */
import type { AnyPluginFactory } from '../host/loader.ts'
import authFlatFile from './auth/auth-flat-file.ts'
import countUnrecognizedCommands from './connect/count-unrecognized-commands.ts'
import hostsAllow from './connect/hosts-allow.ts'
import noopCounter from './connect/noop-counter.ts'
import relay from './connect/relay.ts'
import dontRequireAnglebrackets from './helo/dont-require-anglebrackets.ts'
import help from './help.ts'
import logFile from './logging/file.ts'
import logWarn from './logging/warn.ts'
import parseAddrWithhelo from './mail/parse-addr-withhelo.ts'
import eximBsmtp from './queue/exim-bsmtp.ts'
import lmtp from './queue/lmtp.ts'
import discard from './queue/discard.ts'
import maildir from './queue/maildir.ts'
import quarantine from './queue/quarantine.ts'
import postfixQueue from './queue/postfix-queue.ts'
import qmailQueue from './queue/qmail-queue.ts'
import smtpForward from './queue/smtp-forward.ts'
import naughty from './naughty.ts'
import rcptOk from './rcpt/ok.ts'
import tls from './tls.ts'

export const builtinPlugins: readonly AnyPluginFactory[] = [
  tls as unknown as AnyPluginFactory,
  rcptOk as unknown as AnyPluginFactory,
  relay as unknown as AnyPluginFactory,
  dontRequireAnglebrackets as unknown as AnyPluginFactory,
  countUnrecognizedCommands as unknown as AnyPluginFactory,
  noopCounter as unknown as AnyPluginFactory,
  hostsAllow as unknown as AnyPluginFactory,
  parseAddrWithhelo as unknown as AnyPluginFactory,
  help as unknown as AnyPluginFactory,
  naughty as unknown as AnyPluginFactory,
  qmailQueue as unknown as AnyPluginFactory,
  eximBsmtp as unknown as AnyPluginFactory,
  postfixQueue as unknown as AnyPluginFactory,
  smtpForward as unknown as AnyPluginFactory,
  lmtp as unknown as AnyPluginFactory,
  maildir as unknown as AnyPluginFactory,
  quarantine as unknown as AnyPluginFactory,
  discard as unknown as AnyPluginFactory,
  authFlatFile as unknown as AnyPluginFactory,
  logWarn as unknown as AnyPluginFactory,
  logFile as unknown as AnyPluginFactory,
]
