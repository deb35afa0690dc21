/**
 * Durability of every queue backend: qtsmtpd runs as a child process (bin/qtsmtpd), several
 * clients send a bounded stream of messages, the server is killed with SIGKILL in the middle of
 * the stream, and every message a client saw a 250 for must be at the next hop, byte-exact in
 * its body, found by its unique Message-ID. Messages without a 250 may or may not be there
 * (at-least-once). Backends: maildir, qmail-queue (stand-in), postfix-queue (real Postfix),
 * exim-bsmtp (real Exim), smtp-forward (aiosmtpd) and lmtp (Dovecot).
 * To add a backend: one entry in `backends` returning its plugins line and how to read arrivals.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, describe, it } from 'node:test'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { startSink } from '../peers/aiosmtpd.ts'
import { startDovecot } from '../peers/dovecot.ts'
import { startExim } from '../peers/exim-peer.ts'
import { freePort, waitForPort } from '../peers/free-port.ts'
import { startPostfix } from '../peers/postfix.ts'

const root = resolve(import.meta.dirname, '../..')
const TOTAL = 200
const CLIENTS = 5
const KILL_AFTER = 60

interface Started {
  /** The queue plugin's line in config/plugins. */
  readonly plugin: string
  readonly rcpt: string
  readonly env?: Readonly<Record<string, string>>
  /** Every message that reached the next hop (whole text). */
  arrived(): Promise<string[]>
  stop(): Promise<void>
}

async function readAll(dirs: readonly string[], suffix = ''): Promise<string[]> {
  const out: string[] = []
  for (const d of dirs)
    for (const f of (await readdir(d).catch(() => [] as string[])).filter((n) => n.endsWith(suffix)).sort())
      out.push(await readFile(join(d, f), 'utf8').catch(() => ''))
  return out
}

const backends: Record<string, () => Promise<Started>> = {
  'queue/maildir': async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dur-maildir-'))
    return {
      plugin: `queue/maildir ${dir}`,
      rcpt: 'u@example.test',
      arrived: () => readAll([join(dir, 'new')]),
      stop: () => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }),
    }
  },
  'queue/qmail-queue': async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dur-qq-'))
    return {
      plugin: `queue/qmail-queue ${join(root, 'test/fixtures/qmail-queue-standin')}`,
      rcpt: 'u@example.test',
      env: { QQ_OUTDIR: dir },
      arrived: () => readAll([dir], '.msg'),
      stop: () => rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }),
    }
  },
  'queue/postfix-queue': async () => {
    const pf = await startPostfix({ maildir: 'catch-all' })
    return {
      plugin: `queue/postfix-queue ${pf.cleanupSocket} FLAG_MASK_EXTERNAL`,
      rcpt: 'u@example.test',
      arrived: async () => pf.messages().map((b) => b.toString('utf8')),
      stop: () => pf.stop(),
    }
  },
  'queue/exim-bsmtp': async () => {
    const exim = startExim()
    return {
      plugin: `queue/exim-bsmtp exim_path ${exim.bin} exim_args "${exim.args.join(' ')}"`,
      rcpt: 'u@example.test',
      arrived: async () => exim.messages().map((b) => b.toString('utf8')),
      stop: async () => exim.close(),
    }
  },
  'queue/smtp-forward': async () => {
    const sink = await startSink()
    return {
      plugin: `queue/smtp-forward 127.0.0.1 ${sink.port}`,
      rcpt: 'u@example.test',
      arrived: async () => (await sink.messages()).map((m) => m.data.toString('utf8')),
      stop: () => sink.stop(),
    }
  },
  'queue/lmtp': async () => {
    const dovecot = await startDovecot()
    return {
      plugin: `queue/lmtp 127.0.0.1 ${dovecot.port}`,
      rcpt: 'alice@example.test',
      arrived: () => dovecot.mailbox('alice'),
      stop: () => dovecot.stop(),
    }
  },
}

function messageFor(name: string, i: number): { id: string; body: string; wire: string } {
  const id = `<dur-${name.replace(/\W/g, '-')}-${i}-${process.pid}@client.test>`
  const digest = createHash('sha256').update(id).digest('hex')
  // Some lines start with a dot, so dot-stuffing on both sides is checked too.
  const lines = Array.from({ length: 1 + (i % 7) * 40 }, (_, k) => `${k % 5 === 0 ? '.' : ''}${k} ${digest}`)
  const body = `${lines.join('\n')}\nend ${i}\n`
  const wire = `Message-ID: ${id}\r\nSubject: durability ${i}\r\n\r\n${lines
    .map((l) => (l.startsWith('.') ? `.${l}` : l))
    .join('\r\n')}\r\nend ${i}\r\n`
  return { id, body, wire }
}

