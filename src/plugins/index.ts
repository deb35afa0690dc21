/** The built-in plugins, each loadable by its name and its qpsmtpd name. */
import type { AnyPluginFactory } from '../host/loader.ts'
import authCheckpassword from './auth/auth-checkpassword.ts'
import authCvmUnixLocal from './auth/auth-cvm-unix-local.ts'
import authFlatFile from './auth/auth-flat-file.ts'
import authdeny from './auth/authdeny.ts'
import dovecotAuth from './auth/dovecot.ts'
import oauth2 from './auth/oauth2.ts'
import connectionTime from './connect/connection-time.ts'
import countUnrecognizedCommands from './connect/count-unrecognized-commands.ts'
import dnsWhitelistSoft from './connect/dns-whitelist-soft.ts'
import dnsbl from './connect/dnsbl.ts'
import earlytalker from './connect/earlytalker.ts'
import fcrdns from './connect/fcrdns.ts'
import hostsAllow from './connect/hosts-allow.ts'
import iprev from './connect/iprev.ts'
import loadcheck from './connect/loadcheck.ts'
import noopCounter from './connect/noop-counter.ts'
import quitFortune from './connect/quit-fortune.ts'
import randomError from './connect/random-error.ts'
import relay from './connect/relay.ts'
import whitelist from './connect/whitelist.ts'
import rspamd from './content/rspamd.ts'
import spamassassin from './content/spamassassin.ts'
import arc from './data/arc.ts'
import bogusBounce from './data/bogus-bounce.ts'
import contentLog from './data/content-log.ts'
import dkim from './data/dkim.ts'
import dmarc from './data/dmarc.ts'
import domainkeys from './data/domainkeys.ts'
import headers from './data/headers.ts'
import loop from './data/loop.ts'
import uribl from './data/uribl.ts'
import greylisting from './greylisting/index.ts'
import heloChecks from './helo/checks.ts'
import dontRequireAnglebrackets from './helo/dont-require-anglebrackets.ts'
import help from './help.ts'
import geoip from './ident/geoip.ts'
import p0f from './ident/p0f.ts'
import karma from './karma/index.ts'
import limit from './limit/index.ts'
import logAdaptive from './logging/adaptive.ts'
import logApache from './logging/apache.ts'
import logConnectionId from './logging/connection-id.ts'
import logDevnull from './logging/devnull.ts'
import logFile from './logging/file.ts'
import logSyslog from './logging/syslog.ts'
import logTransactionId from './logging/transaction-id.ts'
import logWarn from './logging/warn.ts'
import badmailfrom from './mail/badmailfrom.ts'
import parseAddrWithhelo from './mail/parse-addr-withhelo.ts'
import resolvableFromhost from './mail/resolvable-fromhost.ts'
import rhsbl from './mail/rhsbl.ts'
import senderPermittedFrom from './mail/sender-permitted-from.ts'
import milter from './milter/index.ts'
import naughty from './naughty.ts'
import discard from './queue/discard.ts'
import eximBsmtp from './queue/exim-bsmtp.ts'
import maildir from './queue/maildir/index.ts'
import lmtp from './queue/outbound/lmtp.ts'
import smtpForward from './queue/outbound/smtp-forward.ts'
import postfixQueue from './queue/postfix-queue.ts'
import qmailQueue from './queue/qmail-queue.ts'
import quarantine from './queue/quarantine.ts'
import badmailfromto from './rcpt/badmailfromto.ts'
import badrcptto from './rcpt/badrcptto.ts'
import rcptMap from './rcpt/map.ts'
import rcptOk from './rcpt/ok.ts'
import qmailDeliverable from './rcpt/qmail-deliverable.ts'
import rcptRegexp from './rcpt/regexp.ts'
import tls from './tls.ts'
import clamav from './virus/clamav.ts'
import clamdscan from './virus/clamdscan.ts'
import klezFilter from './virus/klez-filter.ts'
import {
  aveclientScanner,
  bitdefenderScanner,
  hbedvScanner,
  kavscannerScanner,
  sophieScanner,
  uvscanScanner,
  virusScanner,
} from './virus/presets.ts'

export const builtinPlugins: readonly AnyPluginFactory[] = [
  tls,
  rcptOk,
  relay,
  dontRequireAnglebrackets,
  heloChecks,
  countUnrecognizedCommands,
  noopCounter,
  hostsAllow,
  iprev,
  parseAddrWithhelo,
  badmailfrom,
  senderPermittedFrom,
  dmarc,
  badmailfromto,
  badrcptto,
  rcptRegexp,
  rcptMap,
  headers,
  loop,
  uribl,
  bogusBounce,
  contentLog,
  spamassassin,
  rspamd,
  clamdscan,
  clamav,
  virusScanner,
  aveclientScanner,
  bitdefenderScanner,
  hbedvScanner,
  kavscannerScanner,
  sophieScanner,
  uvscanScanner,
  klezFilter,
  dkim,
  arc,
  domainkeys,
  connectionTime,
  loadcheck,
  randomError,
  quitFortune,
  earlytalker,
  whitelist,
  dnsWhitelistSoft,
  fcrdns,
  p0f,
  geoip,
  dnsbl,
  rhsbl,
  resolvableFromhost,
  greylisting,
  karma,
  limit,
  qmailDeliverable,
  help,
  naughty,
  milter,
  qmailQueue,
  eximBsmtp,
  postfixQueue,
  smtpForward,
  lmtp,
  maildir,
  quarantine,
  discard,
  authFlatFile,
  authCheckpassword,
  authCvmUnixLocal,
  authdeny,
  dovecotAuth,
  oauth2,
  logWarn,
  logFile,
  logSyslog,
  logAdaptive,
  logApache,
  logConnectionId,
  logTransactionId,
  logDevnull,
]
