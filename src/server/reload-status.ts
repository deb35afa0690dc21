/**
 * The outcome of each reload, in a file beside the pid file (`<pid file>.reload`), so that
 * `qtsmtpd --reload` can say whether the server took the new configuration and exit non-zero
 * when it was refused. A signal carries no answer, and the server's log may go anywhere.
 * The server writes one JSON line per reload, numbered; the command waits for a number
 * higher than the one it saw before signalling.
 */
import { chownSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import type { Identity } from './privileges.ts'

export interface ReloadOutcome {
  /** 0 at start, then one more per reload. */
  readonly seq: number
  readonly ok: boolean
  /** Why it was refused, or what was reloaded. */
  readonly message: string
}

export const reloadStatusFile = (pidFile: string): string => `${pidFile}.reload`

export interface ReloadStatus {
  report(ok: boolean, message: string): void
  remove(): void
}

/**
 * Creates the file (before the privilege drop, beside the pid file; owned by the identity the
 * server becomes, so it can rewrite it). Without a pid file there is nothing to write.
 */
export function createReloadStatus(pidFile: string | undefined, owner?: Identity): ReloadStatus {
  if (pidFile === undefined) return { report: () => {}, remove: () => {} }
  const file = reloadStatusFile(pidFile)
  let seq = 0
  const write = (outcome: ReloadOutcome) => writeFileSync(file, `${JSON.stringify(outcome)}\n`, { mode: 0o644 })
  write({ seq, ok: true, message: 'started' })
  if (owner !== undefined) chownSync(file, owner.uid, owner.gid)
  return {
    report(ok, message) {
      seq++
      try {
        write({ seq, ok, message })
      } catch {
        // The reload itself is done; only --reload waiting for the outcome misses it (and says so).
      }
    },
    remove() {
      try {
        unlinkSync(file)
      } catch {}
    },
  }
}

/** The last outcome written, or undefined when there is none (yet), or it is being rewritten. */
export function readReloadStatus(file: string): ReloadOutcome | undefined {
  try {
    const o = JSON.parse(readFileSync(file, 'utf8')) as Partial<ReloadOutcome>
    if (typeof o.seq !== 'number' || typeof o.ok !== 'boolean' || typeof o.message !== 'string') return undefined
    return { seq: o.seq, ok: o.ok, message: o.message }
  } catch {
    return undefined
  }
}

/** Polls the file until an outcome numbered above `after` is there, or timeoutMs pass. */
export async function awaitReloadOutcome(
  file: string,
  after: number,
  timeoutMs: number,
): Promise<ReloadOutcome | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const o = readReloadStatus(file)
    if (o !== undefined && o.seq > after) return o
    if (Date.now() >= deadline) return undefined
    await new Promise((r) => setTimeout(r, 100))
  }
}
