/**
 * `--admin HOST:PORT`, `--admin-token-file FILE`, `--agent-check HOST:PORT`: where the admin
 * listener and HAProxy's agent-check listen. The admin listener shows client addresses and
 * HELOs and can reload and stop the server, so it listens on a non-loopback address only with
 * a bearer token. The agent tells HAProxy only the state and load, so it takes any address.
 */
import type { HostPort } from '../admin/settings.ts'

export function parseHostPort(flag: string, text: string): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]*)):(\d{1,5})$/.exec(text)
  const port = Number(m?.[3])
  if (!m || port > 65535) throw new Error(`${flag} ${text}: expected HOST:PORT, e.g. 127.0.0.1:9025 or [::1]:9025`)
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] as string)), port }
}

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host) || /^::ffff:127\./i.test(host)

export function checkAdminAddress(admin: HostPort, tokenFile: string | undefined): void {
  if (tokenFile !== undefined || isLoopback(admin.host)) return
  throw new Error(
    `--admin ${admin.host}:${admin.port}: not a loopback address, and no --admin-token-file: anyone who can ` +
      'reach it could read client addresses and reload or stop the server. Listen on 127.0.0.1 or [::1] ' +
      '(recommended; reach it through SSH or a local Prometheus), or give --admin-token-file FILE',
  )
}
