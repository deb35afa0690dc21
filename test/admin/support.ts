/**
 * Helpers for the admin listener's tests: HTTP requests to it, samples read from its
 * Prometheus text, a config with a plugin that times out on one recipient, and a session that
 * delivers, has a recipient refused and one timed out.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { join } from 'node:path'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { makeConfig, repo, type TestConfig } from '../daemon/harness.ts'

export interface HttpAnswer {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

export function get(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; host?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: opts.host ?? '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: opts.headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        )
      },
    )
    req.on('error', reject)
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${path} timed out`)))
    req.end()
  })
}

/** The sum of the samples of `name` whose labels include `labels` (0 when none). */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!m || m[1] !== name) continue
    const have = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]),
    )
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3])
  }
  return sum
}

const slowPlugin = `
import { definePlugin } from ${JSON.stringify(join(repo, 'src/host/define-plugin.ts'))}
import { pass } from ${JSON.stringify(join(repo, 'src/host/verdict.ts'))}
export default definePlugin({
  name: 'slow-rcpt',
  options: {},
  timeoutMs: 300,
  setup() {
    return { hooks: { rcpt: async (ctx, to) => {
      if (to.address.local !== 'slow') return pass()
      await new Promise((r) => { const t = setTimeout(r, 5000); ctx.signal.addEventListener('abort', () => { clearTimeout(t); r() }) })
      return pass()
    } } }
  },
})
`

/** rcpt_ok for example.com, slow-rcpt (times out on slow@), the test queue. */
export function adminConfig(files: Readonly<Record<string, string>> = {}): TestConfig {
  const cfg = makeConfig(['slow-rcpt', 'rcpt_ok'], files)
  cfg.write('../plugins/slow-rcpt.ts', slowPlugin)
  return cfg
}

/** What mixedSession sends, in bytes (CRLF included). */
export const mixedSessionBytes = (helo = 'client.test'): number =>
  Buffer.byteLength(
    [
      `EHLO ${helo}`,
      'MAIL FROM:<a@client.test>',
      'RCPT TO:<x@elsewhere.test>',
      'RCPT TO:<slow@example.com>',
      'RCPT TO:<u@example.com>',
      'DATA',
      'Subject: t\r\n\r\nhello\r\n.',
      'QUIT',
    ]
      .map((l) => `${l}\r\n`)
      .join(''),
  )

/** One session: a delivered message, a refused recipient (550), a timed-out hook (451). */
export async function mixedSession(port: number, helo = 'client.test'): Promise<void> {
  const c = await SmtpTestClient.connect(port)
  try {
    await c.expect(220)
    await c.send(`EHLO ${helo}`, 250)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<x@elsewhere.test>', 550)
    await c.send('RCPT TO:<slow@example.com>', /^451 4\.3\.0 /)
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhello\r\n.', 250)
    await c.send('QUIT', 221)
  } finally {
    c.destroy()
  }
}

export function assertPromtoolAccepts(text: string): Promise<void> {
  return import('node:child_process').then(
    ({ spawn }) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
        let out = ''
        child.stdout.on('data', (c: Buffer) => (out += c.toString()))
        child.stderr.on('data', (c: Buffer) => (out += c.toString()))
        child.on('error', reject)
        child.on('close', (code) => {
          try {
            assert.equal(code, 0, `promtool check metrics failed:\n${out}`)
            assert.equal(out.trim(), '', `promtool check metrics complained:\n${out}`)
            resolve()
          } catch (e) {
            reject(e)
          }
        })
        child.stdin.end(text)
      }),
  )
}
