/**
 * Process-tree accounting from /proc: CPU ticks (own and reaped children) and resident memory of
 * a server and everything it forked (Haraka's cluster workers, qpsmtpd's prefork children).
 */
import { readdirSync, readFileSync } from 'node:fs'

/** USER_HZ: the unit of /proc/<pid>/stat times; 100 on every Linux we run on. */
export const CLK_TCK = 100

interface StatLine {
  readonly pid: number
  readonly ppid: number
  /** utime + stime + cutime + cstime, in ticks. */
  readonly ticks: number
}

function readStat(pid: number): StatLine | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch {
    return undefined
  }
  // The command name is in parentheses and may contain spaces: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const n = (i: number) => Number(rest[i] ?? 0)
  // Fields after ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
  return { pid, ppid: n(1), ticks: n(11) + n(12) + n(13) + n(14) }
}

/** The pid and all its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (!s) continue
    const list = children.get(s.ppid) ?? []
    list.push(s.pid)
    children.set(s.ppid, list)
  }
  const out: number[] = []
  const todo = [root]
  while (todo.length > 0 && out.length < 10_000) {
    const p = todo.pop() as number
    out.push(p)
    todo.push(...(children.get(p) ?? []))
  }
  return out
}

/** CPU ticks used so far by the tree (children that exited are in their parent's cutime). */
export function treeTicks(root: number): number {
  let sum = 0
  for (const pid of processTree(root)) sum += readStat(pid)?.ticks ?? 0
  return sum
}

/** VmRSS of one process in KiB, or 0 when it is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** Sum of VmRSS over the tree, in KiB (shared pages of forked children are counted in each). */
export function treeRssKiB(root: number): number {
  let sum = 0
  for (const pid of processTree(root)) sum += rssKiB(pid)
  return sum
}

/** Samples tree RSS every `everyMs` until stopped; reports the peak. */
export function sampleRss(root: number, everyMs = 250): { stop(): number } {
  let peak = treeRssKiB(root)
  const t = setInterval(() => {
    peak = Math.max(peak, treeRssKiB(root))
  }, everyMs)
  return {
    stop() {
      clearInterval(t)
      return Math.max(peak, treeRssKiB(root))
    },
  }
}
