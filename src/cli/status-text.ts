/**
 * `qtsmtpd status` as text for a terminal. Every string a client sent (HELO, addresses, user
 * names, reply texts) has its control and bidirectional-override characters written as \xNN
 * or \u{NNNN}, so a HELO holding a terminal escape cannot recolour or rewrite the screen.
 */
import type { StatusView } from '../admin/status-view.ts'

export function visible(text: string | number | undefined): string {
  if (text === undefined) return '-'
  return String(text).replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.codePointAt(0) as number
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`
  })
}

export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 172_800) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600)}h`
}

const stamp = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z')

/** Columns padded to their widest cell; the last one is not padded. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((r) =>
    `  ${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}`.trimEnd(),
  )
}

export function statusText(v: StatusView): string {
  const s = v.server
  const out: string[] = []
  const mode = s.mode === 'workers' ? `${v.workers.length} workers, primary pid ${s.pid}` : `one process, pid ${s.pid}`
  out.push(`qtsmtpd ${s.version}: ${v.health.state}; ${mode}; up ${age(v.at - s.startedAt)}`)
  const cfg = s.config
  out.push(
    cfg === undefined
      ? 'configuration: not loaded yet'
      : `configuration: generation ${cfg.generation} (${cfg.digest}), loaded ${stamp(cfg.loadedAt)}`,
  )
  if (s.lastReload !== undefined)
    out.push(
      `last reload: ${stamp(s.lastReload.at)} ${s.lastReload.ok ? 'taken' : 'refused'}: ${visible(s.lastReload.message.split('\n')[0])}`,
    )
  const phases = Object.entries(v.byPhase)
    .map(([p, n]) => `${p} ${n}`)
    .join(', ')
  const capacity = v.health.capacity > 0 ? ` of ${v.health.capacity}` : ''
  out.push(`sessions: ${v.sessions} open${capacity}${phases === '' ? '' : ` (${phases})`}`)
  out.push('workers:')
  out.push(
    ...table([
      ['worker', 'pid', 'state', 'sessions', 'restarts', 'configuration'],
      ...v.workers.map((w) => [
        w.id === 0 ? '-' : String(w.id),
        visible(w.pid),
        w.ready ? (w.answered ? 'ready' : 'late') : 'starting',
        visible(w.sessions),
        String(w.restarts),
        visible(w.config),
      ]),
    ]),
  )
  if (v.list.length > 0) {
    out.push(`${v.order} first, ${v.offset + 1}-${v.offset + v.list.length} of ${v.sessions}:`)
    out.push(
      ...table([
        ['age', 'client', 'helo', 'phase', 'tls', 'user', 'from', 'worker'],
        ...v.list.map((x) => [
          age(v.at - x.startedAt),
          visible(`${x.ip}:${x.port}`),
          visible(x.helo),
          x.phase,
          visible(x.tls === undefined ? 'no' : x.tls.split(' ')[0]),
          visible(x.user),
          x.from === undefined ? '-' : visible(`<${x.from}>`),
          String(x.worker),
        ]),
      ]),
    )
  }
  return `${out.join('\n')}\n`
}
