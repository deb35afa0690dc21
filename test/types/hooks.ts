/**
 * Type tests of the hook API, as a plugin author meets it. The good cases must compile; every
 * line under `@ts-expect-error` must not (tsc reports an unused directive when it does), so a
 * change that loosens or breaks the public hook types fails `npm run typecheck`.
 */
import {
  type AuthAttemptHook,
  type AuthCramMd5Hook,
  type AuthHook,
  type AuthLoginHook,
  type AuthMechanismsHook,
  type AuthOutcomeHook,
  type AuthPasswordHook,
  type AuthPlainHook,
  type AuthSaslHook,
  type AuthScramHook,
  type AuthTokenHook,
  accept,
  type CapabilitiesHook,
  type ConfigHook,
  type ConnectHook,
  type DataHeadersEndHook,
  type DataHook,
  type DataPostHeadersHook,
  type DataPostHook,
  DENY,
  type DenyHook,
  type DisconnectHook,
  defer,
  done,
  type EhloHook,
  type HeloHook,
  type HelpHook,
  type Hook,
  type HookMap,
  type HookName,
  type LoggingHook,
  type MailHook,
  type MailParseHook,
  type MailPreHook,
  type NoopHook,
  type OkHook,
  type PostConnectionHook,
  type PreConnectionHook,
  pass,
  type QueueHook,
  type QueuePostHook,
  type QueuePreHook,
  type QuitHook,
  type RcptHook,
  type RcptParseHook,
  type RcptPreHook,
  type ReceivedLineHook,
  type ResetTransactionHook,
  reject,
  reply,
  rewrite,
  type UnrecognizedCommandHook,
  type UserConfigHook,
  type Verdict,
  type VrfyHook,
} from '../../src/index.ts'
import type { Equal, Expect } from './assert-type.ts'

// Every hook has a named type, and it is the HookMap entry. A new hook without one fails here.
type ByName = { [K in HookName]: HookMap[K] }
export type EveryHookIsExported = Expect<
  Equal<
    ByName,
    {
      preConnection: PreConnectionHook
      connect: ConnectHook
      helo: HeloHook
      ehlo: EhloHook
      capabilities: CapabilitiesHook
      mailParse: MailParseHook
      mailPre: MailPreHook
      mail: MailHook
      rcptParse: RcptParseHook
      rcptPre: RcptPreHook
      rcpt: RcptHook
      data: DataHook
      dataHeadersEnd: DataHeadersEndHook
      dataPostHeaders: DataPostHeadersHook
      receivedLine: ReceivedLineHook
      dataPost: DataPostHook
      queuePre: QueuePreHook
      queue: QueueHook
      queuePost: QueuePostHook
      resetTransaction: ResetTransactionHook
      quit: QuitHook
      disconnect: DisconnectHook
      postConnection: PostConnectionHook
      unrecognizedCommand: UnrecognizedCommandHook
      vrfy: VrfyHook
      noop: NoopHook
      help: HelpHook
      authPlain: AuthPlainHook
      authLogin: AuthLoginHook
      authCramMd5: AuthCramMd5Hook
      auth: AuthHook
      authPassword: AuthPasswordHook
      authScram: AuthScramHook
      authToken: AuthTokenHook
      authMechanisms: AuthMechanismsHook
      authSasl: AuthSaslHook
      authAttempt: AuthAttemptHook
      authOutcome: AuthOutcomeHook
      deny: DenyHook
      ok: OkHook
      logging: LoggingHook
      config: ConfigHook
      userConfig: UserConfigHook
    }
  >
>
export type HookOfName = Expect<Equal<Hook<'rcpt'>, RcptHook>>

// Verdicts come from helpers, sync or async.
export const acceptsLocal: RcptHook = async (_ctx, to) => (to.address.local === 'postmaster' ? accept() : pass())
export const syncHook: HeloHook = (_ctx, host) => (host.endsWith('.invalid') ? reject('Bad HELO') : pass())
export const withWording: MailHook = () => reject({ code: 550, enhanced: '5.7.1', text: ['Not from', 'here'] })
export const deferAndClose: ConnectHook = () => defer('Busy', { disconnect: true })
export const qpsmtpdNames: RcptHook = () => DENY('no such user')
export const answersItself: ConnectHook = (ctx) => {
  ctx.respond(reply(220, undefined, 'mx.test ESMTP'))
  return done()
}
export const rewritesPath: MailParseHook = (_ctx, raw) => rewrite({ path: `<${raw.path}>`, params: raw.params })

// A raw reply, a number, a bare object or nothing is not a verdict.
// @ts-expect-error a reply string is not a verdict
export const replyString: RcptHook = async () => '250 OK'
// @ts-expect-error a numeric code (qpsmtpd's OK = 900) is not a verdict
export const replyNumber: RcptHook = () => 250
// @ts-expect-error a verdict kind that does not exist
export const madeUpKind: RcptHook = () => ({ kind: 'ok' })
// @ts-expect-error a chain hook must decide
export const noVerdict: RcptHook = async () => {}
// @ts-expect-error an enhanced code is class.subject.detail
export const badEnhanced: MailHook = () => reject({ code: 550, enhanced: '5.7', text: 'x' })
// @ts-expect-error only the rewrite-capable hooks may rewrite
export const rewriteInRcpt: RcptHook = (_ctx, to) => rewrite({ path: to.address.local, params: '' })

// Arguments are typed per hook: the transaction exists from MAIL on, not at connect.
export const readsEnvelope: RcptHook = (ctx, to) =>
  ctx.transaction.mailFrom.address === undefined && to.address.domain === 'example.com' ? reject() : pass()
// @ts-expect-error at connect there may be no transaction
export const noTxnAtConnect: ConnectHook = (ctx) => (ctx.transaction.recipients.length > 0 ? pass() : pass())
export const observer: DisconnectHook = async (ctx) => ctx.log.info('bye')
export const addsKeyword: CapabilitiesHook = (_ctx, keywords) => void keywords.push('XEXAMPLE')
export const replacesReceived: ReceivedLineHook = (_ctx, _msg, value) => `${value} (checked)`

// A verdict is a closed union: an exhaustive switch needs no default.
export function describe(v: Verdict): string {
  switch (v.kind) {
    case 'pass':
      return v.note ?? 'pass'
    case 'accept':
    case 'done':
      return v.kind
    case 'reject':
    case 'defer':
      return `${v.kind}${v.disconnect ? ', disconnect' : ''}`
  }
}
