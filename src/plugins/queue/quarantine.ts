/**
 * queue/quarantine: keeps the message in a quarantine directory instead of delivering it
 * (for content plugins and tests). Each message becomes `dir/<YYYY-MM-DD>/<queue id>.eml`
 * (UTC date) with the envelope in front as `X-Envelope-From`/`X-Envelope-To` fields, written
 * to a dot-file, fsynced, renamed and the directory fsynced before the reply. The reply is
 * configurable: accept (250, default) or reject (554 5.7.1); a failed write is 451 4.3.0.
 * With `marked_only`, it keeps only the messages a content filter marked (`Quarantined`: a
 * milter's SMFIR_QUARANTINE), each reason in an `X-Quarantine-Reason` field, and passes the
 * others to the next queue plugin: Postfix's hold queue.
 */
import { unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { ensureDir, publish, writeSynced } from '../../files/durable-file.ts'
import { Quarantined } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, pass, reject } from '../../host/verdict.ts'
import { formatAddress } from '../../protocol/envelope.ts'

const field = (name: string, value: string): Buffer => {
  if (/[\r\n\0]/.test(value)) throw new Error(`refusing ${name} with a control character`)
  return Buffer.from(`${name}: ${value}\r\n`, 'utf8')
}

export default definePlugin({
  name: 'queue/quarantine',
  description: 'stores messages in a quarantine directory, durably, and accepts or rejects them',
  options: {
    dir: opt.string({ positional: 0, description: 'quarantine directory' }),
    reply: opt.enum(['accept', 'reject'], { default: 'accept', description: '250 or 554 5.7.1 once stored' }),
    marked_only: opt.boolean({
      default: false,
      description: 'keep only messages a content filter (milter) asked to quarantine; pass the others on',
    }),
  },
  timeoutMs: 300_000,
  async setup({ options, paths }) {
    const root = paths.resolve(options.dir)
    await ensureDir(root, 0o700)
    return {
      hooks: {
        queue: async (ctx, msg) => {
          const txn = ctx.transaction
          const reasons = ctx.get(Quarantined)
          if (options.marked_only && reasons.length === 0) return pass('not marked for quarantine')
          const day = new Date().toISOString().slice(0, 10)
          const dayDir = join(root, day)
          const tmp = join(dayDir, `.${txn.id}.eml.tmp`)
          const file = join(dayDir, `${txn.id}.eml`)
          try {
            const prepend = [
              field('X-Envelope-From', `<${formatAddress(txn.mailFrom.address)}>`),
              ...txn.recipients.map((r) => field('X-Envelope-To', `<${formatAddress(r.address)}>`)),
              ...reasons.map((why) => field('X-Quarantine-Reason', why)),
            ]
            await ensureDir(dayDir, 0o700)
            await writeSynced(tmp, msg.stream({ prepend }), 0o600, ctx.signal)
            await publish(tmp, file)
          } catch (e) {
            await unlink(tmp).catch(() => {})
            ctx.log.error(`message ${txn.id}: quarantine failed: ${(e as Error).message}`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'Error: queuing failed; try again later' })
          }
          ctx.result('pass', `quarantined in ${file}`)
          if (options.reply === 'reject')
            return reject({ code: 554, enhanced: '5.7.1', text: `Message quarantined as ${txn.id}` })
          return accept({ text: `Quarantined as ${txn.id}` })
        },
      },
    }
  },
})
