/**
 * The SMTP session state is a value (RFC 5321 §3, §4.1.4): which commands are allowed
 * follows from the phase, never from a set of booleans.
 */
import type { Helo } from '../host/context.ts'
import type { TxnState } from './transaction.ts'

export type Phase =
  | { readonly name: 'connected' } // before the greeting
  | { readonly name: 'greeted' } // 220 sent, no HELO/EHLO yet
  | { readonly name: 'ready'; readonly helo: Helo } // after HELO/EHLO/RSET, no transaction
  | { readonly name: 'mail'; readonly helo: Helo; readonly txn: TxnState } // MAIL accepted, no RCPT yet
  | { readonly name: 'rcpt'; readonly helo: Helo; readonly txn: TxnState } // at least one RCPT accepted
  | { readonly name: 'content'; readonly helo: Helo; readonly txn: TxnState } // inside DATA or between BDAT chunks
  | { readonly name: 'closing' }

export type PhaseName = Phase['name']

export const inTransaction = (p: Phase): p is Extract<Phase, { txn: TxnState }> => 'txn' in p
export const hasHelo = (p: Phase): p is Extract<Phase, { helo: Helo }> => 'helo' in p
