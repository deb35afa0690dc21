/**
 * `npm run bench [-- options]`: qtsmtpd beside Haraka, qpsmtpd and smtp-sink, in one run on one
 * machine, with one load generator (smtp-source) and the same work, contenders interleaved and
 * repeated; writes .bench-work/results/latest.{json,md} and the "Latest results" section of
 * docs/performance.md. `--quick` is the CI smoke test: tiny counts, one round, missing peers
 * skipped (exit 0), but any qtsmtpd failure exits 1. Loopback only; every run is bounded.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, release, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { parseArgs } from 'node:util'
import {
  type BenchContext,
  type Contender,
  haraka,
  qpsmtpd,
  qtsmtpdAdminContenders,
  qtsmtpdContenders,
  type Running,
  smtpSink,
} from './contenders.ts'
import { harakaContent, qtsmtpdContent, stopContentDaemons } from './content.ts'
import { harakaLogin, qtsmtpdLogin } from './login.ts'
import { harakaAuth, qtsmtpdAuth, stopAuthWorld } from './mailauth.ts'
import { harakaPolicy, qtsmtpdPolicy, stopPolicyDns } from './policy.ts'
import { treeRssKiB } from './proc.ts'
import { profileMarkdown, summariseProfile } from './profile-summary.ts'
import { type Cell, type IdleResult, markdown, type Report, rewriteSection, summarise, withRatios } from './report.ts'
import { openIdle } from './smtp-client.ts'
import { measureStartup } from './startup-memory.ts'
import { harakaState, qtsmtpdState, stopStateRedis } from './state.ts'
import { type RunResult, runOnce, type Workload, workloads } from './workloads.ts'

const usage = `Usage: npm run bench -- [--quick] [--rounds N] [--only ids] [--workloads ids] [--cap SECONDS]
                      [--idle N] [--no-idle] [--no-profile] [--no-docs]
       npm run bench -- --report .bench-work/results/FILE.json   (re-render a run into docs/performance.md)
  contenders: qtsmtpd qtsmtpd-n qtsmtpd-admin qtsmtpd-admin-n qtsmtpd-maildir qtsmtpd-policy qtsmtpd-auth qtsmtpd-auth-n qtsmtpd-content qtsmtpd-state qtsmtpd-state-n qtsmtpd-state-redis-n qtsmtpd-login qtsmtpd-login-n haraka haraka-policy haraka-auth haraka-content haraka-state haraka-login qpsmtpd sink
  workloads:  ${workloads.map((w) => w.id).join(' ')}
`

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    workloads: { type: 'string' },
    cap: { type: 'string' },
    idle: { type: 'string' },
    'no-idle': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    report: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (args.help) {
  process.stdout.write(usage)
  process.exit(0)
}

const quick = args.quick === true
const rounds = Number(args.rounds ?? (quick ? 1 : 3))
const capMs = Number(args.cap ?? (quick ? 3 : 6)) * 1000
const idleCount = Number(args.idle ?? (quick ? 300 : 10_000))
const repo = dirname(dirname(new URL(import.meta.url).pathname))
const work = join(repo, '.bench-work')
const started = Date.now()
const log = (msg: string) =>
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`)

function makeCert(dir: string): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true })
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  if (!existsSync(cert) || !existsSync(key)) {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/CN=mx.bench.test',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'ignore' },
    )
  }
  return { cert, key }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

const isQt = (c: Contender) => c.id.startsWith('qtsmtpd')

const defaultLabels: Readonly<Record<string, string>> = {
  qtsmtpd: 'qtsmtpd (1 process)',
  'qtsmtpd-n': `qtsmtpd (${cpus().length} workers)`,
  'qtsmtpd-maildir': 'qtsmtpd Maildir (1 process)',
  'qtsmtpd-auth': 'qtsmtpd + sender_permitted_from, dkim, dmarc (1 process)',
  'qtsmtpd-auth-n': `qtsmtpd + sender_permitted_from, dkim, dmarc (${cpus().length} workers)`,
  haraka: 'Haraka',
  'haraka-auth': 'Haraka + spf, dkim',
  qpsmtpd: 'qpsmtpd (prefork)',
  sink: 'smtp-sink (ceiling)',
}

/** Re-renders a saved run (recomputing medians and ratios from its runs) into docs/performance.md. */
function rerender(file: string): number {
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Report
  const cells = withRatios(saved.cells.map((c) => summarise(c.workload, c.contender, c.runs)))
  const report: Report = { ...saved, cells }
  const wl = workloads.filter((w) => cells.some((c) => c.workload === w.id))
  const md = markdown(report, wl, { ...defaultLabels, ...saved.labels })
  process.stdout.write(`${md}\n`)
  if (!args['no-docs'] && !saved.quick)
    rewriteSection(join(repo, 'docs/performance.md'), 'bench:latest', 'Latest results', md)
  return 0
}

