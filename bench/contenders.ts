/**
 * The contenders: how each is installed into .bench-work/, configured for the same work
 * (accept recipients of the local domain bench.test, queue to a discard backend, or a Maildir),
 * and started on a loopback port. DNS is off everywhere: Haraka's and qpsmtpd's reverse
 * lookups are replaced by a constant, so nothing leaves the machine.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { type AddressInfo, createServer } from 'node:net'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { openSession } from './smtp-client.ts'

export interface BenchContext {
  readonly repo: string
  readonly work: string
  readonly cores: number
  readonly quick: boolean
  readonly tls: { readonly cert: string; readonly key: string }
  log(msg: string): void
}

export interface Running {
  readonly pid: number
  readonly port: number
  /** Lines the server wrote to stderr/stdout lately, for error reports. */
  tail(): string
  /** False once the server process exited (crashed, or was killed from outside the harness). */
  alive(): boolean
  stop(): Promise<void>
}

export interface Contender {
  readonly id: string
  readonly label: string
  readonly tls: boolean
  /** Workload ids this contender runs; all when absent. */
  readonly only?: readonly string[]
  /** Installs what is missing and returns the version; throws when it cannot. */
  install(ctx: BenchContext): Promise<string>
  start(ctx: BenchContext, port: number, extraNodeArgs?: readonly string[]): Promise<Running>
}

const DOMAIN = 'bench.test'
/** dpkg-query's format for the version field (a literal `${Version}`, not a template). */
const DPKG_VERSION = '$' + '{Version}'

