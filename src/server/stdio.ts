/**
 * `qtsmtpd --stdio`: one session on stdin/stdout, as qmail-smtpd and qpsmtpd run under
 * tcpserver (ucspi-tcp), inetd or systemd `Accept=yes`. The client comes from the UCSPI
 * environment (TCPREMOTEIP, TCPREMOTEPORT, TCPREMOTEHOST, TCPLOCALIP, TCPLOCALPORT, and
 * RELAYCLIENT: set, even empty, means the client may relay, as in qmail), else from
 * getpeername/getsockname when fd 0 is a socket (inetd, systemd). Logs go to stderr only.
 * Port 587 gets the submission role; implicit TLS (465) is not offered in this mode.
 */
import { fstatSync } from 'node:fs'
import { Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { ListenerInfo, Peer } from '../host/context.ts'
import { createLogger, stderrWriter } from '../host/logger.ts'
import { unmapIPv4 } from '../net/ip.ts'
import { becomeIdentity, identityFrom, loadRuntime, type ServeOptions } from './serve.ts'
import { SmtpServer } from './smtp-server.ts'

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

export async function runStdio(opts: ServeOptions): Promise<void> {
  becomeIdentity(identityFrom(opts), createLogger(stderrWriter, 6))
  // A socket on fd 0 (tcpserver, inetd, systemd) is used as one: STARTTLS then runs natively.
  const socket = stdioIsOneSocket() ? new Socket({ fd: 0, readable: true, writable: true }) : undefined
  const stream = socket ?? Duplex.from({ readable: process.stdin, writable: process.stdout })
  stream.on('error', () => {})
  const client = stdioClient(process.env, socket)
  const listener: ListenerInfo = { name: 'stdio', role: client.local.port === 587 ? 'submission' : 'smtp' }
  const runtime = await loadRuntime(opts, undefined, undefined, [listener])
  const server = new SmtpServer(runtime)
  process.on('SIGTERM', () => void server.close(0))
  process.on('SIGUSR1', () => runtime.reopenLogs())
  await server.runSession(stream, {
    listener,
    remote: client.remote,
    local: client.local,
    remoteHost: client.remoteHost,
    relayClient: client.relayClient,
    connectionsFromIp: 1,
  })
  await runtime.close()
  process.exit(0)
}
