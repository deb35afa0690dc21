/**
 * The workloads and how one run of one workload against one server is measured: smtp-source
 * (Postfix's C load generator) for plain SMTP, our own client for STARTTLS (smtp-source has
 * none). Every run is bounded by a message count and a time cap; a run cut by the cap counts
 * the messages smtp-source reported done (its -c counter).
 */
import { spawn } from 'node:child_process'
import { contentDaemonPids } from './content.ts'
import { LOGIN_PASSWORD, LOGIN_USER } from './login.ts'
import { AUTH_SENDER, authWorld } from './mailauth.ts'
import { CLK_TCK, sampleRss, treeTicks } from './proc.ts'
import { makeBody, oneTransaction, runLoad } from './smtp-client.ts'
import { stateRedisPids } from './state.ts'

export interface Workload {
  readonly id: string
  readonly label: string
  readonly size: number
  readonly concurrency: number
  readonly keepAlive: boolean
  readonly tls: boolean
  readonly count: number
  readonly quickCount: number
  /**
   * Also run a latency probe during the load: one transaction at a time on its own connection
   * (connect to QUIT), started at most every PROBE_INTERVAL_MS so that it adds little load even
   * at c=1. Workloads driven by our own client (STARTTLS, signed, login) time their own
   * transactions instead.
   */
  readonly probe: boolean
  /** Only these contenders run it (the policy chain's own servers); every contender when absent. */
  readonly contenders?: readonly string[]
  /** Sends bench/mailauth.ts's DKIM-signed message with our client (smtp-source cannot send a given one). */
  readonly signed?: boolean
  /** Logs in with AUTH PLAIN (bench/login.ts's user) before each message. */
  readonly auth?: { readonly user: string; readonly password: string }
  /** Daemons the servers ask (clamd, spamd): their process trees' CPU is measured beside the server's. */
  readonly peers?: () => Promise<readonly number[]>
}

export const workloads: readonly Workload[] = [
  {
    id: 'c1',
    label: '2 KB, 1 msg/conn, c=1',
    size: 2048,
    concurrency: 1,
    keepAlive: false,
    tls: false,
    count: 3000,
    quickCount: 20,
    probe: true,
  },
  {
    id: 'c20',
    label: '2 KB, 1 msg/conn, c=20',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: false,
    count: 4000,
    quickCount: 40,
    probe: true,
  },
  {
    id: 'c100',
    label: '2 KB, 1 msg/conn, c=100',
    size: 2048,
    concurrency: 100,
    keepAlive: false,
    tls: false,
    count: 4000,
    quickCount: 100,
    probe: true,
  },
  {
    id: 'ka20',
    label: '2 KB, keep-alive, c=20',
    size: 2048,
    concurrency: 20,
    keepAlive: true,
    tls: false,
    count: 12000,
    quickCount: 100,
    probe: true,
  },
  {
    id: 'k100',
    label: '100 KB, keep-alive, c=10',
    size: 102_400,
    concurrency: 10,
    keepAlive: true,
    tls: false,
    count: 2000,
    quickCount: 20,
    probe: true,
  },
  {
    id: 'm10',
    label: '10 MB, keep-alive, c=2',
    size: 10_485_760,
    concurrency: 2,
    keepAlive: true,
    tls: false,
    count: 30,
    quickCount: 2,
    probe: true,
  },
  {
    id: 'tls',
    label: '2 KB, STARTTLS, 1 msg/conn, c=20',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: true,
    count: 1000,
    quickCount: 20,
    probe: false,
  },
  {
    // bench/policy.ts: dnsbl (3 zones), helo rfc, badmailfrom, resolvable_fromhost against unbound.
    id: 'policy',
    label: '2 KB, 1 msg/conn, c=20, policy chain',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: false,
    count: 4000,
    quickCount: 40,
    probe: true,
    contenders: ['qtsmtpd-policy', 'haraka-policy'],
  },
  {
    // bench/mailauth.ts: SPF, DKIM and DMARC of a signed message against unbound.
    id: 'auth',
    label: '2 KB DKIM-signed, 1 msg/conn, c=20, SPF + DKIM + DMARC',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: false,
    count: 2000,
    quickCount: 20,
    probe: false,
    contenders: ['qtsmtpd-auth', 'qtsmtpd-auth-n', 'haraka-auth'],
    signed: true,
  },
  {
    // bench/state.ts: greylisting (a white triplet) + rate limits + connection leases, SQLite and Redis.
    id: 'state',
    label: '2 KB, 1 msg/conn, c=20, greylisting + rate limits',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: false,
    count: 4000,
    quickCount: 40,
    probe: true,
    contenders: [
      'qtsmtpd',
      'qtsmtpd-n',
      'qtsmtpd-state',
      'qtsmtpd-state-n',
      'qtsmtpd-state-redis-n',
      'haraka',
      'haraka-state',
    ],
    peers: stateRedisPids,
  },
  {
    // bench/login.ts: AUTH PLAIN against auth_flat_file (qtsmtpd) and auth/flat_file (Haraka).
    id: 'login',
    label: '2 KB, STARTTLS + AUTH PLAIN, 1 msg/conn, c=20 (logins/s)',
    size: 2048,
    concurrency: 20,
    keepAlive: false,
    tls: true,
    count: 1000,
    quickCount: 20,
    probe: false,
    contenders: ['qtsmtpd-login', 'qtsmtpd-login-n', 'haraka-login'],
    auth: { user: LOGIN_USER, password: LOGIN_PASSWORD },
  },
  {
    // bench/content.ts: virus/clamdscan + spamassassin, and Haraka's clamd + spamassassin, against one clamd and spamd.
    id: 'content',
    label: '2 KB, 1 msg/conn, c=10, clamd + spamd',
    size: 2048,
    concurrency: 10,
    keepAlive: false,
    tls: false,
    count: 600,
    quickCount: 10,
    probe: false,
    contenders: ['qtsmtpd-content', 'haraka-content'],
    peers: contentDaemonPids,
  },
]

