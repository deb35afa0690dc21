/**
 * One mail transaction on an outbound session: MAIL and RCPT (pipelined when the next hop
 * offers PIPELINING, RFC 2920), then the content with DATA (dot-stuffed, streamed with
 * backpressure) or BDAT (RFC 3030, for BINARYMIME), and the reply: one for SMTP, one per
 * accepted recipient for LMTP (RFC 2033 §4.2).
 *
 * Parameters are passed on only when the next hop offers the extension: SIZE, BODY
 * (RFC 6152), SMTPUTF8 (RFC 6531), DSN's RET/ENVID/NOTIFY/ORCPT (RFC 3461). A message that
 * needs an extension the hop lacks (SMTPUTF8, 8BITMIME, BINARYMIME, REQUIRETLS) is not
 * downgraded: `incompatible`, so the caller tries another hop or defers.
 */
import type { Readable } from 'node:stream'
import type { BodyType, DsnNotify, MailFrom, Orcpt, RcptTo } from '../../protocol/envelope.ts'
import { formatAddress } from '../../protocol/envelope.ts'
import { DotStuffer } from './dot-stuff.ts'
import { OutboundError } from './errors.ts'
import type { SmtpClient } from './smtp-client.ts'
import { type RemoteReply, replyText } from './wire.ts'

export interface OutboundRecipient {
  readonly address: string
  readonly notify: readonly DsnNotify[] | undefined
  readonly orcpt: Orcpt | undefined
}

export interface OutboundEnvelope {
  /** The reverse path without brackets; '' for the null path. */
  readonly from: string
  readonly body: BodyType
  readonly smtputf8: boolean
  readonly requireTls: boolean
  readonly ret: 'FULL' | 'HDRS' | undefined
  /** ENVID in xtext, as the client sent it. */
  readonly envid: string | undefined
  /** Final size in octets, for SIZE=. */
  readonly size: number
  readonly recipients: readonly OutboundRecipient[]
}

/** The envelope a transaction (host/context.ts Transaction) gives, for the next hop. */
export function envelopeOf(
  txn: { readonly mailFrom: MailFrom; readonly recipients: readonly RcptTo[]; readonly body: BodyType },
  size: number,
): OutboundEnvelope {
  const p = txn.mailFrom.params
  return {
    from: formatAddress(txn.mailFrom.address),
    body: txn.body,
    smtputf8: p.smtputf8,
    requireTls: p.requireTls,
    ret: p.ret,
    envid: p.envidEncoded,
    size,
    recipients: txn.recipients.map((r) => ({
      address: formatAddress(r.address),
      notify: r.params.notify,
      orcpt: r.params.orcpt,
    })),
  }
}

/** Throws `incompatible` (or a 552 for SIZE) when this hop cannot take the message as it is. */
export function checkCompatible(c: SmtpClient, env: OutboundEnvelope): void {
  const lacks = (what: string) => {
    throw new OutboundError('incompatible', 'MAIL', `next hop does not offer ${what}, which this message needs`)
  }
  if (env.smtputf8 && !c.has('SMTPUTF8')) lacks('SMTPUTF8')
  if (env.body === '8BITMIME' && !c.has('8BITMIME')) lacks('8BITMIME')
  if (env.body === 'BINARYMIME' && !(c.has('BINARYMIME') && c.has('CHUNKING'))) lacks('BINARYMIME and CHUNKING')
  if (env.requireTls && !(c.encrypted && c.has('REQUIRETLS') && c.options.tlsVerify))
    lacks('REQUIRETLS over verified TLS')
  const max = Number(c.capabilities.get('SIZE')?.[0] ?? 0)
  if (max > 0 && env.size > max) {
    const r: RemoteReply = { code: 552, enhanced: '5.3.4', lines: [`Message too big for the next hop (limit ${max})`] }
    throw new OutboundError('reply', 'MAIL', replyText(r), r)
  }
}

export function mailCommand(c: SmtpClient, env: OutboundEnvelope): string {
  const params: string[] = []
  if (c.has('SIZE') && env.size > 0) params.push(`SIZE=${env.size}`)
  if (env.body !== '7BIT' && c.has(env.body === '8BITMIME' ? '8BITMIME' : 'BINARYMIME')) params.push(`BODY=${env.body}`)
  if (env.smtputf8) params.push('SMTPUTF8')
  if (env.requireTls) params.push('REQUIRETLS')
  if (c.has('DSN')) {
    if (env.ret !== undefined) params.push(`RET=${env.ret}`)
    // RFC 3461 §4.4: the value received, unchanged (not decoded and encoded again).
    if (env.envid !== undefined) params.push(`ENVID=${env.envid}`)
  }
  return [`MAIL FROM:<${env.from}>`, ...params].join(' ')
}

