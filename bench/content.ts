/**
 * The content-filter workload's contenders: qtsmtpd with virus/clamdscan and spamassassin (which
 * scan side by side), and Haraka with its clamd and spamassassin plugins, both asking the same
 * clamd and spamd, started once for the run on loopback (test/peers/clamd.ts, spamd.ts: clamd
 * on a signature database of our own, spamd --local with 2 children), over their Unix sockets.
 * The daemons' process trees are measured beside each server's, for the CPU split.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Clamd, startClamd } from '../test/peers/clamd.ts'
import { type Spamd, startSpamd } from '../test/peers/spamd.ts'
import { type BenchContext, type Contender, haraka, launch, qtsmtpdCheck } from './contenders.ts'

const DOMAIN = 'bench.test'

let daemons: Promise<{ clamd: Clamd; spamd: Spamd }> | undefined

/** clamd and spamd of a bench run, started on first use. */
export function contentDaemons(): Promise<{ clamd: Clamd; spamd: Spamd }> {
  daemons ??= Promise.all([startClamd(), startSpamd()]).then(([clamd, spamd]) => ({ clamd, spamd }))
  return daemons
}

/** The daemons' main pids (their trees hold the workers), for the CPU split. */
export async function contentDaemonPids(): Promise<readonly number[]> {
  const d = await contentDaemons()
  return [d.clamd.pid, d.spamd.pid].filter((p): p is number => p !== undefined)
}

export async function stopContentDaemons(): Promise<void> {
  const d = daemons
  daemons = undefined
  const running = await d
  await Promise.all([running?.clamd.close(), running?.spamd.close()])
}

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)

export function qtsmtpdContent(): Contender {
  let config = ''
  return {
    id: 'qtsmtpd-content',
    label: 'qtsmtpd + clamdscan, spamassassin (1 process)',
    tls: false,
    only: ['content'],
    async install(ctx) {
      const { clamd, spamd } = await contentDaemons()
      const base = join(ctx.work, 'qtsmtpd', 'content')
      config = join(base, 'config')
      rmSync(base, { recursive: true, force: true })
      mkdirSync(config, { recursive: true })
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), join(base, 'spool'))
      write(
        join(config, 'smtpd.conf'),
        ['junk_command_limit 10000000', 'messages_per_session 10000000', 'commands_per_session 100000000'].join('\n'),
      )
      write(
        join(config, 'plugins'),
        [
          'rcpt_ok',
          `virus/clamdscan clamd_socket ${clamd.socket}`,
          `spamassassin spamd_socket ${spamd.socket} reject 20`,
          'queue/discard',
        ].join('\n'),
      )
      const problem = qtsmtpdCheck(ctx, config)
      if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
      return 'the qtsmtpd above, with virus/clamdscan and spamassassin'
    },
    start(ctx, port) {
      const args = [
        join(ctx.repo, 'bin/qtsmtpd'),
        '--config',
        config,
        '--listen',
        `127.0.0.1:${port}`,
        '--max-connections',
        '0',
        '--max-connections-per-ip',
        '0',
      ]
      return launch(process.execPath, args, port, { cwd: ctx.repo })
    },
  }
}

export function harakaContent(): Contender {
  let clamdSocket = ''
  let spamdSocket = ''
  const contender = haraka({
    id: 'haraka-content',
    label: 'Haraka + clamd, spamassassin',
    instance: 'instance-content',
    only: ['content'],
    plugins: ['bench_no_rdns', 'rcpt_to.in_host_list', 'clamd', 'spamassassin', 'queue/discard'],
    files: () => ({
      'config/clamd.ini': `[main]\nclamd_socket=${clamdSocket}\nmax_size=1048576\n`,
      'config/spamassassin.ini': `[main]\nspamd_socket=${spamdSocket}\nmax_size=500000\nreject_threshold=20\n`,
    }),
  })
  return {
    ...contender,
    async install(ctx: BenchContext) {
      const { clamd, spamd } = await contentDaemons()
      clamdSocket = clamd.socket
      spamdSocket = spamd.socket
      return contender.install(ctx)
    },
  }
}