export interface RunResult {
  readonly messages: number
  readonly elapsedMs: number
  readonly msgsPerSec: number
  readonly mbPerSec: number
  /** Server CPU over the run, in % of one core (200 = both cores of this machine). */
  readonly cpuPct: number
  /** The workload's daemons' CPU over the run (Workload.peers), in % of one core. */
  readonly peerCpuPct?: number
  readonly rssPeakKiB: number
  readonly capped: boolean
  readonly error?: string
  readonly latency?: { readonly p50: number; readonly p99: number; readonly n: number }
}

/** The latency probe starts a transaction at most this often (at most 100 a second). */
export const PROBE_INTERVAL_MS = 10

export const percentile = (sorted: readonly number[], p: number): number =>
  sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)

interface SourceResult {
  readonly done: number
  readonly capped: boolean
  readonly error?: string
}

function smtpSource(w: Workload, port: number, count: number, capMs: number): Promise<SourceResult> {
  const args = [
    '-4',
    '-c',
    '-s',
    String(w.concurrency),
    '-m',
    String(count),
    '-l',
    String(w.size),
    '-f',
    'sender@client.test',
    '-t',
    'user@bench.test',
    '-M',
    'client.test',
    ...(w.keepAlive ? ['-d'] : []),
    `127.0.0.1:${port}`,
  ]
  return new Promise((resolve) => {
    const child = spawn('/usr/sbin/smtp-source', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let last = ''
    let err = ''
    let capped = false
    child.stdout.setEncoding('latin1')
    child.stdout.on('data', (d: string) => {
      last = (last + d).slice(-64)
    })
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-2000)
    })
    const timer = setTimeout(() => {
      capped = true
      child.kill('SIGTERM')
    }, capMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      const nums = last.match(/\d+/g)
      const done = Number(nums?.[nums.length - 1] ?? 0)
      const base = { done, capped }
      if (code !== 0 && !capped) resolve({ ...base, error: err.trim().split('\n')[0] ?? `exit ${code}` })
      else resolve(base)
    })
  })
}

function latencyOf(ms: readonly number[]): RunResult['latency'] {
  if (ms.length === 0) return undefined
  const sorted = [...ms].sort((a, b) => a - b)
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), n: sorted.length }
}

/** Runs one workload once against a server whose process tree starts at `pid`. */
export async function runOnce(
  w: Workload,
  server: { pid: number; port: number },
  opts: { quick: boolean; capMs: number },
): Promise<RunResult> {
  const count = opts.quick ? w.quickCount : w.count
  const peers = (await w.peers?.()) ?? []
  const peerTicks = () => peers.reduce((sum, pid) => sum + treeTicks(pid), 0)
  const peerTicks0 = peerTicks()
  const ticks0 = treeTicks(server.pid)
  const rss = sampleRss(server.pid)
  const t0 = performance.now()
  let done = 0
  let capped = false
  let error: string | undefined
  let latency: RunResult['latency']
  if (w.tls || w.signed) {
    const r = await runLoad({
      port: server.port,
      starttls: w.tls,
      ...(w.auth === undefined ? {} : { auth: w.auth }),
      ...(w.signed ? { body: (await authWorld()).message, from: AUTH_SENDER } : { body: makeBody(w.size) }),
      concurrency: w.concurrency,
      count,
      capMs: opts.capMs,
    })
    done = r.ok
    capped = r.ok + r.failed < count
    error = r.firstError
    latency = latencyOf(r.latenciesMs)
  } else {
    let stopProbe = false
    const lat: number[] = []
    const probe = (async () => {
      if (!w.probe) return
      const body = makeBody(w.size)
      while (!stopProbe && lat.length < 100_000) {
        const started = performance.now()
        try {
          lat.push(await oneTransaction({ port: server.port, body, timeoutMs: 10_000 }))
        } catch {}
        const wait = PROBE_INTERVAL_MS - (performance.now() - started)
        if (wait > 0 && !stopProbe) await new Promise((r) => setTimeout(r, wait))
      }
    })()
    const r = await smtpSource(w, server.port, count, opts.capMs)
    stopProbe = true
    await probe
    done = r.done
    capped = r.capped
    error = r.error
    if (w.probe) latency = latencyOf(lat)
  }
  const elapsedMs = performance.now() - t0
  const cpuTicks = treeTicks(server.pid) - ticks0
  const peerCpuTicks = peerTicks() - peerTicks0
  const rssPeakKiB = rss.stop()
  const secs = elapsedMs / 1000
  const result: RunResult = {
    messages: done,
    elapsedMs,
    msgsPerSec: done / secs,
    mbPerSec: (done * w.size) / 1e6 / secs,
    cpuPct: (cpuTicks / CLK_TCK / secs) * 100,
    ...(peers.length > 0 ? { peerCpuPct: (peerCpuTicks / CLK_TCK / secs) * 100 } : {}),
    rssPeakKiB,
    capped,
    ...(error === undefined ? {} : { error }),
    ...(latency === undefined ? {} : { latency }),
  }
  return result
}
