/**
 * openssl s_client (Debian openssl) as an SMTP client over TLS: implicit TLS, or STARTTLS with
 * `-starttls smtp` (s_client reads the greeting, sends EHLO and STARTTLS itself). Lines are
 * written as the replies come; stdin stays open, so s_client ends only when the server closes.
 * Its stderr reports a close without a TLS close_notify as "unexpected eof while reading".
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'

export interface SClient {
  /** Waits (up to 15 s) until what the server sent so far matches re. */
  waitFor(re: RegExp): Promise<void>
  send(line: string): void
  /** Resolves once s_client exited: its exit code, everything it received and its stderr. */
  exited(): Promise<{ code: number | null; out: string; err: string }>
  kill(): void
}

export function sClient(port: number, opts: { starttls?: boolean; servername?: string } = {}): SClient {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-quiet', '-crlf']
  if (opts.servername !== undefined) args.push('-servername', opts.servername)
  if (opts.starttls === true) args.push('-starttls', 'smtp')
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  child.stdin.on('error', () => {})
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  return {
    async waitFor(re) {
      for (let i = 0; i < 150 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 100))
      assert.match(out, re, err)
    },
    send: (line) => void child.stdin.write(`${line}\n`),
    async exited() {
      const code = await exit
      child.stdin.end()
      return { code, out, err }
    },
    kill: () => void child.kill('SIGKILL'),
  }
}
