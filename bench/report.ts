/**
 * Turns the runs into medians, spreads and ratios, renders the markdown table, the target
 * check, and rewrites the generated sections of docs/performance.md (between markers; the
 * prose around them is kept).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { StartupResult } from './startup-memory.ts'
import type { RunResult, Workload } from './workloads.ts'

export interface Cell {
  readonly workload: string
  readonly contender: string
  readonly runs: readonly RunResult[]
  readonly msgsPerSec: { readonly median: number; readonly min: number; readonly max: number }
  readonly mbPerSec: number
  readonly cpuPct: number
  /** Server CPU time per message, in ms: steadier than msgs/s on a loaded machine. */
  readonly cpuMsPerMsg: number
  /** The workload's daemons' CPU (% of one core), when it has daemons. */
  readonly peerCpuPct?: number
  /** The highest peak of the process tree's summed RSS over the runs. */
  readonly rssMiB: number
  readonly latency?: { readonly p50: number; readonly p99: number }
  readonly vsHaraka?: number
  readonly vsSink?: number
  /** CPU per message relative to Haraka's (below 1: cheaper than Haraka). */
  readonly cpuVsHaraka?: number
  readonly errors: readonly string[]
}

export interface IdleResult {
  readonly contender: string
  readonly connections: number
  readonly failed: number
  readonly baseKiB: number
  readonly heldKiB: number
  readonly perConnKiB: number
}