async function startServer(configDir: string, port: number, env: Readonly<Record<string, string>>) {
  const child = spawn(
    process.execPath,
    [join(root, 'bin/qtsmtpd'), '--config', configDir, '--listen', `127.0.0.1:${port}`],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  )
  let stderr = ''
  child.stderr?.on('data', (d) => {
    if (stderr.length < 20_000) stderr += String(d)
  })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  await Promise.race([
    waitForPort(port, 20_000),
    exited.then(() => {
      throw new Error(`qtsmtpd exited at start: ${stderr}`)
    }),
  ])
  return { child, exited, stderr: () => stderr }
}

/** One client: sends messages from the shared counter until it runs out or the server dies. */
async function client(
  port: number,
  rcpt: string,
  name: string,
  next: () => number | undefined,
  acked: Map<string, string>,
  onAck: () => void,
) {
  let c: SmtpTestClient | undefined
  try {
    c = await SmtpTestClient.connect(port)
    await c.expect(220, 10_000)
    await c.send('EHLO client.test', 250, 10_000)
    for (let i = next(); i !== undefined; i = next()) {
      const m = messageFor(name, i)
      await c.send('MAIL FROM:<sender@client.test>', 250, 10_000)
      await c.send(`RCPT TO:<${rcpt}>`, 250, 10_000)
      await c.send('DATA', 354, 10_000)
      c.write(`${m.wire}.\r\n`)
      const r = await c.reply(60_000)
      if (r.code === 250) {
        acked.set(m.id, m.body)
        onAck()
      } else if (r.code >= 500) throw new Error(`permanent refusal: ${r.raw}`)
    }
  } catch (e) {
    // After the kill, every client ends here; a 5xx before it is a real failure.
    if (String(e).includes('permanent refusal')) throw e
  } finally {
    c?.destroy()
  }
}

const live: ChildProcess[] = []
after(() => {
  for (const c of live) if (c.exitCode === null) c.kill('SIGKILL')
})

describe('queue durability: SIGKILL mid-stream loses no acknowledged message', () => {
  for (const [name, make] of Object.entries(backends)) {
    it(name, { timeout: 240_000 }, async (t) => {
      const backend = await make()
      const configDir = await mkdtemp(join(tmpdir(), 'dur-config-'))
      try {
        await chmod(configDir, 0o755)
        await mkdir(join(configDir, 'spool'))
        await writeFile(join(configDir, 'me'), 'mx.test\n')
        await writeFile(join(configDir, 'rcpthosts'), 'example.test\n')
        await writeFile(join(configDir, 'spool_dir'), `${join(configDir, 'spool')}\n`)
        await writeFile(join(configDir, 'plugins'), `rcpt_ok\n${backend.plugin}\n`)
        const port = await freePort()
        const server = await startServer(configDir, port, backend.env ?? {})
        live.push(server.child)

        const acked = new Map<string, string>()
        let issued = 0
        let killed = false
        const next = () => (killed || issued >= TOTAL ? undefined : issued++)
        const onAck = () => {
          if (!killed && acked.size >= KILL_AFTER) {
            killed = true
            server.child.kill('SIGKILL')
          }
        }
        await Promise.all(Array.from({ length: CLIENTS }, () => client(port, backend.rcpt, name, next, acked, onAck)))
        if (!killed) server.child.kill('SIGKILL')
        await server.exited
        assert.ok(acked.size >= KILL_AFTER, `only ${acked.size} acknowledged; server said: ${server.stderr()}`)

        // Next hops that deliver asynchronously (Postfix) get a bounded time to finish.
        let missing: string[] = []
        const deadline = Date.now() + 60_000
        for (;;) {
          const texts = (await backend.arrived()).map((t) => t.replace(/\r\n/g, '\n'))
          const byId = new Map<string, string>()
          for (const t of texts) {
            const id = /^Message-ID: (<[^>]+>)$/im.exec(t)?.[1]
            if (id !== undefined) byId.set(id, t)
          }
          missing = [...acked.keys()].filter((id) => !byId.get(id)?.endsWith(`\n\n${acked.get(id)}`))
          if (missing.length === 0 || Date.now() > deadline) break
          await new Promise((r) => setTimeout(r, 250))
        }
        assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged messages missing or altered`)
        assert.ok(acked.size < TOTAL, 'the kill came mid-stream')
        t.diagnostic(`${name}: ${issued} sent, ${acked.size} acknowledged before SIGKILL, all of them arrived`)
      } finally {
        await backend.stop()
        await rm(configDir, { recursive: true, force: true })
      }
    })
  }
})
