/**
 * Starts the admin listener and HAProxy's agent-check for a serving process or the primary,
 * and keeps track of the configuration generation both report. Bound before the privilege
 * drop (as the SMTP listeners are), the token read as root.
 */

import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { AdminServer } from '../admin/admin-server.ts'
import { AgentCheck } from '../admin/agent.ts'
import type { AdminBackend, ReloadFact } from '../admin/backend.ts'
import type { ConfigGeneration } from '../admin/report.ts'
import { readAdminToken, tokenFileWarning } from '../admin/token.ts'
import type { Logger } from '../host/logger.ts'
import { ExitCode } from './exit-codes.ts'
import { configDigest } from './process-report.ts'
import type { ServeOptions } from './serve.ts'
import { StartupError } from './startup-error.ts'

export interface AdminListeners {
  close(): void
}

/**
 * Beside the pid file, `FILE.admin` says where the admin listener is and which token file it
 * takes, so that `qtsmtpd status --pid-file FILE` finds it; removed at exit.
 */
export interface AdminPointer {
  /** HOST:PORT, IPv6 in brackets. */
  readonly address: string
  readonly tokenFile: string | undefined
}

export const adminPointerFile = (pidFile: string): string => `${pidFile}.admin`

export function readAdminPointer(pidFile: string): AdminPointer | undefined {
  try {
    const p = JSON.parse(readFileSync(adminPointerFile(pidFile), 'utf8')) as Partial<AdminPointer>
    if (typeof p.address !== 'string') return undefined
    return { address: p.address, tokenFile: typeof p.tokenFile === 'string' ? p.tokenFile : undefined }
  } catch {
    return undefined
  }
}

export async function startAdminListeners(
  opts: ServeOptions,
  backend: AdminBackend,
  log: Logger,
): Promise<AdminListeners> {
  const closers: (() => void)[] = []
  const close = () => {
    for (const c of closers) c()
  }
  try {
    if (opts.admin !== undefined) {
      const file = opts.adminTokenFile
      const token = file === undefined ? undefined : readAdminToken(file)
      const warning = file === undefined ? undefined : tokenFileWarning(file)
      if (warning !== undefined) log.warn(warning)
      const admin = await AdminServer.listen(backend, { ...opts.admin, token })
      closers.push(() => admin.close())
      const a = admin.address
      const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`
      log.notice(`admin listener on ${address}`)
      const pidFile = opts.pidFile
      if (pidFile !== undefined) {
        const pointer: AdminPointer = { address, tokenFile: file === undefined ? undefined : resolve(file) }
        writeFileSync(adminPointerFile(pidFile), `${JSON.stringify(pointer)}\n`, { mode: 0o644 })
        closers.push(() => {
          try {
            rmSync(adminPointerFile(pidFile), { force: true })
          } catch {}
        })
      }
    }
    if (opts.agentCheck !== undefined) {
      const agent = new AgentCheck(backend)
      const a = await agent.listen(opts.agentCheck.host, opts.agentCheck.port)
      closers.push(() => agent.close())
      log.notice(`HAProxy agent-check on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`)
    }
  } catch (e) {
    close()
    throw new StartupError(ExitCode.listen, `admin: ${(e as Error).message}`)
  }
  return { close }
}

/** The configuration in force: 1 at start, one more per reload taken; and the last reload's outcome. */
export class ConfigGenerations {
  #current: ConfigGeneration | undefined
  #lastReload: ReloadFact | undefined

  get current(): ConfigGeneration | undefined {
    return this.#current
  }

  get lastReload(): ReloadFact | undefined {
    return this.#lastReload
  }

  /** The first configuration, or a reload's (ok) or a refusal (the running one stays). */
  loaded(snapshot: unknown): void {
    this.#current = {
      generation: (this.#current?.generation ?? 0) + 1,
      digest: configDigest(snapshot),
      loadedAt: Date.now(),
    }
  }

  reloaded(ok: boolean, message: string, snapshot: unknown): void {
    this.#lastReload = { at: Date.now(), ok, message }
    if (ok) this.loaded(snapshot)
  }
}
