/**
 * Every hook a plugin can register, with its arguments and what it returns. Names are
 * qpsmtpd's hooks in camelCase (docs/plugins.md has the table). Chain hooks return a
 * Verdict and stop at the first that is not `pass`; observer hooks return nothing and
 * all run.
 */
import type { MailFrom, RcptTo } from '../protocol/envelope.ts'
import type { AuthVerdict, BearerToken, PasswordLogin, SaslChannel, ScramLookup, ScramVerdict } from './auth.ts'
import type { HookContext, Message, TxnContext } from './context.ts'
import type { LogEntry } from './logger.ts'
import type { Verdict } from './verdict.ts'

export type Awaitable<T> = T | Promise<T>

/** A path and its parameters as the client wrote them, before parsing. */
export interface RawPath {
  readonly path: string
  readonly params: string
}

/** `*_parse`/`*_pre` hooks may hand back a rewritten path (dont_require_anglebrackets). */
export type RewriteVerdict = Verdict | { readonly kind: 'rewrite'; readonly raw: RawPath }
export const rewrite = (raw: RawPath): RewriteVerdict => ({ kind: 'rewrite', raw })

export interface AuthCredentials {
  readonly mechanism: 'PLAIN' | 'LOGIN' | 'CRAM-MD5'
  /** The authentication identity (user name). */
  readonly user: string
  /** Clear-text password (PLAIN, LOGIN). */
  readonly password: string | undefined
  /** CRAM-MD5: the challenge sent and the client's hex digest. */
  readonly cram: { readonly challenge: string; readonly digest: string } | undefined
}

/** An AUTH command about to start its exchange. */
export interface AuthAttempt {
  readonly mechanism: string
}

/** How an AUTH exchange ended: the name the client gave (undefined when it gave none). */
export interface AuthAttemptOutcome {
  readonly mechanism: string
  readonly user: string | undefined
  readonly success: boolean
}

export interface VerdictEvent {
  readonly plugin: string
  readonly hook: HookName
  readonly verdict: Verdict
}

export interface HookMap {
  preConnection: (ctx: HookContext) => Awaitable<Verdict>
  connect: (ctx: HookContext) => Awaitable<Verdict>
  helo: (ctx: HookContext, host: string) => Awaitable<Verdict>
  ehlo: (ctx: HookContext, host: string) => Awaitable<Verdict>
  /** Add EHLO keywords (qpsmtpd's `capabilities` note). */
  capabilities: (ctx: HookContext, keywords: string[]) => Awaitable<void>
  mailParse: (ctx: HookContext, raw: RawPath) => Awaitable<RewriteVerdict>
  mailPre: (ctx: HookContext, raw: RawPath) => Awaitable<RewriteVerdict>
  mail: (ctx: TxnContext, from: MailFrom) => Awaitable<Verdict>
  rcptParse: (ctx: TxnContext, raw: RawPath) => Awaitable<RewriteVerdict>
  rcptPre: (ctx: TxnContext, raw: RawPath) => Awaitable<RewriteVerdict>
  rcpt: (ctx: TxnContext, to: RcptTo) => Awaitable<Verdict>
  data: (ctx: TxnContext) => Awaitable<Verdict>
  dataHeadersEnd: (ctx: TxnContext, msg: Message) => Awaitable<Verdict>
  dataPostHeaders: (ctx: TxnContext, msg: Message) => Awaitable<void>
  /** Return a Received header value to replace the default one. */
  receivedLine: (ctx: TxnContext, msg: Message, value: string) => Awaitable<string | undefined>
  dataPost: (ctx: TxnContext, msg: Message) => Awaitable<Verdict>
  queuePre: (ctx: TxnContext, msg: Message) => Awaitable<Verdict>
  queue: (ctx: TxnContext, msg: Message) => Awaitable<Verdict>
  queuePost: (ctx: TxnContext, msg: Message) => Awaitable<void>
  resetTransaction: (ctx: HookContext) => Awaitable<void>
  quit: (ctx: HookContext) => Awaitable<Verdict>
  disconnect: (ctx: HookContext) => Awaitable<void>
  postConnection: (ctx: HookContext) => Awaitable<void>
  unrecognizedCommand: (ctx: HookContext, verb: string, args: string) => Awaitable<Verdict>
  vrfy: (ctx: HookContext, args: string) => Awaitable<Verdict>
  noop: (ctx: HookContext) => Awaitable<Verdict>
  help: (ctx: HookContext, args: string) => Awaitable<Verdict>
  authPlain: (ctx: HookContext, creds: AuthCredentials) => Awaitable<Verdict>
  authLogin: (ctx: HookContext, creds: AuthCredentials) => Awaitable<Verdict>
  authCramMd5: (ctx: HookContext, creds: AuthCredentials) => Awaitable<Verdict>
  auth: (ctx: HookContext, creds: AuthCredentials) => Awaitable<Verdict>
  /** A password backend: PLAIN and LOGIN, after `authPlain`/`authLogin` and `auth` passed (host/auth.ts). */
  authPassword: (ctx: HookContext, login: PasswordLogin) => Awaitable<AuthVerdict>
  /** A SCRAM backend: the user's stored secrets; the core runs SCRAM-SHA-256(-PLUS) with them. */
  authScram: (ctx: HookContext, lookup: ScramLookup) => Awaitable<ScramVerdict>
  /** An OAuth 2.0 backend: OAUTHBEARER and XOAUTH2 bearer tokens. */
  authToken: (ctx: HookContext, token: BearerToken) => Awaitable<AuthVerdict>
  /**
   * Before an AUTH exchange (RFC 4954): `defer` or `reject` refuses the attempt (default
   * `454 4.7.0`; with `disconnect`, the session ends), so a client over a limit of failures sends
   * no credentials that anyone checks. `accept` means the same as `pass`: it never authenticates.
   */
  authAttempt: (ctx: HookContext, attempt: AuthAttempt) => Awaitable<Verdict>
  /**
   * After an AUTH exchange that succeeded or failed, before the session acts on it: every
   * plugin sees failures (to count them across connections); `defer` or `reject` replaces the
   * outcome (default `454 4.7.0`): a user locked out after too many failures is not let in even
   * with the right password, and gets the same reply either way. `accept` means `pass`.
   */
  authOutcome: (ctx: HookContext, outcome: AuthAttemptOutcome) => Awaitable<Verdict>
  /** The mechanisms this plugin's `authSasl` runs, for the EHLO AUTH keyword (synchronous). */
  authMechanisms: (ctx: HookContext) => readonly string[]
  /** Runs a whole SASL exchange over the core's channel; `pass()` without a word for mechanisms it does not run. */
  authSasl: (ctx: HookContext, channel: SaslChannel) => Awaitable<AuthVerdict>
  deny: (ctx: HookContext, event: VerdictEvent) => Awaitable<void>
  ok: (ctx: HookContext, event: VerdictEvent) => Awaitable<void>
  logging: (entry: LogEntry) => void
  config: (key: string) => readonly string[] | undefined
  userConfig: (address: string, key: string) => readonly string[] | undefined
}

