/**
 * Helpers for the authentication backends' tests: a server whose config/plugins line loads the
 * backend by its qpsmtpd name and arguments, an AUTH over STARTTLS in one call (its reply and
 * what the session then may do), and a peer that accepts connections and never answers.
 * Test-only.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer, type TestServer, type TestServerOptions } from '../../testing/index.ts'
import { acceptRcpt } from '../test-support.ts'

export const AUTH_OK = '235 2.7.0 Authentication successful\r\n'
export const AUTH_FAILED = '535 5.7.8 Authentication credentials invalid\r\n'
export const AUTH_TEMPFAIL = '454 4.7.0 Temporary authentication failure\r\n'

export interface BackendServer extends TestServer {
  /** The config directory the server was started from (removed by close()). */
  readonly configDir: string
}

/**
 * A server with TLS, a recipient plugin that lets relay clients relay, and `pluginLines`
 * (config/plugins lines, qpsmtpd syntax) after `tls`; `files` are further config files.
 */
export async function startBackendServer(
  pluginLines: readonly string[],
  files: Readonly<Record<string, string>> = {},
  extra: Partial<TestServerOptions> = {},
): Promise<BackendServer> {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-auth-backend-'))
  const configDir = join(dir, 'config')
  await mkdir(configDir)
  const all = { me: 'mx.test', loglevel: '7', plugins: pluginLines.join('\n'), ...files }
  for (const [name, text] of Object.entries(all)) await writeFile(join(configDir, name), `${text}\n`)
  try {
    const srv = await startTestServer({
      configDir,
      tls: true,
      plugins: [acceptRcpt({ relay_only: true })],
      timeouts: { authFailureDelayMs: 0 },
      limits: { authFailures: 100 },
      logLevel: 7,
      ...extra,
    })
    return {
      ...srv,
      configDir,
      close: async () => {
        await srv.close()
        await rm(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    await rm(dir, { recursive: true, force: true })
    throw e
  }
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

/**
 * One session: EHLO, STARTTLS, EHLO, AUTH (PLAIN with an initial response, or LOGIN), and, when
 * it succeeded, a relayed RCPT to show the session is authenticated. Returns the AUTH reply.
 * With `implicitTls`, the session is on the smtps listener instead.
 */
export async function loginOverStartTls(
  srv: TestServer,
  user: string,
  password: string,
  mechanism: 'PLAIN' | 'LOGIN' = 'PLAIN',
  opts: { implicitTls?: boolean } = {},
): Promise<string> {
  const c = await srv.connect({ tls: opts.implicitTls ?? false })
  try {
    await c.expect(220)
    if (opts.implicitTls !== true) {
      await c.send('EHLO client.test', 250)
      await c.startTls()
    }
    const ehlo = await c.send('EHLO client.test', 250)
    assert.ok(
      ehlo?.lines.some((l) => /^AUTH .*\bPLAIN\b/.test(l)),
      ehlo?.raw,
    )
    let reply: string
    if (mechanism === 'PLAIN') {
      reply = (await c.send(`AUTH PLAIN ${b64(`\0${user}\0${password}`)}`, /^\d{3} /, 30_000))?.raw ?? ''
    } else {
      await c.send('AUTH LOGIN', 334)
      await c.send(b64(user), 334)
      reply = (await c.send(b64(password), /^\d{3} /, 30_000))?.raw ?? ''
    }
    if (reply === AUTH_OK) {
      await c.send(`MAIL FROM:<${user.includes('@') ? user : `${user}@example.com`}>`, 250)
      await c.send('RCPT TO:<someone@elsewhere.test>', 250)
    }
    await c.quit()
    return reply
  } finally {
    c.destroy()
  }
}

/** A TCP (or Unix-socket) peer that accepts connections and never says a word. */
export interface SilentPeer {
  readonly port: number
  /** Connections accepted so far. */
  readonly accepted: number
  close(): Promise<void>
}

export async function startSilentPeer(path?: string): Promise<SilentPeer> {
  const sockets = new Set<Socket>()
  let accepted = 0
  const server: Server = createServer((s) => {
    accepted++
    sockets.add(s)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  await new Promise<void>((resolve) =>
    path === undefined ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve),
  )
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    get accepted() {
      return accepted
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Whether any log entry of the server holds `secret` (as written or base64). */
export function logsHold(srv: TestServer, secret: string): boolean {
  return srv.logs.some((e) => e.message.includes(secret) || e.message.includes(b64(secret)))
}
