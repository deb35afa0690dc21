/**
 * Helpers for the built-in plugins' tests: a recipient plugin that accepts every address (or
 * only relay clients' foreign ones), one SMTP transaction (or a whole session) in a call, and
 * the core's Received field as a pattern. Test-only; not part of the public API.
 */
import { definePlugin } from '../host/define-plugin.ts'
import { opt } from '../host/options.ts'
import { accept, pass } from '../host/verdict.ts'
import type { SmtpTestClient } from '../testing/client.ts'
import type { TestServer } from '../testing/test-server.ts'

/** rcpt: accepts every recipient; with `relay_only`, only for relay clients (else pass → refused). */
export const acceptRcpt = definePlugin({
  name: 'test/accept-rcpt',
  options: { relay_only: opt.boolean({ default: false }) },
  setup: ({ options }) => ({
    hooks: {
      rcpt: (ctx) => (!options.relay_only || ctx.connection.relayClient ? accept() : pass('not a relay client')),
    },
  }),
})

/** MAIL, RCPT..., DATA with `content` (already dot-stuffed, ending in CRLF); returns the final reply. */
export async function sendMail(
  c: SmtpTestClient,
  from: string,
  to: readonly string[],
  content: string,
): Promise<{ code: number; raw: string }> {
  await c.send(`MAIL FROM:<${from}>`, 250)
  for (const r of to) await c.send(`RCPT TO:<${r}>`, 250)
  await c.send('DATA', 354)
  c.write(`${content}.\r\n`)
  const r = await c.reply(30_000)
  return { code: r.code, raw: r.raw }
}

/** A whole session: connect, EHLO client.test, then sendMail and QUIT; returns the final reply. */
export async function sendMailSession(
  srv: TestServer,
  from: string,
  to: readonly string[],
  content: string,
): Promise<{ code: number; raw: string }> {
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  const r = await sendMail(c, from, to, content)
  await c.quit()
  return r
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The Received field the core adds for a plain-TCP client from 127.0.0.1, date left open. */
export function receivedPattern(opts: {
  helo: string
  me: string
  id: string
  recipient?: string
  withProtocol?: string
  tls?: boolean
}): string {
  const lines = [
    `Received: from ${escapeRe(opts.helo)} \\(unknown \\[127\\.0\\.0\\.1\\]\\)`,
    `\tby ${escapeRe(opts.me)} \\(qtsmtpd\\) with ${opts.withProtocol ?? 'ESMTP'} id ${opts.id}`,
    ...(opts.tls ? ['\t\\(version=[^\\r\\n]+\\)'] : []),
    ...(opts.recipient === undefined ? [] : [`\tfor <${escapeRe(opts.recipient)}>`]),
  ]
  return `${lines.join('\\r\\n')}; [A-Z][a-z]{2}, \\d{1,2} [A-Z][a-z]{2} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\\r\\n`
}

/** Sends a command line and returns the raw reply (every line, CRLFs included), for exact assertions. */
export async function ask(c: SmtpTestClient, line: string, timeoutMs?: number): Promise<string> {
  await c.send(line)
  return (await c.reply(timeoutMs)).raw
}

/** The connection's summary line, once it is logged (after QUIT; waits up to 5 s). */
export async function summaryLine(srv: TestServer, nth = 1): Promise<string> {
  const lines = () => srv.logs.map((e) => e.message).filter((m) => m.startsWith('summary '))
  for (let i = 0; i < 200 && lines().length < nth; i++) await new Promise((r) => setTimeout(r, 25))
  const line = lines()[nth - 1]
  if (line === undefined) throw new Error(`no summary line ${nth} in the log`)
  return line
}

/** A plain message as a sender writes it: header fields, then the body, CRLF line endings. */
export function plainMessage(body: string, headers: Readonly<Record<string, string>> = {}): string {
  const fields = {
    From: 'Alice <alice@sender.test>',
    To: 'bob@local.test',
    Subject: 'lunch',
    Date: 'Fri, 04 Dec 2026 18:00:00 +0000',
    'Message-ID': '<20261204180000.1@sender.test>',
    ...headers,
  }
  const head = Object.entries(fields)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')
  return `${head}\r\n${body}`
}