/** Spawns a server, waits for a 220 on its port, and returns a handle that stops it (SIGTERM, then SIGKILL). */
export async function launch(
  cmd: string,
  args: readonly string[],
  port: number,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; stopSignal?: NodeJS.Signals; startMs?: number } = {},
): Promise<Running> {
  const child: ChildProcess = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group, so stop() reaches forked workers too
  })
  let out = ''
  const keep = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  const deadline = Date.now() + (opts.startMs ?? 30_000)
  for (;;) {
    if (exited) throw new Error(`${cmd} exited at start: ${out.trim().slice(-1500)}`)
    try {
      const r = await openSession(port, '127.0.0.1', 2000)
      r.detach()
      r.socket.end('QUIT\r\n')
      break
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`${cmd} did not greet on port ${port}: ${out.trim().slice(-1500)}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  const pid = child.pid as number
  return {
    pid,
    port,
    tail: () => out,
    alive: () => !exited,
    async stop() {
      if (exited) return
      const signalGroup = (s: NodeJS.Signals) => {
        try {
          process.kill(-pid, s)
        } catch {
          child.kill(s)
        }
      }
      signalGroup(opts.stopSignal ?? 'SIGTERM')
      const killer = setTimeout(() => signalGroup('SIGKILL'), 8000)
      await exit
      clearTimeout(killer)
      // Reap leftovers of the group (prefork children) quietly.
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {}
    },
  }
}

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)

// ---------------------------------------------------------------- qtsmtpd

/** Fallback plugins for a tree that does not have them yet: same names, minimal behaviour. */
export function writeFallbackPlugins(ctx: BenchContext, dir: string, missing: readonly string[]): void {
  const host = (f: string) => pathToFileURL(join(ctx.repo, 'src/host', f)).href
  if (missing.includes('queue/discard')) {
    mkdirSync(join(dir, 'queue'), { recursive: true })
    write(
      join(dir, 'queue/discard.ts'),
      `// bench fallback: accept and drop (src/plugins/queue/discard.ts was missing).
import { definePlugin } from '${host('define-plugin.ts')}'
import { accept } from '${host('verdict.ts')}'
export default definePlugin({
  name: 'queue/discard',
  options: {},
  setup() {
    return { hooks: { queue: () => accept({ text: 'Queued (discarded)' }) } }
  },
})`,
    )
  }
  if (missing.includes('rcpt_ok')) {
    write(
      join(dir, 'rcpt_ok.ts'),
      `// bench fallback: accept recipients at ${DOMAIN} (rcpt_ok was not registered).
import { definePlugin } from '${host('define-plugin.ts')}'
import { accept, reject } from '${host('verdict.ts')}'
export default definePlugin({
  name: 'rcpt_ok',
  options: {},
  setup() {
    return {
      hooks: {
        rcpt: (_ctx, to) =>
          to.address.domain?.toLowerCase() === '${DOMAIN}'
            ? accept()
            : reject({ code: 550, enhanced: '5.7.1', text: 'Relaying denied' }),
      },
    }
  },
})`,
    )
  }
}

function qtsmtpdHelp(ctx: BenchContext): string {
  return execFileSync(process.execPath, [join(ctx.repo, 'bin/qtsmtpd'), '--help'], { encoding: 'utf8' })
}

/** What `qtsmtpd --check` says about a config directory ('' when it is fine). */
export function qtsmtpdCheck(ctx: BenchContext, config: string): string {
  try {
    execFileSync(process.execPath, [join(ctx.repo, 'bin/qtsmtpd'), '--config', config, '--check'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return ''
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e)
  }
}

/** Generates the config dir for a queue backend; returns it. Uses fallback plugins only when needed. */
function qtsmtpdConfig(ctx: BenchContext, queue: 'discard' | 'maildir'): string {
  const base = join(ctx.work, 'qtsmtpd', queue)
  const config = join(base, 'config')
  rmSync(base, { recursive: true, force: true })
  mkdirSync(config, { recursive: true })
  const fallback = join(ctx.work, 'qtsmtpd', 'fallback-plugins')
  const queueLine = queue === 'discard' ? 'queue/discard' : `queue/maildir ${join(base, 'Maildir')}`
  write(join(config, 'me'), `mx.${DOMAIN}`)
  write(join(config, 'rcpthosts'), DOMAIN)
  write(join(config, 'loglevel'), '2')
  write(join(config, 'spool_dir'), join(base, 'spool'))
  write(
    join(config, 'smtpd.conf'),
    [
      'junk_command_limit 10000000',
      'messages_per_session 10000000',
      'commands_per_session 100000000',
      'message_size_limit 52428800',
    ].join('\n'),
  )
  write(join(config, 'plugins'), [`tls ${ctx.tls.cert} ${ctx.tls.key}`, 'rcpt_ok', queueLine].join('\n'))
  const check = () => qtsmtpdCheck(ctx, config)
  let problem = check()
  const missing = ['queue/discard', 'rcpt_ok'].filter((n) => problem.includes(`unknown plugin "${n}"`))
  if (missing.length > 0) {
    ctx.log(`qtsmtpd: built-in ${missing.join(', ')} missing; using bench fallback plugin(s)`)
    writeFallbackPlugins(ctx, fallback, missing)
    write(join(config, 'plugin_dirs'), fallback)
    problem = check()
  }
  if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
  return config
}

function qtsmtpd(
  id: string,
  label: string,
  opts: { workers?: number; queue: 'discard' | 'maildir'; admin?: boolean },
): Contender {
  let config = ''
  return {
    id,
    label,
    tls: true,
    ...(opts.queue === 'maildir' ? { only: ['c20', 'ka20', 'k100'] } : {}),
    async install(ctx) {
      config = qtsmtpdConfig(ctx, opts.queue)
      const v = execFileSync(process.execPath, [join(ctx.repo, 'bin/qtsmtpd'), '--version'], { encoding: 'utf8' })
      let rev = ''
      try {
        rev = execFileSync('git', ['-C', ctx.repo, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
      } catch {}
      return `${v.trim()}${rev ? ` (${rev})` : ''}, Node ${process.version}`
    },
    start(ctx, port, extraNodeArgs = []) {
      const args = [
        ...extraNodeArgs,
        join(ctx.repo, 'bin/qtsmtpd'),
        '--config',
        config,
        '--listen',
        `127.0.0.1:${port}`,
        '--max-connections',
        '0',
        '--max-connections-per-ip',
        '0',
        ...(opts.workers === undefined ? [] : ['--workers', String(opts.workers)]),
      ]
      if (opts.admin !== true) return launch(process.execPath, args, port, { cwd: ctx.repo })
      return withScraper(args, port, ctx)
    },
  }
}

/**
 * qtsmtpd with `--admin` and a Prometheus-like scraper that reads /metrics every second while
 * it runs (Prometheus' default is every 15 s: this is the pessimistic case), so the measured
 * cost is the listener's and the scrapes' on top of the counting every qtsmtpd does.
 */
async function withScraper(args: string[], port: number, ctx: BenchContext): Promise<Running> {
  const admin = await new Promise<number>((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port
      s.close(() => resolve(p))
    })
  })
  const running = await launch(process.execPath, [...args, '--admin', `127.0.0.1:${admin}`], port, { cwd: ctx.repo })
  const timer = setInterval(() => {
    get(`http://127.0.0.1:${admin}/metrics`, (res) => res.resume()).on('error', () => {})
  }, 1000)
  return {
    ...running,
    tail: () => running.tail(),
    alive: () => running.alive(),
    stop: async () => {
      clearInterval(timer)
      await running.stop()
    },
  }
}

