/**
 * The Authentication-Results contract (RFC 8601): plugins record each method's result (spf,
 * dkim, dmarc, arc, iprev, auth, domainkeys) with its reason and properties; the core writes
 * one Authentication-Results header from all of them, with our authserv-id, after the
 * dataPostHeaders hook (auth-results-header.ts). Plugins never write the header themselves.
 *
 * A result belongs to the transaction when one is open, else to the connection (iprev at
 * connect); connection results appear in the header of every message of the connection.
 */
import type { HookContext } from '../host/context.ts'
import { defineKey } from '../host/keys.ts'

/** The result values each method may report (RFC 8601 §2.7, RFC 7489 §11.2, RFC 8617 §4.4). */
export const methodResults = {
  auth: ['none', 'pass', 'fail', 'temperror', 'permerror'],
  iprev: ['pass', 'fail', 'temperror', 'permerror'],
  spf: ['none', 'neutral', 'pass', 'fail', 'softfail', 'policy', 'temperror', 'permerror'],
  dkim: ['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror'],
  domainkeys: ['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror'],
  arc: ['none', 'pass', 'fail'],
  dmarc: ['none', 'pass', 'fail', 'temperror', 'permerror'],
} as const

export type AuthMethod = keyof typeof methodResults
export type AuthResultCode<M extends AuthMethod> = (typeof methodResults)[M][number]

/** The order of methods in the header, whatever order the plugins ran in. */
export const methodOrder: readonly AuthMethod[] = ['auth', 'iprev', 'spf', 'dkim', 'domainkeys', 'arc', 'dmarc']

/** RFC 8601 §2.3 ptype: what the property describes. */
export type PropertyType = 'smtp' | 'header' | 'body' | 'policy'

/** One `ptype.property=value`, e.g. `{ type: 'smtp', name: 'mailfrom', value: 'example.org' }`. */
export interface AuthProperty {
  readonly type: PropertyType
  readonly name: string
  readonly value: string
}

export interface MethodResult<M extends AuthMethod> {
  readonly method: M
  readonly result: AuthResultCode<M>
  /** `reason="..."`: why, for a human (RFC 8601 §2.2). */
  readonly reason?: string | undefined
  /** A comment after the result, e.g. `p=REJECT` for dmarc. */
  readonly comment?: string | undefined
  readonly properties: readonly AuthProperty[]
}

/** One method's result: `spf=pass smtp.mailfrom=example.org`. */
export type AuthResult = { [M in AuthMethod]: MethodResult<M> }[AuthMethod]

/** Results recorded while a transaction is open, in the order added. */
export const TransactionAuthResults = defineKey<AuthResult[]>('mailauth/results', {
  scope: 'transaction',
  initial: () => [],
})

/** Results about the connection (iprev, auth): they go into every message's header. */
export const ConnectionAuthResults = defineKey<AuthResult[]>('mailauth/connection-results', {
  scope: 'connection',
  initial: () => [],
})

/**
 * The Authentication-Results value the core wrote for this message (undefined before, or when
 * `me-auth-results none` turned the header off), for plugins that run later: an ARC sealer
 * copies it into ARC-Authentication-Results (RFC 8617 §4.1.1).
 */
export const WrittenAuthResults = defineKey<string | undefined>('mailauth/written-header', {
  scope: 'transaction',
  initial: undefined,
})

/** Set once the header is written: a result added later could not appear in it. */
export const AuthResultsClosed = defineKey<boolean>('mailauth/closed', { scope: 'transaction', initial: false })

const propertyName = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$/

/**
 * Records a method's result for the Authentication-Results header. Call it in connect through
 * dataPostHeaders; after that the header is written and this throws (a plugin bug).
 * @example
 *   addAuthResult(ctx, { method: 'spf', result: 'pass', properties: [{ type: 'smtp', name: 'mailfrom', value: 'example.org' }] })
 */
export function addAuthResult(ctx: HookContext, result: AuthResult): void {
  checkResult(result)
  const txn = ctx.transaction
  if (txn === undefined) {
    ctx.connection.notes.get(ConnectionAuthResults).push(freeze(result))
    return
  }
  if (txn.notes.get(AuthResultsClosed))
    throw new Error(
      `${ctx.plugin}: ${result.method}=${result.result} added after the Authentication-Results header was written ` +
        '(add results in dataPostHeaders or earlier)',
    )
  txn.notes.get(TransactionAuthResults).push(freeze(result))
}

/** Every result for the current message: the connection's, then the transaction's. */
export function authResultsOf(ctx: HookContext): readonly AuthResult[] {
  const connection = ctx.connection.notes.get(ConnectionAuthResults)
  const txn = ctx.transaction
  return txn === undefined ? [...connection] : [...connection, ...txn.notes.get(TransactionAuthResults)]
}

/** The results of one method for the current message, e.g. every dkim signature's. */
export function authResultsFor<M extends AuthMethod>(ctx: HookContext, method: M): MethodResult<M>[] {
  return authResultsOf(ctx).filter((r): r is Extract<AuthResult, { method: M }> => r.method === method) as never
}

function checkResult(r: AuthResult): void {
  const allowed = methodResults[r.method] as readonly string[] | undefined
  if (allowed === undefined) throw new TypeError(`Authentication-Results: unknown method ${String(r.method)}`)
  if (!allowed.includes(r.result))
    throw new TypeError(`Authentication-Results: ${r.method}=${String(r.result)} is not one of ${allowed.join(', ')}`)
  for (const p of r.properties) {
    if (!['smtp', 'header', 'body', 'policy'].includes(p.type))
      throw new TypeError(`Authentication-Results: property type ${String(p.type)} is not smtp, header, body or policy`)
    if (!propertyName.test(p.name))
      throw new TypeError(`Authentication-Results: property name ${JSON.stringify(p.name)} is not a keyword`)
    if (typeof p.value !== 'string') throw new TypeError(`Authentication-Results: ${p.type}.${p.name} needs a string`)
  }
}

const freeze = (r: AuthResult): AuthResult =>
  Object.freeze({ ...r, properties: Object.freeze(r.properties.map((p) => Object.freeze({ ...p }))) }) as AuthResult
