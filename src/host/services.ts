/**
 * Services plugins provide to the core at setup: the `tls` plugin supplies certificates,
 * auth plugins are found from their hooks. Typed slots, not a bag.
 */
import type { SecureContextOptions } from 'node:tls'

export interface TlsSettings {
  /** Default certificate and key (PEM). */
  readonly context: SecureContextOptions
  /** Directory of `<name>.crt`/`<name>.key` (or combined `.pem`) pairs for SNI. */
  readonly sniDir?: string | undefined
  /** Files to watch / re-read on reload. */
  readonly files: readonly string[]
}

export interface Services {
  tls: TlsSettings | undefined
}

export const emptyServices = (): Services => ({ tls: undefined })
