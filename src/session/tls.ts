/**
 * TLS contexts for STARTTLS and implicit TLS: one default certificate, and per-name
 * certificates from a directory for SNI. Rebuilt on reload, so new connections get new
 * certificates without a restart. TLS 1.2 is the minimum unless configured otherwise.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createSecureContext, type SecureContext } from 'node:tls'
import type { TlsSettings } from '../host/services.ts'

export interface TlsContextProvider {
  context(): SecureContext
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void
}

export function createTlsContextProvider(settings: TlsSettings): TlsContextProvider {
  const base = { minVersion: 'TLSv1.2' as const, ...settings.context }
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