export function rcptCommand(c: SmtpClient, r: OutboundRecipient): string {
  const params: string[] = []
  if (c.has('DSN')) {
    if (r.notify !== undefined) params.push(`NOTIFY=${r.notify.join(',')}`)
    // RFC 3461 §5.2.1: the value received, unchanged. Raw UTF-8 in it was accepted only in an
    // SMTPUTF8 transaction, which goes only to hops that offer SMTPUTF8 (checkCompatible).
    if (r.orcpt !== undefined) params.push(`ORCPT=${r.orcpt.type};${r.orcpt.encoded}`)
  }
  return [`RCPT TO:<${r.address}>`, ...params].join(' ')
}

export interface EnvelopeReplies {
  readonly mail: RemoteReply
  /** One reply per recipient, in order; 503s stand in when MAIL failed. */
  readonly rcpts: RemoteReply[]
}

/** MAIL and every RCPT; the caller decides what the replies mean. */
export async function sendEnvelope(c: SmtpClient, env: OutboundEnvelope): Promise<EnvelopeReplies> {
  checkCompatible(c, env)
  const ms = c.options.timeouts.commandMs
  const lines = [mailCommand(c, env), ...env.recipients.map((r) => rcptCommand(c, r))]
  if (c.has('PIPELINING')) {
    c.wire.command(...lines)
    const mail = await c.wire.read('MAIL', ms)
    const rcpts: RemoteReply[] = []
    for (let i = 0; i < env.recipients.length; i++) rcpts.push(await c.wire.read('RCPT', ms))
    return { mail, rcpts }
  }
  const mail = await c.ask(lines[0] as string, 'MAIL')
  if (mail.code >= 300) return { mail, rcpts: env.recipients.map(() => mail) }
  const rcpts: RemoteReply[] = []
  for (const line of lines.slice(1)) rcpts.push(await c.ask(line, 'RCPT'))
  return { mail, rcpts }
}

/**
 * Sends the content after an envelope with `accepted` recipients and returns the final
 * reply: one for SMTP, one per accepted recipient for LMTP. If reading the message fails,
 * the connection is destroyed before the final dot, so the next hop keeps nothing.
 */
export async function sendContent(
  c: SmtpClient,
  content: Readable,
  body: BodyType,
  accepted: number,
): Promise<RemoteReply[]> {
  const t = c.options.timeouts
  try {
    if (body === 'BINARYMIME') await sendChunks(c, content)
    else {
      const go = await c.ask('DATA', 'DATA')
      if (go.code !== 354) {
        content.destroy()
        throw new OutboundError('reply', 'DATA', `DATA refused: ${replyText(go)}`, go)
      }
      const stuffer = new DotStuffer()
      for await (const chunk of content)
        await c.wire.writeRaw(stuffer.push(chunk as Buffer), 'DATA content', t.dataBlockMs)
      await c.wire.writeRaw(stuffer.end(), 'DATA content', t.dataBlockMs)
    }
  } catch (e) {
    content.destroy()
    c.destroy()
    throw e
  }
  const count = c.options.protocol === 'lmtp' ? accepted : 1
  const replies: RemoteReply[] = []
  for (let i = 0; i < count; i++) replies.push(await c.wire.read('end of data', t.dataDoneMs))
  c.messages++
  c.lastUsed = Date.now()
  return replies
}

/** RFC 3030: each chunk acknowledged before the next; binary content is never stuffed. */
async function sendChunks(c: SmtpClient, content: Readable): Promise<void> {
  const t = c.options.timeouts
  for await (const chunk of content) {
    const b = chunk as Buffer
    if (b.length === 0) continue
    c.wire.command(`BDAT ${b.length}`)
    await c.wire.writeRaw(b, 'BDAT', t.dataBlockMs)
    const r = await c.wire.read('BDAT', t.dataBlockMs)
    if (r.code !== 250) throw new OutboundError('reply', 'BDAT', `BDAT refused: ${replyText(r)}`, r)
  }
  c.wire.command('BDAT 0 LAST')
}
