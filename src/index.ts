/**
 * The public API for plugin authors and embedders.
 *
 * @example
 *   import { definePlugin, opt, accept, pass } from 'qtsmtpd'
 *   export default definePlugin({
 *     name: 'rcpt/vip',
 *     options: { users: opt.list({ positional: 0 }) },
 *     setup: ({ options }) => ({
 *       hooks: { rcpt: async (_ctx, to) => (options.users.includes(to.address.local) ? accept() : pass()) },
 *     }),
 *   })
 */

export type { P0fAnswer } from './clients/p0f/p0f.ts'
export type { Clock } from './clock/index.ts'
export type { ConfigLine } from './config/config-dir.ts'
export type { DnsAnswer, DnsResolver, QueryOptions, RecordData, RecordType } from './dns/index.ts'
export {
  type Authenticated,
  type AuthVerdict,
  authenticated,
  type BearerToken,
  type ChannelBindingType,
  type PasswordLogin,
  type SaslChannel,
  type ScramCredentials,
  type ScramFound,
  type ScramLookup,
  type ScramMechanism,
  type ScramVerdict,
  scramCredentials,
  scramPassword,
  type TokenMechanism,
} from './host/auth.ts'
export type { ConfigView } from './host/config-view.ts'
export type {
  AuthInfo,
  Connection,
  Helo,
  HookContext,
  ListenerInfo,
  ListenerRole,
  Peer,
  ServerInfo,
  TlsInfo,
  Transaction,
  TxnContext,
} from './host/context.ts'
export {
  adjustKarma,
  GeoIp,
  GeoIpCountry,
  type GeoIpInfo,
  isImmune,
  isNaughty,
  Karma,
  KarmaHistory,
  Naughty,
  P0f,
  type P0fFingerprint,
  Quarantined,
  type RejectPolicy,
  rejectAs,
  rejectOptions,
  WhitelistHost,
  WhitelistSender,
} from './host/conventions.ts'
export {
  definePlugin,
  type FailurePolicy,
  type PluginChoice,
  type PluginDefinition,
  type PluginFactory,
  type PluginParts,
  type SetupApi,
} from './host/define-plugin.ts'
// One name per hook, for annotating a hook written outside the `hooks` object.
export type {
  AuthAttemptHook,
  AuthCramMd5Hook,
  AuthHook,
  AuthLoginHook,
  AuthMechanismsHook,
  AuthOutcomeHook,
  AuthPasswordHook,
  AuthPlainHook,
  AuthSaslHook,
  AuthScramHook,
  AuthTokenHook,
  CapabilitiesHook,
  ConfigHook,
  ConnectHook,
  DataHeadersEndHook,
  DataHook,
  DataPostHeadersHook,
  DataPostHook,
  DenyHook,
  DisconnectHook,
  EhloHook,
  HeloHook,
  HelpHook,
  LoggingHook,
  MailHook,
  MailParseHook,
  MailPreHook,
  NoopHook,
  OkHook,
  PostConnectionHook,
  PreConnectionHook,
  QueueHook,
  QueuePostHook,
  QueuePreHook,
  QuitHook,
  RcptHook,
  RcptParseHook,
  RcptPreHook,
  ReceivedLineHook,
  ResetTransactionHook,
  UnrecognizedCommandHook,
  UserConfigHook,
  VrfyHook,
} from './host/hook-map.ts'
export {
  type AuthAttempt,
  type AuthAttemptOutcome,
  type AuthCredentials,
  type Awaitable,
  type Hook,
  type HookMap,
  type HookName,
  type Hooks,
  type RawPath,
  type RewriteVerdict,
  rewrite,
  type VerdictEvent,
} from './host/hook-map.ts'
export { defineKey, type Key, type KeyScope } from './host/keys.ts'
export type { LogEntry, Logger, LogLevel, LogLevelAdjustment } from './host/logger.ts'
export {
  type BodySource,
  type HeaderField,
  type Message,
  type MessageHeaders,
  type MessageStreamOptions,
  OwnReceived,
} from './host/message.ts'
export { type OptionSchema, type OptionSpec, type OptionsOf, opt } from './host/options.ts'
export type { Paths } from './host/paths.ts'
export type { ServiceName } from './host/plugin-services.ts'
export type { ResultKind } from './host/results.ts'
export {
  accept,
  DECLINED,
  DENY,
  DENY_DISCONNECT,
  DENYSOFT,
  DENYSOFT_DISCONNECT,
  DONE,
  defer,
  done,
  OK,
  pass,
  type ReplyText,
  reject,
  type Verdict,
} from './host/verdict.ts'
export {
  type AuthMethod,
  type AuthProperty,
  type AuthResult,
  type AuthResultCode,
  addAuthResult,
  authResultsFor,
  authResultsOf,
  ConnectionAuthResults,
  type MethodResult,
  methodResults,
  type PropertyType,
  TransactionAuthResults,
  WrittenAuthResults,
} from './mailauth/auth-results.ts'
export type { Counter, Gauge, Histogram, Labelled, MetricOptions, Metrics } from './metrics/index.ts'
export {
  type ConnectOptions,
  type ConnectTarget,
  LineConnection,
  type LineConnectionOptions,
  type Net,
  NetError,
  type Pool,
  type PoolOptions,
  type ReadOptions,
} from './net/index.ts'
export { normalizeDomain } from './protocol/address.ts'
export type { Address, MailFrom, MailParams, RcptParams, RcptTo } from './protocol/envelope.ts'
export { formatAddress } from './protocol/envelope.ts'
export { type EnhancedCode, type Reply, reply } from './protocol/reply.ts'
export { readConfigDir } from './server/load-config.ts'
export { buildRuntime, type Runtime } from './server/runtime.ts'
export { SmtpServer } from './server/smtp-server.ts'
export { type Store, StoreUnavailable, type WriteOptions } from './store/index.ts'
