/**
 * Macro values as Postfix gives them to milters (MILTER_README, "Sendmail macro emulation"),
 * from what qtsmtpd knows of the connection and the transaction. A macro with no value is not
 * sent, unless `macro_defaults` gives it one. `i` is the queue id, known from MAIL on.
 */
import type { HookContext } from '../../host/context.ts'
import { formatAddress, type RcptTo } from '../../protocol/envelope.ts'
import { bare } from './options.ts'

export interface MacroSettings {
  readonly daemonName: string
  readonly v: string
  readonly defaults: ReadonlyMap<string, string>
}

/** The lookup for one event; `rcpt` is the recipient of an RCPT event. */
export function macroLookup(
  ctx: HookContext,
  settings: MacroSettings,
  rcpt?: RcptTo,
): (name: string) => string | undefined {
  return (name) => {
    const key = bare(name)
    return value(ctx, settings, key, rcpt) ?? settings.defaults.get(key)
  }
}

function value(ctx: HookContext, s: MacroSettings, key: string, rcpt: RcptTo | undefined): string | undefined {
  const c = ctx.connection
  const txn = ctx.transaction
  const clientName = c.remoteHost ?? 'unknown'
  switch (key) {
    case 'j':
      return ctx.server.me
    case 'daemon_name':
      return s.daemonName
    case 'daemon_addr':
    case 'if_addr':
      return c.local.ip || undefined
    case 'daemon_port':
      return c.local.port > 0 ? String(c.local.port) : undefined
    case 'if_name':
      return ctx.server.me
    case 'v':
      return s.v
    case '_':
      return `${clientName} [${c.remote.ip}]`
    case 'client_addr':
      return c.remote.ip || undefined
    case 'client_port':
      return c.remote.port > 0 ? String(c.remote.port) : undefined
    case 'client_name':
    case 'client_ptr':
      return clientName
    case 'client_resolve':
      return c.remoteHost === undefined ? 'FAIL' : 'OK'
    case 'tls_version':
      return c.tls?.version
    case 'cipher':
      return c.tls?.cipher
    case 'auth_type':
      return c.auth?.mechanism
    case 'auth_authen':
      return c.auth?.user
    case 'auth_author': {
      const author = txn?.mailFrom.params.auth
      return author === undefined || author === '<>' ? undefined : author
    }
    case 'i':
      return txn?.id
    case 'mail_addr':
      return txn === undefined ? undefined : formatAddress(txn.mailFrom.address)
    case 'mail_host':
      return txn?.mailFrom.address?.domain
    case 'mail_mailer':
      return txn === undefined ? undefined : txn.mailFrom.address === null ? 'error' : 'smtp'
    case 'rcpt_addr':
      return rcpt === undefined ? undefined : formatAddress(rcpt.address)
    case 'rcpt_host':
      return rcpt?.address.domain
    case 'rcpt_mailer':
      return rcpt === undefined ? undefined : 'smtp'
    default:
      return undefined
  }
}
