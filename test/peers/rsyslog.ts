/**
 * A private rsyslogd (Debian's rsyslog) for tests: a Unix socket in a temp dir (imuxsock), UDP
 * and TCP on loopback ports (imudp, imtcp), and every message it parses written to a file, one
 * line of fields each: `input=imudp fac=mail sev=info host=... app=... procid=... msg=...`.
 * `stop()` and `start()` take it away and bring it back on the same socket and ports.
 * Always call `close()`, also when a test fails.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitForPort } from './free-port.ts'

export interface Rsyslog {
  readonly socket: string
  readonly udpPort: number
  readonly tcpPort: number
  /** The parsed messages so far, one line each. */
  received(): Promise<string[]>
  /** Resolves with the received lines once one matches (bounded wait). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string[]>
  start(): Promise<void>
  stop(): Promise<void>
  close(): Promise<void>
}

const fields =
  'input=%inputname% fac=%syslogfacility-text% sev=%syslogseverity-text% host=%hostname% ' +
  'app=%app-name% procid=%procid% msgid=%msgid% sd=%structured-data% msg=%msg%\\n'

export async function startRsyslog(): Promise<Rsyslog> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-rsyslog-'))
  const socket = join(dir, 'log')
  const out = join(dir, 'messages')
  const [udpPort, tcpPort] = [await freePort(), await freePort()]
  const conf = join(dir, 'rsyslog.conf')
  await writeFile(
    conf,
    [
      `global(workDirectory="${dir}")`,
      'module(load="imuxsock" SysSock.Use="off")',
      `input(type="imuxsock" Socket="${socket}" RateLimit.Interval="0")`,
      'module(load="imudp")',
      `input(type="imudp" address="127.0.0.1" port="${udpPort}")`,
      'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${tcpPort}")`,
      `template(name="fields" type="string" string="${fields}")`,
      `*.* action(type="omfile" file="${out}" template="fields")`,
      '',
    ].join('\n'),
  )
  let child: ChildProcess | undefined
  const received = async () => (await readFile(out, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '')

  const start = async () => {
    const c = spawn('/usr/sbin/rsyslogd', ['-n', '-f', conf, '-i', join(dir, 'pid')], { stdio: 'ignore' })
    child = c
    await waitForPort(tcpPort)
    const deadline = Date.now() + 10_000
    while (!existsSync(socket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  }
  const stop = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve())
      c.kill('SIGTERM')
    })
  }
  await start()
  return {
    socket,
    udpPort,
    tcpPort,
    received,
    async waitFor(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const lines = await received()
        if (lines.some((l) => re.test(l))) return lines
        if (Date.now() > deadline) throw new Error(`rsyslog received no line ${re}; got:\n${lines.join('\n')}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    start,
    stop,
    async close() {
      await stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}
