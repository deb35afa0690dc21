/**
 * data/content-log (qpsmtpd's `content_log`): keeps a copy of each message, as it stands at
 * data_post (our Received field included), in a file named by a strftime pattern in local time
 * (`content_log_file`, default `mail/%Y%m%d`: one file a day). A copy never decides anything:
 * a message whose copy cannot be written is accepted all the same, and logged.
 *
 * Differs from qpsmtpd: the file is an mbox (mboxrd: a `From ` line before each message, lines
 * starting with `>*From ` quoted, LF line endings), so that it can be split and read again;
 * disk use is bounded (`keep` files, `max_file_size` each). Not durable: a crash may lose the
 * last copies, which a log may; the message itself is the queue's business.
 */
import { open, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { makeDirectories } from '../../files/make-directories.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import type { Message } from '../../host/message.ts'
import { opt } from '../../host/options.ts'
import { pass } from '../../host/verdict.ts'
import { formatAddress } from '../../protocol/envelope.ts'
import { strftime } from '../logging/strftime.ts'
import { checkPattern, pruneOldFiles } from './content-log-files.ts'

const DEFAULT_FILE = 'mail/%Y%m%d'

export default definePlugin({
  name: 'data/content-log',
  aliases: ['content_log'],
  description: 'keep a copy of each message in an mbox file a day, the oldest files removed',
  options: {
    keep: opt.number({
      default: 30,
      min: 1,
      max: 100_000,
      integer: true,
      description: 'files kept, the current one included',
    }),
    max_file_size: opt.number({
      default: 256 * 1024 * 1024,
      min: 1024,
      integer: true,
      description: 'bytes: a message that would make the file larger is not copied',
    }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 60_000,
  // A copy that fails must not cost the message: a throw or a timeout is skipped, not 451.
  onFailure: 'pass',
  async setup({ options, config, paths, clock, log, metrics, name }) {
    const enabled = /^(?:true|1|yes)\s*$/i.test(config.value('content_log_enabled') ?? 'true')
    if (!enabled) {
      log.info('content logging is off (config/content_log_enabled)')
      return { hooks: {} }
    }
    const pattern = paths.resolve(config.value('content_log_file') ?? DEFAULT_FILE)
    checkPattern(pattern)
    await makeDirectories(dirname(pattern), 0o750)
    const copies = metrics.counter({
      name: 'qtsmtpd_content_log_messages_total',
      help: 'Messages content_log copied (written), left out for the file size limit (skipped), or could not write (failed)',
      labelNames: ['plugin', 'outcome'],
    })
    const count = {
      written: copies.labels({ plugin: name, outcome: 'written' }),
      skipped: copies.labels({ plugin: name, outcome: 'skipped' }),
      failed: copies.labels({ plugin: name, outcome: 'failed' }),
    }
    let lastFile: string | undefined
    // One copy at a time in this process: the size check and the pruning see whole files.
    let queue: Promise<unknown> = Promise.resolve()

    const copy = async (file: string, entry: Buffer): Promise<'written' | 'full'> => {
      const size = await stat(file).then(
        (s) => s.size,
        () => 0,
      )
      if (size + entry.length > options.max_file_size) return 'full'
      // One write of the whole entry with O_APPEND: other workers' copies never land inside it.
      const handle = await open(file, 'a', 0o640)
      try {
        await handle.write(entry)
      } finally {
        await handle.close()
      }
      if (file !== lastFile) {
        lastFile = file
        const removed = await pruneOldFiles(pattern, options.keep, file)
        if (removed.length > 0) log.info(`content log: removed ${removed.join(', ')} (keep ${options.keep})`)
      }
      return 'written'
    }

    const dataPost: DataPostHook = async (ctx, msg) => {
      const now = new Date(clock.now())
      const file = strftime(pattern, now)
      const sender = ctx.transaction.mailFrom.address
      const entry = await mboxEntry(msg, sender === null ? 'MAILER-DAEMON' : formatAddress(sender), now)
      const done = queue.then(() => copy(file, entry))
      queue = done.catch(() => {})
      try {
        if ((await done) === 'full') {
          count.skipped.inc()
          ctx.result('skip', `${file} would pass max_file_size (${options.max_file_size} bytes)`)
          return pass()
        }
      } catch (e) {
        count.failed.inc()
        ctx.log.warn(`content log: cannot write ${file}: ${(e as Error).message}`)
        ctx.result('error', `cannot write ${file}`)
        return pass()
      }
      count.written.inc()
      ctx.result('pass', `copied to ${file}`)
      return pass()
    }

    return { hooks: { dataPost } }
  },
})

/**
 * The message as an mboxrd entry: `From sender asctime`, the message with LF line endings and
 * `>`-quoted From lines, a blank line.
 */
async function mboxEntry(msg: Message, sender: string, at: Date): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of msg.stream()) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks)
    .toString('latin1')
    .replace(/\r\n/g, '\n')
    .replace(/^(>*From )/gm, '>$1')
  const ending = text.endsWith('\n') ? '\n' : '\n\n'
  // The sender may be UTF-8 (SMTPUTF8); the message's bytes stay as they came.
  return Buffer.concat([
    Buffer.from(`From ${sender} ${strftime('%a %b %e %H:%M:%S %Y', at)}\n`),
    Buffer.from(`${text}${ending}`, 'latin1'),
  ])
}
