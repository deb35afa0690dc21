/**
 * Resident memory of an idle server right after its start: qtsmtpd with the shipped
 * config.sample (one process, and one worker per core), the bench's qtsmtpd, and Haraka as
 * the bench runs it (nodes = cores). Each is started fresh, greeted once (how launch() knows
 * it is up), left alone for SETTLE_MS, then the whole process tree's VmRSS is summed.
 */
import { cpSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { type BenchContext, type Contender, launch, type Running } from './contenders.ts'
import { processTree, treeRssKiB } from './proc.ts'

/** How long a server idles after its greeting before its RSS is read. */
export const SETTLE_MS = 3000

export interface StartupResult {
  readonly contender: string
  readonly label: string
  readonly processes: number
  readonly rssKiB: number
}

interface Starter {
  readonly id: string
  readonly label: string
  start(port: number): Promise<Running>
}

/** qtsmtpd on a copy of config.sample (its relative spool and Maildir land in the copy). */
function sampleQtsmtpd(ctx: BenchContext, workers: number | undefined): Starter {
  const dir = join(ctx.work, 'startup', workers === undefined ? 'sample' : `sample-${workers}`)
  return {
    id: workers === undefined ? 'qtsmtpd-sample' : 'qtsmtpd-sample-n',
    label: workers === undefined ? 'qtsmtpd, config.sample (1 process)' : `qtsmtpd, config.sample (${workers} workers)`,
    start(port) {
      rmSync(dir, { recursive: true, force: true })
      mkdirSync(dir, { recursive: true })
      cpSync(join(ctx.repo, 'config.sample'), join(dir, 'config'), { recursive: true })
      const args = [join(ctx.repo, 'bin/qtsmtpd'), '--config', 'config', '--listen', `127.0.0.1:${port}`]
      if (workers !== undefined) args.push('--workers', String(workers))
      return launch(process.execPath, args, port, { cwd: dir })
    },
  }
}

/** Starts each server in turn on its own fresh port and reads its tree's RSS once it idles. */
export async function measureStartup(
  ctx: BenchContext,
  contenders: readonly Contender[],
  freePort: () => Promise<number>,
): Promise<StartupResult[]> {
  const starters: Starter[] = [sampleQtsmtpd(ctx, undefined), sampleQtsmtpd(ctx, ctx.cores)]
  for (const c of contenders)
    if (c.id === 'qtsmtpd' || c.id === 'qtsmtpd-n' || c.id === 'haraka')
      starters.push({ id: c.id, label: c.label, start: (port) => c.start(ctx, port) })
  const out: StartupResult[] = []
  for (const s of starters) {
    let r: Running | undefined
    try {
      r = await s.start(await freePort())
      await new Promise((res) => setTimeout(res, SETTLE_MS))
      const rssKiB = treeRssKiB(r.pid)
      const processes = processTree(r.pid).length
      out.push({ contender: s.id, label: s.label, processes, rssKiB })
      ctx.log(`startup ${s.id}: ${(rssKiB / 1024).toFixed(1)} MiB RSS in ${processes} process(es)`)
    } catch (e) {
      ctx.log(`startup ${s.id}: ${(e as Error).message}`)
    } finally {
      await r?.stop()
    }
  }
  return out
}
