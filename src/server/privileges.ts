/**
 * Dropping root: `--user`/`--group` are resolved through NSS (getent) before anything is
 * bound, and applied after the listeners are bound and before any client byte is read or
 * any plugin runs: supplementary groups (initgroups), then the group, then the user.
 * Security: the drop is verified (real and effective ids, and setuid(0) must fail).
 */
import { execFileSync } from 'node:child_process'

export interface Identity {
  readonly user: string
  readonly uid: number
  readonly gid: number
  readonly group: string
}

function getent(db: 'passwd' | 'group', key: string): string[] | undefined {
  try {
    const out = execFileSync('getent', [db, key], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
    const line = out.split('\n')[0]
    return line === undefined || line === '' ? undefined : line.split(':')
  } catch {
    return undefined
  }
}

/** Resolves a user (and optional group) name or number; throws with a readable message. */
export function resolveIdentity(user: string, group?: string): Identity {
  const pw = getent('passwd', user)
  if (pw === undefined) throw new Error(`unknown user "${user}"`)
  const uid = Number(pw[2])
  let gid = Number(pw[3])
  let groupName = getent('group', String(gid))?.[0] ?? String(gid)
  if (group !== undefined) {
    const gr = getent('group', group)
    if (gr === undefined) throw new Error(`unknown group "${group}"`)
    gid = Number(gr[2])
    groupName = gr[0] ?? group
  }
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error(`bad passwd entry for "${user}"`)
  return { user: pw[0] ?? user, uid, gid, group: groupName }
}

/** Becomes `id`; throws when not allowed (not root) or when the result is not what was asked. */
export function dropPrivileges(id: Identity): void {
  if (process.getuid?.() === id.uid && process.geteuid?.() === id.uid && process.getgid?.() === id.gid) return
  if (process.geteuid?.() !== 0) throw new Error(`must start as root to become ${id.user}`)
  const withGroups = process as { initgroups?: (user: string, group: number) => void }
  withGroups.initgroups?.(id.user, id.gid)
  process.setgid?.(id.gid)
  process.setegid?.(id.gid)
  process.setuid?.(id.uid)
  process.seteuid?.(id.uid)
  if (process.getuid?.() !== id.uid || process.geteuid?.() !== id.uid || process.getegid?.() !== id.gid)
    throw new Error(`privilege drop to ${id.user} did not take effect`)
  if (id.uid !== 0) {
    let regained = false
    try {
      process.setuid?.(0)
      regained = true
    } catch {}
    if (regained) throw new Error('could regain root after dropping privileges')
  }
}
