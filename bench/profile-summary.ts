/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per source file,
 * as a share of all samples. Usage: node bench/profile-summary.ts FILE.cpuprofile [top]
 */
import { readFileSync } from 'node:fs'
import { relative } from 'node:path'

interface ProfileNode {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number }
  readonly children?: readonly number[]
}

interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

export interface ProfileRow {
  readonly name: string
  readonly where: string
  readonly pct: number
}

const shortUrl = (url: string, root: string): string => {
  if (url === '') return ''
  const path = url.startsWith('file://') ? new URL(url).pathname : url
  return path.startsWith('/') ? relative(root, path) : path
}

export interface ProfileSummary {
  readonly functions: ProfileRow[]
  readonly files: ProfileRow[]
  /** Busy (non-idle) sampled time, and idle time, in ms. */
  readonly totalMs: number
  readonly idleMs: number
}

export function summariseProfile(file: string, root: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let total = 0
  // Weight each sample by the time until the next one, as DevTools does.
  let idle = 0
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0
    // Idle time is waiting for the client, not work: report it apart and take shares of the rest.
    if (byId.get(id)?.callFrame.functionName === '(idle)') {
      idle += dt
      return
    }
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })
  const fn = new Map<string, { name: string; where: string; t: number }>()
  const files = new Map<string, number>()
  for (const [id, t] of self) {
    const n = byId.get(id)
    if (!n) continue
    const { functionName, url, lineNumber } = n.callFrame
    const file = shortUrl(url, root)
    const name = functionName || (file ? '(anonymous)' : '(native/other)')
    const where = file ? `${file}:${lineNumber + 1}` : ''
    const key = `${name}@${where}`
    const row = fn.get(key) ?? { name, where, t: 0 }
    row.t += t
    fn.set(key, row)
    const fileKey = file || name
    files.set(fileKey, (files.get(fileKey) ?? 0) + t)
  }
  const pct = (t: number) => (total > 0 ? (100 * t) / total : 0)
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    functions: [...fn.values()]
      .sort((a, b) => b.t - a.t)
      .slice(0, top)
      .map((r) => ({ name: r.name, where: r.where, pct: pct(r.t) })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => ({ name, where: '', pct: pct(t) })),
  }
}

export function profileMarkdown(s: ProfileSummary, title: string): string {
  const busy = s.totalMs / 1000
  const all = busy + s.idleMs / 1000
  const out = [
    `${title}: ${busy.toFixed(1)} s busy of ${all.toFixed(1)} s sampled (${((100 * busy) / Math.max(all, 1e-9)).toFixed(0)} % of the main thread); shares below are of the busy time.`,
    '',
    '| self % | function | where |',
    '|---:|---|---|',
  ]
  for (const r of s.functions) out.push(`| ${r.pct.toFixed(1)} | \`${r.name}\` | ${r.where} |`)
  out.push('', '| self % | file (or V8/native bucket) |', '|---:|---|')
  for (const r of s.files.slice(0, 15)) out.push(`| ${r.pct.toFixed(1)} | ${r.name} |`)
  return out.join('\n')
}

if (import.meta.main) {
  const [file, top] = process.argv.slice(2)
  if (!file) {
    process.stderr.write('usage: node bench/profile-summary.ts FILE.cpuprofile [top]\n')
    process.exit(1)
  }
  process.stdout.write(`${profileMarkdown(summariseProfile(file, process.cwd(), Number(top ?? 25)), file)}\n`)
}
