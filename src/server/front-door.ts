/**
 * The front door's helpers: a refusal that closes for certain, the implicit-TLS handshake, the
 * settings a listener's role implies, a bounded wait.
 */
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { ListenerRole, TlsInfo } from '../host/context.ts'
import type { SessionSettings } from '../session/settings.ts'
import { serverHandshake } from '../session/tls.ts'
import type { Runtime } from './runtime.ts'

/** Waits for p, but at most ms. */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))])
  clearTimeout(timer)
}

/**
 * Writes a refusal (if any) and closes for certain. The socket was accepted paused and
 * half-open, so the client's FIN is seen only if we read: read and discard until it comes (the
 * socket then destroys itself), and destroy it after lingerMs whatever the client does.
 * Closing at once instead could turn unread client bytes into a reset that discards the 421.
 */
export function refuse(socket: Socket, text: string | undefined, lingerMs: number): void {
  const timer = setTimeout(() => socket.destroy(), lingerMs).unref()
  socket.once('close', () => clearTimeout(timer))
  socket.on('data', () => {})
  if (text === undefined) socket.end()
  else socket.end(text)
}

export async function implicitTls(
  stream: Duplex,
  runtime: Runtime,
): Promise<{ socket: TLSSocket; info: TlsInfo } | undefined> {
  const contexts = runtime.tlsContexts
  if (contexts === undefined) {
    runtime.log.error('smtps listener without a TLS certificate (load the tls plugin)')
    return undefined
  }
  const result = await serverHandshake(stream, contexts, runtime.settings.timeouts.tlsHandshakeMs)
  if ('error' in result) {
    runtime.log.info(`implicit TLS handshake failed: ${result.error}`)
    return undefined
  }
  return result
}

/**
 * Submission (RFC 6409, port 587) requires AUTH before MAIL, and TLS before AUTH when a
 * certificate is configured; smtps is already encrypted.
 */
export function settingsForRole(runtime: Runtime, role: ListenerRole): SessionSettings {
  if (role !== 'submission') return runtime.settings
  const tls = runtime.tlsContexts !== undefined
  return {
    ...runtime.settings,
    policies: {
      ...runtime.settings.policies,
      authRequired: true,
      tlsRequired: tls || runtime.settings.policies.tlsRequired,
    },
  }
}
