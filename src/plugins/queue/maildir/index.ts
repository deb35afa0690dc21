/**
 * queue/maildir: delivers into Maildir directories (qpsmtpd `queue/maildir path [pattern] [mode]`).
 *
 * Each copy is written to tmp/, fsynced, renamed into new/, and new/ is fsynced; only then is the
 * 250 sent. With a pattern (%l, %d, %u) there is one copy per recipient with its own Delivered-To;
 * without, one copy with a Delivered-To per recipient (as qpsmtpd). If any copy fails the whole
 * message is deferred (451 4.3.0): copies already in new/ stay, so delivery is at-least-once.
 * Files have LF line ends, as qmail-local, Postfix's local, maildrop and Dovecot write them
 * (`line_endings crlf` keeps the CRLF received); a BINARYMIME message is always kept as received.
 * Security: address parts are encoded into single path components (path.ts) and the
 * result is checked to stay under `path`.
 */
import { unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { pipeline, type Readable } from 'node:stream'
import { ensureDir, isInside, maildirUniqueName, publish, writeSynced } from '../../../files/durable-file.ts'
import type { Message, TxnContext } from '../../../host/context.ts'
import { definePlugin } from '../../../host/define-plugin.ts'
import { opt } from '../../../host/options.ts'
import { accept, defer } from '../../../host/verdict.ts'
import { crlfToLf } from '../../../message/line-endings.ts'
import { formatAddress, type RcptTo } from '../../../protocol/envelope.ts'
import { checkPattern, expandPattern } from './path.ts'

interface Copy {
  readonly maildir: string
  readonly prepend: readonly Buffer[]
  tmp?: string | undefined
  name?: string
}

const header = (name: string, value: string): Buffer => {
  // Envelope addresses are validated by the parser; this keeps a header injection impossible anyway.
  if (/[\r\n\0]/.test(value)) throw new Error(`refusing ${name} with a control character`)
  return Buffer.from(`${name}: ${value}\r\n`, 'utf8')
}

export default definePlugin({
  name: 'queue/maildir',
  description: 'delivers to Maildir directories, durably (fsync before 250)',
  options: {
    path: opt.string({ positional: 0, description: 'the maildir, or the root of per-recipient maildirs' }),
    subdir: opt.optionalString({ positional: 1, description: 'per-recipient sub-directory pattern (%l, %d, %u)' }),
    mode: opt.string({
      positional: 2,
      default: '700',
      pattern: /^0?[0-7]{3}$/,
      description: 'octal mode of created directories; files get it without execute bits',
    }),
    line_endings: opt.enum(['lf', 'crlf'], {
      default: 'lf',
      description: 'line ends in stored files: lf (as qmail-local, Postfix and Dovecot), or crlf as received',
    }),
  },
  timeoutMs: 300_000,
  async setup({ options, server, paths }) {
    const root = paths.resolve(options.path)
    const dirMode = Number.parseInt(options.mode, 8)
    const fileMode = dirMode & 0o666
    const pattern = options.subdir
    if (pattern !== undefined) {
      const problem = checkPattern(pattern)
      if (problem !== undefined) throw new Error(problem)
    }
    const ensureMaildir = async (dir: string) => {
      for (const sub of ['cur', 'new', 'tmp']) await ensureDir(join(dir, sub), dirMode)
    }
    // Without a pattern the one maildir must be usable now: a typo should stop the start, not defer mail.
    if (pattern === undefined) await ensureMaildir(root)
    else await ensureDir(root, dirMode)

    const maildirFor = (to: RcptTo): string => {
      if (pattern === undefined) return root
      const domain = to.address.domain ?? server.me
      const dir = resolve(root, expandPattern(pattern, { local: to.address.local, domain }))
      if (!isInside(root, dir)) throw new Error(`maildir for ${formatAddress(to.address)} escapes ${root}`)
      return dir
    }

    const copiesFor = (ctx: TxnContext): Copy[] => {
      const txn = ctx.transaction
      const returnPath = header('Return-Path', `<${formatAddress(txn.mailFrom.address)}>`)
      if (pattern === undefined) {
        const delivered = txn.recipients.map((r) => header('Delivered-To', formatAddress(r.address)))
        return [{ maildir: root, prepend: [returnPath, ...delivered] }]
      }
      return txn.recipients.map((r) => ({
        maildir: maildirFor(r),
        prepend: [returnPath, header('Delivered-To', formatAddress(r.address))],
      }))
    }

    const content = (ctx: TxnContext, msg: Message, copy: Copy): Readable => {
      const received = msg.stream({ prepend: copy.prepend })
      // A BINARYMIME body is not made of lines: a CRLF in it is data (a PNG signature holds one).
      if (options.line_endings === 'crlf' || ctx.transaction.body === 'BINARYMIME') return received
      // pipeline() carries errors and an early destroy() between the two streams.
      return pipeline(received, crlfToLf(), () => {})
    }

    const deliver = async (ctx: TxnContext, msg: Message, copies: Copy[]): Promise<void> => {
      // Write and fsync every copy first, then publish them all: a failure while writing
      // (disk full, bad directory) leaves nothing in new/ and nothing in tmp/.
      for (const c of copies) {
        await ensureMaildir(c.maildir)
        c.name = maildirUniqueName()
        c.tmp = join(c.maildir, 'tmp', c.name)
        await writeSynced(c.tmp, content(ctx, msg, c), fileMode, ctx.signal)
      }
      for (const c of copies) {
        const file = join(c.maildir, 'new', c.name as string)
        await publish(c.tmp as string, file)
        c.tmp = undefined
        ctx.result('pass', `delivered to ${file}`)
      }
    }

    return {
      hooks: {
        queue: async (ctx, msg) => {
          const id = ctx.transaction.id
          let copies: Copy[] = []
          try {
            copies = copiesFor(ctx)
            await deliver(ctx, msg, copies)
          } catch (e) {
            await Promise.all(copies.map((c) => (c.tmp === undefined ? undefined : unlink(c.tmp).catch(() => {}))))
            ctx.log.error(`message ${id}: maildir delivery failed: ${(e as Error).message}`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'Error: queuing failed; try again later' })
          }
          return accept({ text: `Queued as ${id}` })
        },
      },
    }
  },
})
