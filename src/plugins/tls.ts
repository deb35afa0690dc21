/**
 * tls: offers STARTTLS and serves implicit-TLS listeners (qpsmtpd `tls`).
 * qpsmtpd arguments: `tls [cert] [key] [ca] [dhparam]`, defaulting to
 * `ssl/qpsmtpd-server.crt` and `ssl/qpsmtpd-server.key` in the config directory (or beside
 * it); config files `tls_ciphers` and `tls_protocols`. Extra options: `sni_dir` (a directory
 * of `<name>.crt`/`<name>.key` for SNI) and `min_version` (default TLSv1.2).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { SecureContextOptions } from 'node:tls'
import { definePlugin } from '../host/define-plugin.ts'
import { opt } from '../host/options.ts'
import type { TlsSettings } from '../host/services.ts'

function tlsSettingsFromFiles(
  certFile: string,
  keyFile: string,
  extra: {
    ca?: string | undefined
    dhparam?: string | undefined
    sniDir?: string | undefined
    context?: SecureContextOptions
  } = {},
): TlsSettings {
  const files = [certFile, keyFile, ...(extra.ca ? [extra.ca] : []), ...(extra.dhparam ? [extra.dhparam] : [])]
  return {
    context: {
      ...extra.context,
      cert: readFileSync(certFile),
      key: readFileSync(keyFile),
      ...(extra.ca ? { ca: readFileSync(extra.ca) } : {}),
      ...(extra.dhparam ? { dhparam: readFileSync(extra.dhparam) } : {}),
    },
    sniDir: extra.sniDir,
    files,
  }
}

/** qpsmtpd's tls_protocols uses OpenSSL syntax (`SSLv23:!SSLv2:!SSLv3`); only a minimum matters today. */
function minVersionFrom(protocols: string | undefined, fallback: string): 'TLSv1.2' | 'TLSv1.3' {
  if (protocols?.includes('!TLSv1_2') || fallback === 'TLSv1.3') return 'TLSv1.3'
  return 'TLSv1.2'
}

export default definePlugin({
  name: 'tls',
  description: 'STARTTLS and implicit TLS with certificates from files',
  options: {
    cert: opt.optionalString({ positional: 0, description: 'certificate file (PEM)' }),
    key: opt.optionalString({ positional: 1, description: 'private key file (PEM)' }),
    ca: opt.optionalString({ positional: 2, description: 'CA chain file (PEM)' }),
    dhparam: opt.optionalString({ positional: 3, description: 'DH parameters file' }),
    sni_dir: opt.optionalString({ description: 'directory of per-name certificates for SNI' }),
    min_version: opt.enum(['TLSv1.2', 'TLSv1.3'], { default: 'TLSv1.2', description: 'lowest TLS version' }),
  },
  setup({ options, config, services, log, paths }) {
    const configFile = config.path('plugins') ?? config.path('me')
    // qpsmtpd looks in ssl/ of its install directory, or in config/ssl.
    const sslDirs = [...(configFile === undefined ? [] : [join(dirname(configFile), 'ssl')]), paths.resolve('ssl')]
    const find = (given: string | undefined, file: string): string | undefined => {
      if (given !== undefined) return paths.resolve(given)
      for (const base of sslDirs) {
        const candidate = join(base, file)
        if (existsSync(candidate)) return candidate
      }
      return undefined
    }
    const cert = find(options.cert, 'qpsmtpd-server.crt')
    const key = find(options.key, 'qpsmtpd-server.key')
    if (cert === undefined || key === undefined || !existsSync(cert) || !existsSync(key))
      throw new Error(
        `certificate or key not found (cert: ${cert ?? 'ssl/qpsmtpd-server.crt'}, key: ${key ?? 'ssl/qpsmtpd-server.key'})`,
      )
    const ca = options.ca === undefined ? undefined : find(options.ca, '')
    const ciphers = config.value('tls_ciphers')
    services.tls = tlsSettingsFromFiles(cert, key, {
      ca,
      dhparam: options.dhparam === undefined ? undefined : find(options.dhparam, ''),
      sniDir: options.sni_dir === undefined ? undefined : paths.resolve(options.sni_dir),
      context: {
        minVersion: minVersionFrom(config.value('tls_protocols'), options.min_version),
        ...(ciphers !== undefined && ciphers !== 'HIGH' ? { ciphers } : {}),
      },
    })
    log.info(`TLS certificate ${cert}`)
    return { hooks: {} }
  },
})
