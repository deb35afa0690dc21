/**
 * The log lines an operator works from, as Postfix writes them (key=value): one line per accepted
 * message, with the envelope, size, queue id, the queue plugin and its results (the next hop's
 * answer), and one line per refused command or message, with the client, the reply and the plugin
 * that decided, and a line when the client leaves in the middle of a message. Formats and keys:
 * docs/running.md "Log lines". Written at info level.
 * Not here: the per-connection summary line (lifecycle.ts), which counts these refusals.
 */
import { LogLevels } from '../host/logger.ts'
import { formatAddress } from '../protocol/envelope.ts'
import type { Reply } from '../protocol/reply.ts'
import { inTransaction } from './phase.ts'
import type { SessionCore } from './session-core.ts'
import type { TxnState } from './transaction.ts'

/** The command being answered; `message` once its content is complete (DATA, last BDAT). */
export interface CommandInProgress {
  readonly verb: string
  readonly args: string
  readonly message?: { readonly size: number; readonly queue: string | undefined }
}

/** A command line that was not even split into verb and arguments (bad bytes, too long). */
export const unparsedCommand: CommandInProgress = Object.freeze({ verb: '-', args: '' })

/** Logs the line for a command's final reply: a refusal (4xx/5xx), or an accepted message. */
export function logFinalReply(s: SessionCore, command: CommandInProgress, r: Reply, refusedBy: string | undefined) {
  if (!s.log.enabled(LogLevels.info)) return
  const txn = transactionOf(s)
  // Tagged with the queue id for logging/transaction_id and the JSON lines (`txn`).
  const log = txn === undefined || command.verb === 'MAIL' ? s.log : s.log.child({ transaction: txn.id })
  if (r.code < 400) {
    if (command.message !== undefined && txn !== undefined) log.info(acceptedLine(s, txn, command.message, r))
    return
  }
  log.info(refusedLine(s, command, r, refusedBy))
}

/**
 * The client went away in the middle of a message (DATA content, or between BDAT chunks):
 * nothing was stored and no reply tells of it, so this line does, as Postfix's "lost connection
 * after DATA (N bytes)". `size` is what arrived.
 */
export function logLostMessage(s: SessionCore, txn: TxnState): void {
  if (!s.log.enabled(LogLevels.info)) return
  const verb = txn.contentMode === 'bdat' ? 'BDAT' : 'DATA'
  const line = [
    `lost cmd=${verb}`,
    `id=${txn.id}`,
    ...client(s),
    ...envelope(txn),
    ...content(txn, txn.spool?.size ?? 0),
  ]
  s.log.child({ transaction: txn.id }).info(line.join(' '))
}

function acceptedLine(
  s: SessionCore,
  txn: TxnState,
  message: NonNullable<CommandInProgress['message']>,
  r: Reply,
): string {
  return [
    'accepted',
    `id=${txn.id}`,
    ...client(s),
    ...envelope(txn),
    ...content(txn, message.size),
    `queue=${message.queue ?? '-'}`,
    `reply=${quote(replyText(r))}`,
    `results=[${txn.results.summary()}]`,
  ].join(' ')
}

function refusedLine(s: SessionCore, command: CommandInProgress, r: Reply, refusedBy: string | undefined): string {
  const txn = transactionOf(s)
  const verb = command.verb.length > 32 ? `${command.verb.slice(0, 32)}...` : command.verb
  const fields = [`refused cmd=${quote(verb)}`]
  // A refused MAIL starts no transaction (a nested one is not the open transaction's).
  if (txn !== undefined && verb !== 'MAIL') fields.push(`id=${txn.id}`)
  fields.push(...client(s))
  if (verb === 'MAIL') fields.push(`from=${quote(pathOf(command.args, 'FROM'))}`)
  else if (txn !== undefined && verb === 'RCPT')
    fields.push(`from=${address(txn.mailFrom.address)}`, `to=${quote(pathOf(command.args, 'TO'))}`)
  else if (txn !== undefined) fields.push(...envelope(txn))
  if (command.message !== undefined && txn !== undefined) fields.push(...content(txn, command.message.size))
  fields.push(`reply=${quote(replyText(r))}`, `plugin=${refusedBy ?? '-'}`)
  if (command.message !== undefined && txn !== undefined) fields.push(`results=[${txn.results.summary()}]`)
  return fields.join(' ')
}

const transactionOf = (s: SessionCore): TxnState | undefined => (inTransaction(s.phase) ? s.phase.txn : undefined)

const client = (s: SessionCore): string[] => [
  `ip=${s.connection.remote.ip}`,
  `helo=${quote(s.connection.helo?.host ?? '-')}`,
]

const envelope = (txn: TxnState): string[] => [
  `from=${address(txn.mailFrom.address)}`,
  ...txn.recipients.map((r) => `to=${address(r.address)}`),
]

function content(txn: TxnState, size: number): string[] {
  // A message cut off before its blank line has no header section yet.
  const spool = txn.spool
  const id = spool?.headersComplete ? spool.headers.first('Message-ID')?.trim() : undefined
  return [`size=${size}`, `msgid=${id === undefined || id === '' ? '-' : quote(id)}`]
}

const address = (a: Parameters<typeof formatAddress>[0]): string => quote(`<${formatAddress(a)}>`)

/** The path as the client wrote it after `FROM:`/`TO:` (the command may be refused for its syntax). */
function pathOf(args: string, keyword: 'FROM' | 'TO'): string {
  const rest = args.replace(new RegExp(`^${keyword}:\\s*`, 'i'), '')
  const end = rest.startsWith('<') ? rest.indexOf('>') + 1 : rest.indexOf(' ')
  const path = end > 0 ? rest.slice(0, end) : rest
  return path === '' ? '-' : path
}

const replyText = (r: Reply): string =>
  `${r.code}${r.enhanced === undefined ? '' : ` ${r.enhanced}`} ${r.lines.join(' / ')}`.slice(0, 1000)

/** A value as is when it has no space, quote or backslash; else in double quotes, escaped. */
export function quote(value: string): string {
  if (value !== '' && !/[\s"\\]/.test(value)) return value
  return `"${value.replace(/[\\"]/g, '\\$&')}"`
}
