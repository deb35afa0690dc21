/**
 * Shared pieces of the interoperability tests: real client programs (swaks, Python smtplib,
 * Postfix smtp-source) run as child processes with an argument vector and a hard timeout,
 * against a server from startTestServer on 127.0.0.1.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, constants } from 'node:fs'
import { type AddressInfo, connect, createServer, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { definePlugin } from '../../src/host/define-plugin.ts'
import type { AuthCredentials } from '../../src/host/hook-map.ts'
import { accept, reject } from '../../src/host/verdict.ts'

export const clientsDir = join(dirname(fileURLToPath(import.meta.url)), 'clients')

export interface RunResult {
  readonly code: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a program (no shell) and resolves whatever its exit status; kills it after timeoutMs. */
export function runClient(
  file: string,
  args: readonly string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string | Buffer } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: opts.env ?? process.env,
      },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null
        resolve({
          code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
          signal: e?.signal ?? null,
          stdout: String(stdout),
          stderr: String(stderr) + (e !== null && typeof e.code !== 'number' ? `\n${e.message}` : ''),
        })
      },
    )
    if (opts.input !== undefined) child.stdin?.end(opts.input)
    else child.stdin?.end()
  })
}

/** A short description of a failed run for assertion messages. */
export const explain = (r: RunResult): string =>
  `exit ${r.code} signal ${r.signal}\n--- stdout\n${r.stdout.slice(-4000)}\n--- stderr\n${r.stderr.slice(-4000)}`

export function hasProgram(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The reason to skip a test when a client program is missing (Debian package in parentheses). */
export const skipUnless = (path: string, pkg: string): string | false =>
  hasProgram(path) ? false : `${path} is not installed (Debian package ${pkg})`

export const AUTH_USER = 'alice@example.test'
/** ASCII with spaces and punctuation (Python's smtplib encodes credentials as ASCII only). */
export const AUTH_PASSWORD = 'pa55 w0rd:with;odd"chars'
/** A second account with UTF-8 in both name and password (RFC 4616 allows it). */
export const UTF8_USER = 'jürgen@exämple.test'
export const UTF8_PASSWORD = 'pässwörd ✓'

/** Accepts the two test accounts with PLAIN and LOGIN; everything else is 535. */
export const testUsersAuth = definePlugin({
  name: 'auth/test-users',
  description: 'accepts AUTH_USER and UTF8_USER with their passwords (tests only)',
  options: {},
  setup: () => {
    const users = new Map([
      [AUTH_USER, AUTH_PASSWORD],
      [UTF8_USER, UTF8_PASSWORD],
    ])
    const check = async (_ctx: unknown, c: AuthCredentials) =>
      c.password !== undefined && users.get(c.user) === c.password ? accept() : reject()
    return { hooks: { authPlain: check, authLogin: check } }
  },
})

/** The first header field of a stored message, unfolded (the Received field the server added). */
export function firstField(data: Buffer): string {
  const text = data.toString('utf8')
  const m = /^(?:[^\r\n]*\r\n)(?:[ \t][^\r\n]*\r\n)*/.exec(text)
  return (m?.[0] ?? '').replace(/\r\n(?=[ \t])/g, '')
}

/**
 * The stored bytes without the fields the server prepended: its Received field and, for an
 * authenticated session, the Authentication-Results field under it (auth=pass).
 */
export function withoutOwnReceived(data: Buffer): Buffer {
  assertStartsWithReceived(data)
  const rest = data.subarray(Buffer.byteLength(firstFieldRaw(data), 'latin1'))
  if (!rest.subarray(0, 23).equals(Buffer.from('Authentication-Results:'))) return rest
  return rest.subarray(Buffer.byteLength(firstFieldRaw(rest), 'latin1'))
}

function firstFieldRaw(data: Buffer): string {
  const text = data.toString('latin1')
  return /^(?:[^\r\n]*\r\n)(?:[ \t][^\r\n]*\r\n)*/.exec(text)?.[0] ?? ''
}

function assertStartsWithReceived(data: Buffer): void {
  if (!data.subarray(0, 9).equals(Buffer.from('Received:')))
    throw new Error(`stored message does not start with Received: ${JSON.stringify(data.subarray(0, 80).toString())}`)
}

/** The RFC 3848 `with` keyword of the Received field the server added. */
export function receivedWith(data: Buffer): string {
  const m = / with ([A-Z0-9]+)/.exec(firstField(data))
  if (m?.[1] === undefined) throw new Error(`no 'with' in ${firstField(data)}`)
  return m[1]
}

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

export interface RecordingProxy {
  readonly port: number
  /** What clients wrote, one Buffer per TCP read, in order (all connections). */
  readonly fromClient: Buffer[]
  close(): Promise<void>
}

/**
 * A loopback TCP relay in front of the server that records what the client writes, to see how a
 * client groups its commands (PIPELINING) and which parameters it sends. Plaintext only.
 */
export async function startRecordingProxy(targetPort: number): Promise<RecordingProxy> {
  const fromClient: Buffer[] = []
  const sockets = new Set<Socket>()
  // Half-open both ways: a client may shut down its sending side after a pipelined QUIT (Exim
  // does) and still read the replies.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true })
    sockets.add(client).add(upstream)
    client.on('data', (b: Buffer) => fromClient.push(Buffer.from(b)))
    // pipe() ends the other side once everything read was written: no reply is cut off.
    client.pipe(upstream)
    upstream.pipe(client)
    const fail = () => {
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) {
      s.on('error', fail)
      s.on('close', () => sockets.delete(s))
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    port,
    fromClient,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