export interface Report {
  readonly date: string
  readonly quick: boolean
  readonly rounds: number
  readonly machine: { readonly nproc: number; readonly cpu: string; readonly kernel: string; readonly memGiB: number }
  readonly versions: Readonly<Record<string, string>>
  readonly skipped: Readonly<Record<string, string>>
  readonly notes: readonly string[]
  readonly labels?: Readonly<Record<string, string>>
  readonly cells: readonly Cell[]
  readonly idle: readonly IdleResult[]
  /** RSS of idle servers right after start (absent in runs saved before it was measured). */
  readonly startup?: readonly StartupResult[]
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return Number.NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export function summarise(workload: string, contender: string, runs: readonly RunResult[]): Cell {
  const rates = runs.map((r) => r.msgsPerSec)
  const lat = runs.flatMap((r) => (r.latency ? [r.latency] : []))
  const errors = [...new Set(runs.flatMap((r) => (r.error ? [r.error] : [])))]
  return {
    workload,
    contender,
    runs,
    msgsPerSec: { median: median(rates), min: Math.min(...rates), max: Math.max(...rates) },
    mbPerSec: median(runs.map((r) => r.mbPerSec)),
    cpuPct: median(runs.map((r) => r.cpuPct)),
    cpuMsPerMsg: median(runs.map((r) => (r.messages > 0 ? (r.cpuPct / 100 / r.msgsPerSec) * 1000 : Number.NaN))),
    // The server runs through every round, so the highest peak is the one that counts.
    rssMiB: Math.max(...runs.map((r) => r.rssPeakKiB)) / 1024,
    ...(runs.some((r) => r.peerCpuPct !== undefined)
      ? { peerCpuPct: median(runs.map((r) => r.peerCpuPct ?? Number.NaN)) }
      : {}),
    ...(lat.length ? { latency: { p50: median(lat.map((l) => l.p50)), p99: median(lat.map((l) => l.p99)) } } : {}),
    errors,
  }
}

/** Adds ratios to Haraka and smtp-sink, per workload. */
export function withRatios(cells: readonly Cell[]): Cell[] {
  return cells.map((c) => {
    const of = (id: string) => cells.find((x) => x.workload === c.workload && x.contender === id)?.msgsPerSec.median
    // A workload with its own Haraka (haraka-policy, haraka-auth: the same checks on) compares to it.
    const harakaId =
      cells.find((x) => x.workload === c.workload && x.contender.startsWith('haraka-'))?.contender ?? 'haraka'
    const h = of(harakaId)
    const s = of('sink')
    const hc = cells.find((x) => x.workload === c.workload && x.contender === harakaId)?.cpuMsPerMsg
    return {
      ...c,
      ...(hc ? { cpuVsHaraka: c.cpuMsPerMsg / hc } : {}),
      ...(h ? { vsHaraka: c.msgsPerSec.median / h } : {}),
      ...(s ? { vsSink: c.msgsPerSec.median / s } : {}),
    }
  })
}

const f = (x: number | undefined, digits = 0): string =>
  x === undefined || !Number.isFinite(x)
    ? '–'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

export function markdown(r: Report, workloads: readonly Workload[], labels: Readonly<Record<string, string>>): string {
  const out: string[] = []
  out.push(
    `Run ${r.date}${r.quick ? ' (--quick smoke run: tiny counts, numbers mean nothing)' : ''}: ${r.machine.nproc} cores (${r.machine.cpu}), ${r.machine.memGiB} GiB, Linux ${r.machine.kernel}; ${r.rounds} round(s), contenders interleaved; medians, with min–max of msgs/s.`,
    '',
  )
  out.push('Versions:', '')
  for (const [k, v] of Object.entries(r.versions)) out.push(`- ${labels[k] ?? k}: ${v}`)
  for (const [k, v] of Object.entries(r.skipped)) out.push(`- ${labels[k] ?? k}: **not measured**: ${v}`)
  for (const n of r.notes) out.push(`- note: ${n}`)
  out.push('')
  out.push(
    '| workload | contender | msgs/s (min–max) | MB/s | server CPU % | CPU ms/msg | peak RSS MiB | p50 / p99 ms | × Haraka | × smtp-sink | CPU/msg × Haraka |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  )
  for (const w of workloads) {
    for (const c of r.cells.filter((x) => x.workload === w.id)) {
      const lat = c.latency ? `${f(c.latency.p50, 1)} / ${f(c.latency.p99, 1)}` : ''
      const err = c.errors.length ? ` ⚠ ${c.errors[0]?.slice(0, 80)}` : ''
      out.push(
        `| ${w.label} | ${labels[c.contender] ?? c.contender}${err} | ${f(c.msgsPerSec.median)} (${f(c.msgsPerSec.min)}–${f(c.msgsPerSec.max)}) | ${f(c.mbPerSec, 1)} | ${f(c.cpuPct)} | ${f(c.cpuMsPerMsg, c.cpuMsPerMsg < 10 ? 2 : 0)} | ${f(c.rssMiB)} | ${lat} | ${f(c.vsHaraka, 2)} | ${f(c.vsSink, 2)} | ${f(c.cpuVsHaraka, 2)} |`,
      )
    }
  }
  const split = r.cells.filter((c) => c.peerCpuPct !== undefined)
  if (split.length) {
    out.push(
      '',
      "| CPU split | contender | msgs/s | server CPU % | daemons CPU % | daemons' share of the CPU | daemons CPU ms/msg |",
      '|---|---|---:|---:|---:|---:|---:|',
    )
    for (const c of split) {
      const peer = c.peerCpuPct ?? Number.NaN
      const w = workloads.find((x) => x.id === c.workload)
      out.push(
        `| ${w?.label ?? c.workload} | ${labels[c.contender] ?? c.contender} | ${f(c.msgsPerSec.median)} | ${f(c.cpuPct)} | ${f(peer)} | ${f((peer / (peer + c.cpuPct)) * 100)} % | ${f((peer / 100 / c.msgsPerSec.median) * 1000, 1)} |`,
      )
    }
  }
  if (r.startup?.length) {
    out.push(
      '',
      '| idle after start | processes | RSS MiB |',
      '|---|---:|---:|',
      ...r.startup.map((s) => `| ${s.label} | ${s.processes} | ${f(s.rssKiB / 1024, 1)} |`),
    )
  }
  if (r.idle.length) {
    out.push(
      '',
      '| idle connections held | contender | base RSS MiB | RSS with them MiB | KiB per connection |',
      '|---:|---|---:|---:|---:|',
    )
    for (const i of r.idle)
      out.push(
        `| ${f(i.connections)}${i.failed ? ` (${i.failed} failed)` : ''} | ${labels[i.contender] ?? i.contender} | ${f(i.baseKiB / 1024, 1)} | ${f(i.heldKiB / 1024, 1)} | ${f(i.perConnKiB, 1)} |`,
      )
  }
  out.push('', ...targets(r))
  return out.join('\n')
}

/** The issues' targets: per qtsmtpd variant for throughput and memory, the best variant for the rest. */
export function targets(r: Report): string[] {
  const qt = ['qtsmtpd', 'qtsmtpd-n']
  const best = (w: string) =>
    r.cells
      .filter((c) => c.workload === w && qt.includes(c.contender))
      .sort((a, b) => b.msgsPerSec.median - a.msgsPerSec.median)[0]
  const get = (w: string, id: string) => r.cells.find((c) => c.workload === w && c.contender === id)
  const rows: string[] = ['| target | measured | met |', '|---|---|:---:|']
  const mark = (ok: boolean | undefined) => (ok === undefined ? '?' : ok ? 'yes' : '**no**')
  for (const w of ['c1', 'c20', 'c100', 'ka20']) {
    const h = get(w, 'haraka')
    for (const id of qt) {
      const q = get(w, id)
      if (!q) continue
      const ratio = h ? q.msgsPerSec.median / h.msgsPerSec.median : undefined
      rows.push(
        `| ${w}, ${id}: ≥ 2 × Haraka msgs/s | ${f(ratio, 2)} × (${f(q.msgsPerSec.median)} vs ${f(h?.msgsPerSec.median)}) | ${mark(ratio === undefined ? undefined : ratio >= 2)} |`,
        `| ${w}, ${id}: peak RSS below Haraka's | ${f(q.rssMiB)} vs ${f(h?.rssMiB)} MiB | ${mark(h === undefined ? undefined : q.rssMiB < h.rssMiB)} |`,
      )
    }
  }
  {
    const s = r.startup?.find((x) => x.contender === 'qtsmtpd-sample')
    rows.push(
      `| idle after start, config.sample, 1 process: ≤ 60 MB RSS | ${f(s === undefined ? undefined : s.rssKiB / 1024, 1)} MiB | ${mark(s === undefined ? undefined : s.rssKiB * 1024 <= 60e6)} |`,
    )
  }
  {
    const q = get('policy', 'qtsmtpd-policy')
    const h = get('policy', 'haraka-policy')
    const ratio = q && h ? q.msgsPerSec.median / h.msgsPerSec.median : undefined
    rows.push(
      `| policy chain (issue 12): ≥ 2 × Haraka msgs/s | ${f(ratio, 2)} × (${f(q?.msgsPerSec.median)} vs ${f(h?.msgsPerSec.median)}) | ${mark(ratio === undefined ? undefined : ratio >= 2)} |`,
    )
  }
  for (const [label, id] of [
    ['SQLite', 'qtsmtpd-state'],
    ['SQLite', 'qtsmtpd-state-n'],
    ['Redis', 'qtsmtpd-state-redis-n'],
  ] as const) {
    const q = get('state', id)
    const h = get('state', 'haraka-state')
    const ratio = q && h ? q.msgsPerSec.median / h.msgsPerSec.median : undefined
    rows.push(
      `| greylisting + limits on ${label} (${id}, issue 14): ≥ 2 × Haraka's greylist + limit on Redis | ${f(ratio, 2)} × (${f(q?.msgsPerSec.median)} vs ${f(h?.msgsPerSec.median)}) | ${mark(ratio === undefined ? undefined : ratio >= 2)} |`,
    )
  }
  {
    const q = best('ka20')
    const s = get('ka20', 'sink')
    const ratio = q && s ? q.msgsPerSec.median / s.msgsPerSec.median : undefined
    rows.push(
      `| keep-alive ≥ ½ smtp-sink | ${f(ratio, 2)} × (${f(q?.msgsPerSec.median)} vs ${f(s?.msgsPerSec.median)}) | ${mark(ratio === undefined ? undefined : ratio >= 0.5)} |`,
    )
  }
  {
    const i = r.idle.find((x) => x.contender === 'qtsmtpd')
    rows.push(
      `| ≤ 20 KiB per idle connection | ${f(i?.perConnKiB, 1)} KiB | ${mark(i === undefined ? undefined : i.perConnKiB <= 20)} |`,
    )
  }
  {
    const q = get('m10', 'qtsmtpd')
    const perCore = q && q.cpuPct > 0 ? q.mbPerSec / (q.cpuPct / 100) : undefined
    rows.push(
      `| 10 MB messages ≥ 100 MB/s per core | ${f(q?.mbPerSec, 1)} MB/s at ${f(q?.cpuPct)} % CPU = ${f(perCore, 1)} MB/s per core-second | ${mark(perCore === undefined ? undefined : perCore >= 100)} |`,
    )
  }
  return ['Targets (issues 6 and 19):', '', ...rows]
}

/** Replaces the text between `<!-- name:begin -->` and `<!-- name:end -->`, appending the section if absent. */
export function rewriteSection(file: string, name: string, heading: string, body: string): void {
  const begin = `<!-- ${name}:begin (generated by npm run bench; edits here are overwritten) -->`
  const end = `<!-- ${name}:end -->`
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Performance\n'
  const i = text.indexOf(`<!-- ${name}:begin`)
  const j = text.indexOf(end)
  const block = `${begin}\n${body.trim()}\n${end}`
  const next =
    i >= 0 && j > i
      ? text.slice(0, i) + block + text.slice(j + end.length)
      : `${text.trimEnd()}\n\n## ${heading}\n\n${block}\n`
  writeFileSync(file, next)
}
