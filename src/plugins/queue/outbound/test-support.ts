/**
 * Test helpers for queue/smtp-forward and queue/lmtp: one transaction whose RCPT replies may be
 * refusals. Test-only. (A recipient plugin that accepts every address: acceptAllRecipients in
 * src/testing.)
 */
import type { SmtpReply, SmtpTestClient } from '../../../testing/client.ts'
import type { TestServer } from '../../../testing/test-server.ts'

export interface Transcript {
  readonly rcpts: SmtpReply[]
  /** The reply after the final dot; undefined when no recipient was accepted. */
  readonly final: SmtpReply | undefined
}

/** EHLO, MAIL, every RCPT, and DATA with `body` (CRLF lines, not yet dot-stuffed) if any RCPT passed. */
export async function transact(
  srv: TestServer,
  from: string,
  to: readonly string[],
  body: string,
  opts: { mailParams?: string; client?: SmtpTestClient } = {},
): Promise<Transcript> {
  const c = opts.client ?? (await srv.connect())
  if (opts.client === undefined) {
    await c.expect(220)
    await c.send('EHLO client.test', 250)
  }
  await c.send(`MAIL FROM:<${from}>${opts.mailParams ? ` ${opts.mailParams}` : ''}`, 250)
  const rcpts: SmtpReply[] = []
  for (const r of to) {
    await c.send(`RCPT TO:<${r}>`)
    rcpts.push(await c.reply(30_000))
  }
  let final: SmtpReply | undefined
  if (rcpts.some((r) => r.code === 250)) {
    await c.send('DATA', 354)
    const stuffed = body.replace(/^\./gm, '..')
    c.write(`${stuffed}${stuffed.endsWith('\r\n') ? '' : '\r\n'}.\r\n`)
    final = await c.reply(60_000)
  } else await c.send('RSET', 250)
  if (opts.client === undefined) await c.quit()
  return { rcpts, final }
}

export const simpleBody = (subject: string, extra = ''): string =>
  `Subject: ${subject}\r\nFrom: <a@src.test>\r\n\r\nHello.\r\n.leading dot\r\n..two dots\r\n${extra}`