/** qtsmtpd with --admin and a scraper (one process, and --workers): what the metrics endpoint costs. */
export function qtsmtpdAdminContenders(ctx: BenchContext): Contender[] {
  return [
    qtsmtpd('qtsmtpd-admin', 'qtsmtpd --admin, scraped every 1 s (1 process)', { queue: 'discard', admin: true }),
    qtsmtpd('qtsmtpd-admin-n', `qtsmtpd --admin, scraped every 1 s (${ctx.cores} workers)`, {
      workers: ctx.cores,
      queue: 'discard',
      admin: true,
    }),
  ]
}

export function qtsmtpdContenders(ctx: BenchContext): Contender[] {
  const hasWorkers = /--workers\b/.test(qtsmtpdHelp(ctx))
  const list = [qtsmtpd('qtsmtpd', 'qtsmtpd (1 process)', { queue: 'discard' })]
  if (hasWorkers)
    list.push(qtsmtpd('qtsmtpd-n', `qtsmtpd (${ctx.cores} workers)`, { workers: ctx.cores, queue: 'discard' }))
  else ctx.log('qtsmtpd: no --workers option in --help yet; measuring one process only')
  list.push(qtsmtpd('qtsmtpd-maildir', 'qtsmtpd Maildir (1 process)', { queue: 'maildir' }))
  return list
}

// ---------------------------------------------------------------- Haraka

/** A Haraka instance; the default is the plain one (rcpt_to.in_host_list, queue/discard, TLS). */
export interface HarakaVariant {
  readonly id: string
  readonly label: string
  readonly instance: string
  readonly only?: readonly string[]
  /** Replaces config/plugins. */
  readonly plugins?: readonly string[]
  /** More files under the instance directory, by relative path. */
  readonly files?: () => Readonly<Record<string, string>>
  readonly env?: () => Readonly<Record<string, string>>
}

export function haraka(variant: HarakaVariant = { id: 'haraka', label: 'Haraka', instance: 'instance' }): Contender {
  let root = ''
  let bin = ''
  return {
    id: variant.id,
    label: variant.label,
    tls: variant.plugins === undefined,
    ...(variant.only === undefined ? {} : { only: variant.only }),
    async install(ctx) {
      const dir = join(ctx.work, 'haraka')
      const pkg = join(dir, 'node_modules/Haraka/package.json')
      if (!existsSync(pkg)) {
        mkdirSync(dir, { recursive: true })
        write(join(dir, 'package.json'), JSON.stringify({ name: 'bench-haraka', private: true }))
        ctx.log('haraka: npm install Haraka@3 (into .bench-work/haraka)')
        execFileSync(
          'npm',
          ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error', 'Haraka@3'],
          {
            cwd: dir,
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: 300_000,
          },
        )
      }
      bin = join(dir, 'node_modules/Haraka/bin/haraka')
      root = join(dir, variant.instance)
      rmSync(root, { recursive: true, force: true })
      // As `haraka -i` does: start from the package's default config files, then set ours.
      cpSync(join(dir, 'node_modules/Haraka/config'), join(root, 'config'), { recursive: true })
      mkdirSync(join(root, 'plugins'), { recursive: true })
      // Haraka looks up the client's PTR in core unless a lookup_rdns hook answers: answer locally.
      write(
        join(root, 'plugins/bench_no_rdns.js'),
        `// bench: no DNS (loopback only); same as qtsmtpd, which does no reverse lookup by itself
exports.hook_lookup_rdns = function (next) { next(OK, 'localhost') }`,
      )
      write(join(root, 'config/plugins'), ['bench_no_rdns', 'tls', 'rcpt_to.in_host_list', 'queue/discard'].join('\n'))
      write(join(root, 'config/host_list'), DOMAIN)
      write(join(root, 'config/me'), `mx.${DOMAIN}`)
      write(join(root, 'config/log.ini'), '[main]\nlevel=warn\n')
      write(join(root, 'config/loglevel'), 'WARN')
      cpSync(ctx.tls.key, join(root, 'config/tls_key.pem'))
      cpSync(ctx.tls.cert, join(root, 'config/tls_cert.pem'))
      write(join(root, 'config/tls.ini'), '[main]\n')
      if (variant.plugins !== undefined) write(join(root, 'config/plugins'), variant.plugins.join('\n'))
      for (const [file, text] of Object.entries(variant.files?.() ?? {})) write(join(root, file), text)
      const v = JSON.parse(readFileSync(pkg, 'utf8')) as { version: string }
      return `Haraka ${v.version}, Node ${process.version}`
    },
    start(ctx, port) {
      write(join(root, 'config/smtp.ini'), `listen=127.0.0.1:${port}\nnodes=${ctx.cores}\n`)
      return launch(process.execPath, [bin, '-c', root], port, {
        cwd: root,
        env: { YES_REALLY_DO_DISCARD: '1', ...variant.env?.() },
        startMs: ctx.quick ? 20_000 : 60_000,
      })
    },
  }
}