async function main(): Promise<number> {
  mkdirSync(join(work, 'results'), { recursive: true })
  const ctx: BenchContext = {
    repo,
    work,
    cores: cpus().length,
    quick,
    tls: makeCert(join(work, 'tls')),
    log,
  }
  const wanted = args.only?.split(',')
  const wl = workloads.filter((w) => !args.workloads || args.workloads.split(',').includes(w.id))
  let all: Contender[] = [...qtsmtpdContenders(ctx), haraka(), qpsmtpd(), smtpSink()]
  // The policy chain's servers run only its workload: leave them out when it is not chosen.
  if (wl.some((w) => w.id === 'policy')) all.push(qtsmtpdPolicy(), harakaPolicy())
  if (wl.some((w) => w.id === 'auth')) all.push(qtsmtpdAuth(), qtsmtpdAuth(cpus().length), harakaAuth())
  if (wl.some((w) => w.id === 'content')) all.push(qtsmtpdContent(), harakaContent())
  if (wl.some((w) => w.id === 'login'))
    all.push(
      qtsmtpdLogin({ id: 'qtsmtpd-login', label: 'qtsmtpd + auth_flat_file (1 process)' }),
      qtsmtpdLogin({
        id: 'qtsmtpd-login-n',
        label: `qtsmtpd + auth_flat_file (${cpus().length} workers)`,
        workers: cpus().length,
      }),
      harakaLogin(),
    )
  if (wl.some((w) => w.id === 'state'))
    all.push(
      qtsmtpdState({
        id: 'qtsmtpd-state',
        label: 'qtsmtpd + greylisting, limits, SQLite (1 process)',
        store: 'sqlite',
      }),
      qtsmtpdState({
        id: 'qtsmtpd-state-n',
        label: `qtsmtpd + greylisting, limits, SQLite (${cpus().length} workers)`,
        store: 'sqlite',
        workers: cpus().length,
      }),
      qtsmtpdState({
        id: 'qtsmtpd-state-redis-n',
        label: `qtsmtpd + greylisting, limits, Redis (${cpus().length} workers)`,
        store: 'redis',
        workers: cpus().length,
      }),
      harakaState(),
    )
  // The admin listener's cost is measured when asked for (--only qtsmtpd,qtsmtpd-admin).
  if (wanted?.some((id) => id.startsWith('qtsmtpd-admin'))) all.push(...qtsmtpdAdminContenders(ctx))
  if (wanted) all = all.filter((c) => wanted.includes(c.id))
  if (quick) all = all.filter((c) => c.id !== 'qtsmtpd-maildir' || wanted?.includes(c.id))
  const labels = Object.fromEntries(all.map((c) => [c.id, c.label]))
  const versions: Record<string, string> = {}
  const skipped: Record<string, string> = {}
  const notes: string[] = []
  let qtFailed = false
  let restarts = 0
  const fail = (c: Contender, why: string) => {
    log(`${c.id}: ${why}`)
    skipped[c.id] = why.split('\n')[0]?.slice(0, 300) ?? why
    if (isQt(c)) qtFailed = true
  }
  if (!all.some((c) => c.id === 'qtsmtpd-n') && !wanted)
    notes.push('qtsmtpd has no --workers option yet: one process only (Haraka runs nodes = cores)')

  // Install and start everyone; they idle on their own ports while others are measured.
  const running = new Map<string, Running>()
  for (const c of all) {
    try {
      versions[c.id] = await c.install(ctx)
      log(`${c.id}: ${versions[c.id]}`)
    } catch (e) {
      fail(c, `could not be installed: ${(e as Error).message}`)
      continue
    }
    try {
      running.set(c.id, await c.start(ctx, await freePort()))
    } catch (e) {
      fail(c, `could not be started: ${(e as Error).message}`)
    }
  }
  const stopAll = async () => {
    for (const r of running.values()) await r.stop()
    running.clear()
    await stopPolicyDns()
    await stopAuthWorld()
    await stopContentDaemons()
    await stopStateRedis()
  }
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)))

  // Warm-up and sanity: each server must take a few messages.
  const warm: Workload = { ...(workloads[1] as Workload), probe: false, quickCount: 10, count: 10 }
  for (const c of all) {
    const r = running.get(c.id)
    if (!r) continue
    const res = await runOnce(warm, r, { quick: true, capMs: 20_000 })
    if (res.error || res.messages < 10) {
      fail(
        c,
        `failed the warm-up: ${res.error ?? `${res.messages}/10 messages`}; server said: ${r.tail().trim().slice(-500)}`,
      )
      await r.stop()
      running.delete(c.id)
    }
  }

  // Rounds: each workload, contenders in a rotated order, so drift hits everyone alike.
  const results = new Map<string, RunResult[]>()
  for (let round = 0; round < rounds; round++) {
    for (const [wi, w] of wl.entries()) {
      const order = [...running.keys()]
      const shift = (round + wi) % Math.max(1, order.length)
      for (const id of [...order.slice(shift), ...order.slice(0, shift)]) {
        const c = all.find((x) => x.id === id) as Contender
        let r = running.get(id)
        if (
          !r ||
          (c.only && !c.only.includes(w.id)) ||
          (w.contenders && !w.contenders.includes(id)) ||
          (w.tls && !c.tls)
        )
          continue
        if (!r.alive()) {
          // Other processes on a shared machine may kill ours; restart rather than lose the round.
          const note = `${id} exited during the run (${r.tail().trim().split('\n').pop()?.slice(0, 120)}); restarted before ${w.id} round ${round + 1}`
          log(note)
          notes.push(note)
          if (isQt(c)) restarts++
          try {
            r = await c.start(ctx, await freePort())
            running.set(id, r)
          } catch (e) {
            fail(c, `could not be restarted: ${(e as Error).message}`)
            running.delete(id)
            continue
          }
        }
        const res = await runOnce(w, r, { quick, capMs })
        if (!r.alive()) {
          const tail = r.tail().trim()
          const killed = /SIGTERM|SIGINT/.test(tail)
          const note = `${id} exited during ${w.id} round ${round + 1}${killed ? ' (signalled from outside the harness)' : ''}; that run is discarded`
          log(`${note}: ${tail.slice(-600)}`)
          notes.push(note)
          if (isQt(c) && !killed) qtFailed = true
          continue
        }
        const key = `${w.id}/${id}`
        results.set(key, [...(results.get(key) ?? []), res])
        log(
          `round ${round + 1} ${w.id.padEnd(5)} ${id.padEnd(16)} ${res.msgsPerSec.toFixed(0).padStart(6)} msg/s ${res.mbPerSec.toFixed(1).padStart(6)} MB/s cpu ${res.cpuPct.toFixed(0).padStart(3)}%${res.capped ? ' (capped)' : ''}${res.error ? ` ERROR ${res.error}` : ''}`,
        )
        if (isQt(c) && (res.error || res.messages === 0) && r.alive()) {
          qtFailed = true
          log(`${id} failed: ${r.tail().trim().slice(-800)}`)
        }
      }
    }
  }
  await stopAll()

  // Memory right after start (config.sample and the bench's servers), then per idle connection:
  // a fresh server, warmed, then N connections that got their greeting.
  const idle: IdleResult[] = []
  const startup = args['no-idle']
    ? []
    : await measureStartup(
        ctx,
        all.filter((c) => versions[c.id] && !skipped[c.id]),
        freePort,
      )
  if (startup.length > 0 && !startup.some((s) => s.contender === 'qtsmtpd-sample')) qtFailed = true
  if (!args['no-idle']) {
    for (const c of all.filter(
      (x) => ['qtsmtpd', 'haraka', 'sink'].includes(x.id) && versions[x.id] && !skipped[x.id],
    )) {
      const n = c.id === 'qtsmtpd' ? idleCount : Math.min(idleCount, quick ? 300 : 10_000)
      let r: Running | undefined
      try {
        r = await c.start(ctx, await freePort())
        await runOnce(warm, r, { quick: true, capMs: 20_000 })
        await new Promise((res) => setTimeout(res, 1000))
        const baseKiB = treeRssKiB(r.pid)
        const { open, failed } = await openIdle(r.port, n)
        await new Promise((res) => setTimeout(res, 1500))
        const heldKiB = treeRssKiB(r.pid)
        for (const s of open) s.destroy()
        idle.push({
          contender: c.id,
          connections: open.length,
          failed,
          baseKiB,
          heldKiB,
          perConnKiB: (heldKiB - baseKiB) / Math.max(1, open.length),
        })
        log(
          `idle ${c.id}: ${open.length} connections (${failed} failed), ${((heldKiB - baseKiB) / Math.max(1, open.length)).toFixed(1)} KiB each`,
        )
        if (isQt(c) && open.length < n / 2) qtFailed = true
      } catch (e) {
        log(`idle ${c.id}: ${(e as Error).message}`)
        if (isQt(c)) qtFailed = true
      } finally {
        await new Promise((res) => setTimeout(res, 500))
        await r?.stop()
      }
    }
  }

  // CPU profiles of qtsmtpd's hot path (one process), one server and one profile per workload.
  const profiles: string[] = []
  const qt = all.find((c) => c.id === 'qtsmtpd')
  if (!quick && !args['no-profile'] && qt && !skipped.qtsmtpd) {
    const base = join(work, 'prof', new Date().toISOString().replace(/[:.]/g, '-'))
    for (const id of ['c20', 'ka20', 'm10']) {
      // Three times the usual count, so start-up (module loading, type stripping) weighs little.
      const w0 = workloads.find((x) => x.id === id) as Workload
      const w = { ...w0, count: w0.count * 3 }
      const dir = join(base, id)
      mkdirSync(dir, { recursive: true })
      const r = await qt.start(ctx, await freePort(), ['--cpu-prof', `--cpu-prof-dir=${dir}`])
      const res = await runOnce(w, r, { quick: false, capMs: capMs * 2 })
      log(`profile ${id}: ${res.msgsPerSec.toFixed(0)} msg/s, ${res.mbPerSec.toFixed(1)} MB/s`)
      await r.stop()
      const newest = readdirSync(dir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0]
      if (!newest) {
        log(`profile ${id}: no .cpuprofile written (did the server exit cleanly?)`)
        continue
      }
      const rel = join('.bench-work', 'prof', base.split('/').pop() ?? '', id, newest)
      profiles.push(
        profileMarkdown(
          summariseProfile(join(dir, newest), repo, 20),
          `**${w.label}** (${res.msgsPerSec.toFixed(0)} msg/s while profiled), \`${rel}\``,
        ),
      )
    }
  }
  const profile = profiles.join('\n\n')

  const cells: Cell[] = withRatios(
    wl.flatMap((w) =>
      all.flatMap((c) =>
        results.has(`${w.id}/${c.id}`) ? [summarise(w.id, c.id, results.get(`${w.id}/${c.id}`) ?? [])] : [],
      ),
    ),
  )
  const report: Report = {
    date: new Date().toISOString(),
    quick,
    rounds,
    machine: {
      nproc: cpus().length,
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      kernel: release(),
      memGiB: Math.round(totalmem() / 2 ** 30),
    },
    versions,
    skipped,
    notes,
    labels,
    cells,
    idle,
    startup,
  }
  const md = markdown(report, wl, labels)
  const stamp = report.date.replace(/[:.]/g, '-')
  writeFileSync(join(work, 'results', `${stamp}.json`), JSON.stringify(report, null, 2))
  writeFileSync(join(work, 'results', 'latest.json'), JSON.stringify(report, null, 2))
  writeFileSync(join(work, 'results', 'latest.md'), `${md}\n${profile ? `\n${profile}\n` : ''}`)
  process.stdout.write(`${md}\n${profile ? `\n${profile}\n` : ''}`)
  if (!quick && !args['no-docs']) {
    const doc = join(repo, 'docs/performance.md')
    rewriteSection(doc, 'bench:latest', 'Latest results', md)
    if (profile) rewriteSection(doc, 'bench:profile', 'Latest profile', profile)
    log(`wrote ${doc}`)
  }
  // A server killed from outside is noted and restarted; qtsmtpd dying on its own load is a failure.
  if (restarts > 0) log(`qtsmtpd was restarted ${restarts} time(s); see the notes`)
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s${qtFailed ? '; qtsmtpd FAILED' : ''}`)
  if (Object.keys(skipped).length)
    log(
      `not measured: ${Object.entries(skipped)
        .map(([k, v]) => `${k} (${v})`)
        .join('; ')}`,
    )
  return qtFailed ? 1 : 0
}

const code = await (args.report ? Promise.resolve(rerender(args.report)) : main()).catch((e: Error) => {
  log(`fatal: ${e.stack ?? e.message}`)
  return 1
})
// Closing sockets of the idle test may leave handles; do not wait for them.
process.exit(code)
