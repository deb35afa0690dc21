/**
 * `qtsmtpd --stdio`: one session on stdin/stdout, as qmail-smtpd and qpsmtpd run under
 * tcpserver (ucspi-tcp), inetd or systemd `Accept=yes`. The client comes from the UCSPI
 * environment (TCPREMOTEIP, TCPREMOTEPORT, TCPREMOTEHOST, TCPLOCALIP, TCPLOCALPORT, and
 * RELAYCLIENT: set, even empty, means the client may relay, as in qmail), else from
 * getpeername/getsockname when fd 0 is a socket (inetd, systemd). Logs go to stderr only.
 * The role comes from --role, else from the local port (587: submission, other ports: smtp).
 * With --role smtps the TLS handshake runs on stdin/stdout itself (tcpserver or systemd
 * `Accept=yes` on port 465), never guessed from port 465: a TLS-terminating wrapper (sslserver,
 * stunnel) hands us cleartext there.
 */
import { fstatSync } from 'node:fs'
import { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { ListenerInfo, ListenerRole, Peer } from '../host/context.ts'
import { createLogger, stderrWriter } from '../host/logger.ts'
import { unmapIPv4 } from '../net/ip.ts'
import { ExitCode } from './exit-codes.ts'
import { becomeIdentity, identityFrom, loadRuntime, type ServeOptions } from './serve.ts'
import { SmtpServer } from './smtp-server.ts'
import { StartupError } from './startup-error.ts'

export interface StdioClient {
  readonly remote: Peer
  readonly local: Peer
  readonly remoteHost: string | undefined
  readonly relayClient: boolean
}

const port = (v: string | undefined): number => (v !== undefined && /^\d{1,5}$/.test(v) ? Number(v) : 0)

/** The client as UCSPI (tcpserver) describes it, falling back to the socket's own addresses. */
export function stdioClient(env: NodeJS.ProcessEnv, socket: Socket | undefined): StdioClient {
  const remoteIp = env.TCPREMOTEIP ?? socket?.remoteAddress ?? '0.0.0.0'
  const localIp = env.TCPLOCALIP ?? socket?.localAddress ?? '0.0.0.0'
  const host = env.TCPREMOTEHOST
  return {
    remote: { ip: unmapIPv4(remoteIp), port: port(env.TCPREMOTEPORT) || (socket?.remotePort ?? 0) },
    local: { ip: unmapIPv4(localIp), port: port(env.TCPLOCALPORT) || (socket?.localPort ?? 0) },
    // tcpserver -h/-H: TCPREMOTEHOST is the (forward-confirmed with -p) PTR name, when known.
    remoteHost: host !== undefined && /^[A-Za-z0-9.-]{1,253}$/.test(host) ? host : undefined,
    relayClient: env.RELAYCLIENT !== undefined,
  }
}

/** fd 0 and fd 1 are the same socket (tcpserver, inetd, systemd), not two pipes or socketpairs. */
function stdioIsOneSocket(): boolean {
  try {
    const a = fstatSync(0)
    const b = fstatSync(1)
    return a.isSocket() && a.ino === b.ino && a.dev === b.dev
  } catch {
    return false
  }
}

/** Serves the one session; `role` is --role's (undefined: from the local port). */
export async function runStdio(opts: ServeOptions, role: ListenerRole | undefined): Promise<void> {
  becomeIdentity(identityFrom(opts), createLogger(stderrWriter, 6))
  // A socket on fd 0 (tcpserver, inetd, systemd) is used as one: STARTTLS then runs natively.
  const socket = stdioIsOneSocket() ? new Socket({ fd: 0, readable: true, writable: true }) : undefined
  const stream = socket ?? Duplex.from({ readable: process.stdin, writable: process.stdout })
  stream.on('error', () => {})
  const client = stdioClient(process.env, socket)
  const listener: ListenerInfo = { name: 'stdio', role: role ?? (client.local.port === 587 ? 'submission' : 'smtp') }
  const runtime = await loadRuntime(opts, undefined, undefined, [listener])
  if (listener.role === 'smtps' && runtime.tlsContexts === undefined) {
    await runtime.close()
    throw new StartupError(ExitCode.config, '--role smtps needs a certificate: load the tls plugin (config/plugins)')
  }
  const server = new SmtpServer(runtime)
  process.on('SIGTERM', () => void server.close(0))
  process.on('SIGUSR1', () => runtime.reopenLogs())
  await server.serveConnection(stream, {
    listener,
    remote: client.remote,
    local: client.local,
    remoteHost: client.remoteHost,
    relayClient: client.relayClient,
    connectionsFromIp: 1,
  })
  // TLS (smtps, STARTTLS) sends its close_notify after the session has ended: exiting at once
  // would cut it off. The session destroys the stream 2 s after its end at the latest.
  await closed(stream, 3000)
  await runtime.close()
  process.exit(0)
}

/** Resolves once the stream is closed, or after ms. */
function closed(stream: Duplex, ms: number): Promise<void> {
  if (stream.closed) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    stream.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}