// ---------------------------------------------------------------- qpsmtpd

const QPSMTPD_DISCARD = `# bench: queue to nowhere (qpsmtpd has no queue/discard)
sub hook_queue {
    my ($self, $transaction) = @_;
    return (OK, "Queued (discarded)");
}
`

/** Runs qpsmtpd-prefork with its PTR lookup (Net::DNS, not /etc/hosts) turned off, as tcpserver -H would. */
const QPSMTPD_WRAPPER = `
use Qpsmtpd::TcpServer;
no warnings 'redefine';
my $orig = \\&Qpsmtpd::TcpServer::tcpenv;
*Qpsmtpd::TcpServer::tcpenv = sub { $orig->($_[0], $_[1], 1) };
$0 = '/usr/bin/qpsmtpd-prefork';
do '/usr/bin/qpsmtpd-prefork';
die $@ if $@;
`

export function qpsmtpd(): Contender {
  let dir = ''
  return {
    id: 'qpsmtpd',
    label: 'qpsmtpd (prefork)',
    tls: true,
    async install(ctx) {
      if (!existsSync('/usr/bin/qpsmtpd-prefork')) {
        if (process.getuid?.() !== 0) throw new Error('qpsmtpd is not installed and we are not root to apt-get it')
        ctx.log('qpsmtpd: apt-get install -y qpsmtpd')
        const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
        try {
          execFileSync('apt-get', ['install', '-y', '-qq', 'qpsmtpd'], { env, stdio: 'ignore', timeout: 300_000 })
        } catch {
          execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 300_000 })
          execFileSync('apt-get', ['install', '-y', '-qq', 'qpsmtpd'], { env, stdio: 'ignore', timeout: 300_000 })
        }
      }
      dir = join(ctx.work, 'qpsmtpd')
      rmSync(dir, { recursive: true, force: true })
      const config = join(dir, 'config')
      const plugins = join(dir, 'plugins')
      const spool = join(dir, 'spool')
      mkdirSync(config, { recursive: true })
      mkdirSync(plugins, { recursive: true })
      mkdirSync(spool, { recursive: true })
      write(join(plugins, 'bench_discard'), QPSMTPD_DISCARD)
      write(join(config, 'plugin_dirs'), `${plugins}\n/usr/share/qpsmtpd/plugins`)
      const key = join(dir, 'tls.key')
      cpSync(ctx.tls.key, key)
      write(
        join(config, 'plugins'),
        [`tls ${ctx.tls.cert} ${key} ${ctx.tls.cert}`, 'rcpt_ok', 'bench_discard'].join('\n'),
      )
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), spool)
      // Same as qtsmtpd: bodies up to 256 KiB stay in memory.
      write(join(config, 'size_threshold'), '262144')
      write(join(config, 'databytes'), '52428800')
      write(join(config, 'wrapper.pl'), QPSMTPD_WRAPPER)
      // Runs as the qpsmtpd user: it must read the config and own the spool (mode 0700).
      execFileSync('chown', ['-R', 'qpsmtpd:', dir])
      chmodSync(spool, 0o700)
      const v = execFileSync('dpkg-query', ['-W', '-f', DPKG_VERSION, 'qpsmtpd'], { encoding: 'utf8' })
      return `qpsmtpd ${v} (Debian), perl ${execFileSync('perl', ['-e', 'print $^V'], { encoding: 'utf8' })}`
    },
    start(ctx, port) {
      const args = [
        join(dir, 'config/wrapper.pl'),
        '--listen-address',
        '127.0.0.1',
        '--port',
        String(port),
        '--max-from-ip',
        '0',
        '--children',
        ctx.quick ? '8' : '64',
        '--idle-children',
        ctx.quick ? '2' : '16',
        '--renice-parent',
        '0',
        '--user',
        'qpsmtpd',
      ]
      return launch('perl', args, port, { cwd: dir, env: { QPSMTPD_CONFIG: join(dir, 'config') } })
    },
  }
}

// ---------------------------------------------------------------- smtp-sink

export function smtpSink(): Contender {
  return {
    id: 'sink',
    label: 'smtp-sink (ceiling)',
    tls: false,
    async install() {
      if (!existsSync('/usr/sbin/smtp-sink')) throw new Error('/usr/sbin/smtp-sink missing (Debian package postfix)')
      const v = execFileSync('dpkg-query', ['-W', '-f', DPKG_VERSION, 'postfix'], { encoding: 'utf8' })
      return `Postfix ${v}`
    },
    start(_ctx, port) {
      return launch('/usr/sbin/smtp-sink', ['-u', 'nobody', '-m', '20000', `127.0.0.1:${port}`, '4096'], port)
    },
  }
}
