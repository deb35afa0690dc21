/**
 * Runs programs that ask the system resolver (dkimpy's dkimverify and arcverify, OpenDKIM's
 * opendkim-testmsg: /etc/resolv.conf, port 53) against a private unbound with the test's
 * records, inside a user, network and mount namespace (`unshare -rnm`). There unbound listens
 * on 127.0.0.1:53 and /etc/resolv.conf is bind-mounted over with one pointing at it; nothing
 * outside the namespace sees either, and the namespace has no network but its loopback.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type UnboundOptions, unboundConf } from './unbound.ts'

export interface ToolRun {
  readonly argv: readonly string[]
  readonly stdin: string | Buffer
}

export interface ToolResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Whether this machine lets an unprivileged process make the namespaces (some containers do not). */
export function namespacesAvailable(): boolean {
  return spawnSync('unshare', ['-rnm', 'true']).status === 0
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

/** Runs each program in turn with its stdin; all of them see the same DNS data. */
export async function runWithLoopbackDns(dns: UnboundOptions, runs: readonly ToolRun[]): Promise<ToolResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dnsns-'))
  try {
    await writeFile(
      join(dir, 'unbound.conf'),
      `${unboundConf(dns, { port: 53, dir, logFile: join(dir, 'unbound.log') })}\n`,
    )
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:2 attempts:1\n')
    const lines = [
      'set -u',
      'ip link set lo up',
      `mount --bind ${quote(join(dir, 'resolv.conf'))} /etc/resolv.conf`,
      `/usr/sbin/unbound -d -c ${quote(join(dir, 'unbound.conf'))} &`,
      'unbound=$!',
      // unbound answers once it has bound its port; ask until it does (at most 5 s).
      'i=0; until /usr/bin/python3 -c "import socket; socket.create_connection((\'127.0.0.1\', 53), 1)" 2>/dev/null; do',
      '  i=$((i + 1)); [ $i -ge 50 ] && { echo "unbound did not start" >&2; kill $unbound; exit 97; }; sleep 0.1',
      'done',
    ]
    for (const [i, run] of runs.entries()) {
      await writeFile(join(dir, `in.${i}`), run.stdin)
      const io = (name: string) => quote(join(dir, `${name}.${i}`))
      lines.push(`${run.argv.map(quote).join(' ')} < ${io('in')} > ${io('out')} 2> ${io('err')}; echo $? > ${io('rc')}`)
    }
    lines.push('kill $unbound; wait $unbound 2>/dev/null; exit 0')
    await writeFile(join(dir, 'run.sh'), `${lines.join('\n')}\n`)
    await promisify(execFile)('unshare', ['-rnm', '/bin/sh', join(dir, 'run.sh')], { timeout: 120_000 })
    const text = (name: string) => readFile(join(dir, name), 'utf8').catch(() => '')
    return await Promise.all(
      runs.map(async (_, i) => ({
        code: Number((await text(`rc.${i}`)).trim() || '-1'),
        stdout: await text(`out.${i}`),
        stderr: await text(`err.${i}`),
      })),
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
