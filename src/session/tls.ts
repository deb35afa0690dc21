/**
 * TLS contexts for STARTTLS and implicit TLS: one default certificate, and per-name
 * certificates from a directory for SNI. Rebuilt on reload, so new connections get new
 * certificates without a restart. TLS 1.2 is the minimum unless configured otherwise.
 */
import { constants } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls'
import type { TlsInfo } from '../host/context.ts'
import type { TlsSettings } from '../host/services.ts'

export interface TlsContextProvider {
  context(): SecureContext
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void
}

export function createTlsContextProvider(settings: TlsSettings): TlsContextProvider {
  // A client may not renegotiate (RFC 5746 §5 lets a server refuse): each renegotiation is a
  // full handshake of server CPU, and clients have no need for it. TLS 1.3 has none.
  const base = {
    minVersion: 'TLSv1.2' as const,
    ...settings.context,
    secureOptions: (settings.context.secureOptions ?? 0) | constants.SSL_OP_NO_RENEGOTIATION,
  }
  const main = createSecureContext(base)
  const byName = new Map<string, SecureContext>()
  if (settings.sniDir !== undefined && existsSync(settings.sniDir)) {
    for (const file of readdirSync(settings.sniDir)) {
      const m = /^(.+)\.(crt|pem)$/.exec(file)
      if (!m) continue
      const name = (m[1] as string).toLowerCase()
      const keyFile = join(settings.sniDir, `${m[1]}.key`)
      const cert = readFileSync(join(settings.sniDir, file))
      const key = existsSync(keyFile) ? readFileSync(keyFile) : cert
      byName.set(name, createSecureContext({ ...base, cert, key }))
    }
  }
  return {
    context: () => main,
    sniCallback(servername, cb) {
      const name = servername.toLowerCase()
      const wildcard = `*.${name.split('.').slice(1).join('.')}`
      cb(
        null,
        byName.get(name) ??
          byName.get(wildcard) ??
          byName.get(`_wildcard.${name.split('.').slice(1).join('.')}`) ??
          main,
      )
    },
  }
}

/**
 * Server side of a TLS handshake on an accepted stream (STARTTLS or implicit TLS).
 * Resolves with the secure socket and its parameters, or with the reason it failed.
 */
export async function serverHandshake(
  stream: Duplex,
  contexts: TlsContextProvider,
  timeoutMs: number,
): Promise<{ socket: TLSSocket; info: TlsInfo } | { error: string }> {
  const secure = new TLSSocket(stream as Socket, {
    isServer: true,
    secureContext: contexts.context(),
    SNICallback: contexts.sniCallback,
  })
  secure.on('error', () => {})
  const error = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(`no handshake within ${timeoutMs} ms`), timeoutMs)
    secure.once('secure', () => {
      clearTimeout(timer)
      resolve(undefined)
    })
    secure.once('error', (e) => {
      clearTimeout(timer)
      resolve(e.message)
    })
    // With allowHalfOpen a client that goes away gives 'end' and no 'close'.
    const closed = () => {
      clearTimeout(timer)
      resolve('connection closed during the handshake')
    }
    secure.once('close', closed)
    secure.once('end', closed)
  })
  if (error !== undefined) {
    secure.destroy()
    return { error }
  }
  const cipher = secure.getCipher()
  return {
    socket: secure,
    info: {
      version: secure.getProtocol() ?? 'unknown',
      cipher: cipher?.standardName ?? cipher?.name ?? 'unknown',
      servername: (secure as unknown as { servername?: string | false }).servername || undefined,
    },
  }
}
