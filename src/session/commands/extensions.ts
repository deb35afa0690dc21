/**
 * Which ESMTP parameters MAIL and RCPT accept in this session: those of the extensions EHLO
 * offered (a HELO client gets none, RFC 5321 §4.1.1.11).
 */
import type { ExtensionSet } from '../../protocol/mail-params.ts'
import type { SessionCore } from '../session-core.ts'
import { authOffered } from './auth.ts'

export function offeredExtensions(s: SessionCore): ExtensionSet {
  const p = s.settings.policies
  const ehlo = s.offeredPipelining
  return {
    size: ehlo,
    eightBitMime: ehlo,
    binaryMime: ehlo && p.chunking,
    smtputf8: ehlo && p.smtputf8,
    dsn: ehlo && p.dsn,
    // Parsed even without TLS (it is advertised only inside TLS), so that MAIL answers
    // 530 5.7.10 "encryption needed" (RFC 8689, RFC 5248) instead of 555 unknown parameter.
    requireTls: ehlo && p.requireTlsExtension,
    // RFC 5321 §4.1.1.11: AUTH= without AUTH offered is an unknown parameter (555). Once the client
    // authenticated, EHLO no longer lists AUTH, but AUTH= still belongs to the session.
    auth: ehlo && authOffered(s),
  }
}