export type HookName = keyof HookMap
export type Hooks = { readonly [K in HookName]?: HookMap[K] }

/** One hook's function type: `Hook<'rcpt'>`, or by name, `RcptHook`. */
export type Hook<N extends HookName> = HookMap[N]
export type PreConnectionHook = HookMap['preConnection']
export type ConnectHook = HookMap['connect']
export type HeloHook = HookMap['helo']
export type EhloHook = HookMap['ehlo']
export type CapabilitiesHook = HookMap['capabilities']
export type MailParseHook = HookMap['mailParse']
export type MailPreHook = HookMap['mailPre']
export type MailHook = HookMap['mail']
export type RcptParseHook = HookMap['rcptParse']
export type RcptPreHook = HookMap['rcptPre']
export type RcptHook = HookMap['rcpt']
export type DataHook = HookMap['data']
export type DataHeadersEndHook = HookMap['dataHeadersEnd']
export type DataPostHeadersHook = HookMap['dataPostHeaders']
export type ReceivedLineHook = HookMap['receivedLine']
export type DataPostHook = HookMap['dataPost']
export type QueuePreHook = HookMap['queuePre']
export type QueueHook = HookMap['queue']
export type QueuePostHook = HookMap['queuePost']
export type ResetTransactionHook = HookMap['resetTransaction']
export type QuitHook = HookMap['quit']
export type DisconnectHook = HookMap['disconnect']
export type PostConnectionHook = HookMap['postConnection']
export type UnrecognizedCommandHook = HookMap['unrecognizedCommand']
export type VrfyHook = HookMap['vrfy']
export type NoopHook = HookMap['noop']
export type HelpHook = HookMap['help']
export type AuthPlainHook = HookMap['authPlain']
export type AuthLoginHook = HookMap['authLogin']
export type AuthCramMd5Hook = HookMap['authCramMd5']
export type AuthHook = HookMap['auth']
export type AuthPasswordHook = HookMap['authPassword']
export type AuthAttemptHook = HookMap['authAttempt']
export type AuthOutcomeHook = HookMap['authOutcome']
export type AuthScramHook = HookMap['authScram']
export type AuthTokenHook = HookMap['authToken']
export type AuthMechanismsHook = HookMap['authMechanisms']
export type AuthSaslHook = HookMap['authSasl']
export type DenyHook = HookMap['deny']
export type OkHook = HookMap['ok']
export type LoggingHook = HookMap['logging']
export type ConfigHook = HookMap['config']
export type UserConfigHook = HookMap['userConfig']

/** qpsmtpd hook names, as they appear in qpsmtpd plugins and docs; undefined for hooks qpsmtpd has not. */
export const qpsmtpdHookNames: Readonly<Record<HookName, string | undefined>> = {
  preConnection: 'pre-connection',
  connect: 'connect',
  helo: 'helo',
  ehlo: 'ehlo',
  capabilities: 'capabilities',
  mailParse: 'mail_parse',
  mailPre: 'mail_pre',
  mail: 'mail',
  rcptParse: 'rcpt_parse',
  rcptPre: 'rcpt_pre',
  rcpt: 'rcpt',
  data: 'data',
  dataHeadersEnd: 'data_headers_end',
  dataPostHeaders: 'data_post_headers',
  receivedLine: 'received_line',
  dataPost: 'data_post',
  queuePre: 'queue_pre',
  queue: 'queue',
  queuePost: 'queue_post',
  resetTransaction: 'reset_transaction',
  quit: 'quit',
  disconnect: 'disconnect',
  postConnection: 'post-connection',
  unrecognizedCommand: 'unrecognized_command',
  vrfy: 'vrfy',
  noop: 'noop',
  help: 'help',
  authPlain: 'auth-plain',
  authLogin: 'auth-login',
  authCramMd5: 'auth-cram-md5',
  auth: 'auth',
  authPassword: undefined,
  authScram: undefined,
  authToken: undefined,
  authMechanisms: undefined,
  authSasl: undefined,
  authAttempt: undefined,
  authOutcome: undefined,
  deny: 'deny',
  ok: 'ok',
  logging: 'logging',
  config: 'config',
  userConfig: 'user_config',
}

export const hookNames = Object.keys(qpsmtpdHookNames) as HookName[]
