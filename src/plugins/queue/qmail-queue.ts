/**
 * queue/qmail-queue: hands the message to qmail-queue (qpsmtpd `queue/qmail-queue`).
 * qpsmtpd arguments: `queue/qmail-queue [path]`; env QMAILQUEUE overrides the path, the default is
 * `$QMAIL/bin/qmail-queue` with QMAIL defaulting to /var/qmail. Extra option: `timeout` (seconds).
 *
 * Protocol (qmail-queue(8)): the message with LF line endings on fd 0, then the envelope on fd 1:
 * `F<sender>\0T<rcpt>\0...\0`. Exit 0 means the message is safely in qmail's queue. The exit codes
 * map to replies as qmail-smtpd maps them (qmail.c qmail_close): 11–40 permanent (554), others 451.
 * Security: the program runs from an argument vector; envelope and message are bytes on descriptors.
 */
import { open, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { mtaEnvelope } from '../../clients/mta-input/mta-input.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, reject, type Verdict } from '../../host/verdict.ts'
import { crlfToLf } from '../../message/line-endings.ts'
import { findProgram, runChild } from '../../net/child-process.ts'
import type { EnhancedCode } from '../../protocol/reply.ts'

interface QqReply {
  readonly code: 451 | 554
  readonly enhanced: EnhancedCode
  readonly text: string
}

const temp = (enhanced: EnhancedCode, text: string): QqReply => ({ code: 451, enhanced, text })
const perm = (enhanced: EnhancedCode, text: string): QqReply => ({ code: 554, enhanced, text })

/** qmail-queue(8) exit codes and qmail-smtpd's wording for them. */
const exitReplies: Readonly<Record<number, QqReply>> = {
  11: perm('5.1.3', 'envelope address too long for qq'),
  31: perm('5.3.0', 'mail server permanently rejected message'),
  51: temp('4.3.0', 'qq out of memory'),
  52: temp('4.3.0', 'qq timeout'),
  53: temp('4.3.0', 'qq write error or disk full'),
  54: temp('4.3.0', 'qq read error'),
  55: temp('4.3.0', 'qq unable to read configuration'),
  56: temp('4.3.0', 'qq trouble making network connection'),
  61: temp('4.3.0', 'qq trouble in home directory'),
  62: temp('4.3.0', 'qq trouble creating files in queue'),
  63: temp('4.3.0', 'qq trouble creating files in queue'),
  64: temp('4.3.0', 'qq trouble creating files in queue'),
  65: temp('4.3.0', 'qq trouble creating files in queue'),
  66: temp('4.3.0', 'qq trouble creating files in queue'),
  71: temp('4.3.0', 'mail server temporarily rejected message'),
  72: temp('4.4.1', 'connection to mail server timed out'),
  73: temp('4.4.1', 'connection to mail server rejected'),
  74: temp('4.4.2', 'communication with mail server failed'),
  81: temp('4.3.0', 'qq internal bug'),
  91: temp('4.3.0', 'qq internal bug'),
}

/** The reply for a qmail-queue exit code; 0 is handled by the caller. */
export function qmailQueueReply(code: number): QqReply {
  const known = exitReplies[code]
  if (known !== undefined) return known
  // qmail-queue(8): "Exit codes 11 through 40 indicate permanent failure."
  if (code >= 11 && code <= 40) return perm('5.3.0', 'qq permanent problem')
  return temp('4.3.0', 'qq temporary problem')
}

const toVerdict = (r: QqReply): Verdict => {
  const reply = { code: r.code, enhanced: r.enhanced, text: `${r.text} (#${r.enhanced})` }
  return r.code === 554 ? reject(reply) : defer(reply)
}

/** The qmail-queue envelope: `F<sender>\0`, `T<rcpt>\0` per recipient, then a final `\0`. */
export function qmailEnvelope(from: string, to: readonly string[]): Buffer {
  return Buffer.from(`F${from}\0${to.map((t) => `T${t}\0`).join('')}\0`, 'utf8')
}

/** A Message-ID fit to quote in a reply: one line, printable, bounded. */
function replyMessageId(raw: string | undefined): string {
  const id = (raw ?? '')
    .trim()
    .replace(/[^\x21-\x7e]/g, '')
    .slice(0, 200)
  if (id === '') return '<>'
  return /^<.*>$/.test(id) ? id : `<${id}>`
}

export default definePlugin({
  name: 'queue/qmail-queue',
  description: 'hands the message to qmail-queue (message on fd 0, envelope on fd 1)',
  options: {
    path: opt.optionalString({ positional: 0, description: 'qmail-queue program (env QMAILQUEUE overrides)' }),
    timeout: opt.number({
      default: 300,
      min: 1,
      max: 3000,
      description: 'seconds before qmail-queue is killed (451)',
    }),
  },
  // Our own `timeout` answers first; the host's limit is only a backstop.
  timeoutMs: 3_100_000,
  async setup({ options, server, log, paths }) {
    const configured =
      process.env.QMAILQUEUE || options.path || join(process.env.QMAIL || '/var/qmail', 'bin', 'qmail-queue')
    const program = await findProgram(configured, paths)
    if (program === undefined) throw new Error(`qmail-queue program ${configured} is missing or not executable`)
    log.info(`queueing with ${program}`)
    let seq = 0

    return {
      hooks: {
        queue: async (ctx, msg) => {
          const txn = ctx.transaction
          const envelope = mtaEnvelope(txn)
          if (envelope === undefined) return reject('Address not acceptable to qmail-queue')
          const { from, to } = envelope

          // The envelope goes on fd 1 from an unlinked file: small, and a plain descriptor works
          // with every qmail-queue and its wrappers (which read fd 1 with read(2)).
          const envPath = join(server.spoolDir, `qq-envelope-${process.pid}-${txn.id}-${++seq}`)
          await writeFile(envPath, qmailEnvelope(from, to), { mode: 0o600, flag: 'wx' })
          const envFile = await open(envPath, 'r').finally(() => unlink(envPath).catch(() => {}))
          const c = ctx.connection
          const outcome = await runChild({
            argv: [program],
            stdio: ['pipe', envFile.fd, 'pipe'],
            timeoutMs: options.timeout * 1000,
            signal: ctx.signal,
            // qmail-queue wrappers (simscan, qmail-scanner) read tcpserver's variables.
            env: {
              ...process.env,
              TCPREMOTEIP: c.remote.ip,
              TCPREMOTEPORT: String(c.remote.port),
              TCPLOCALIP: c.local.ip,
              TCPLOCALPORT: String(c.local.port),
              ...(c.remoteHost === undefined ? {} : { TCPREMOTEHOST: c.remoteHost }),
            },
            feed: async (child) => {
              if (child.stdin === null) throw new Error('no stdin pipe')
              await pipeline(msg.stream(), crlfToLf(), child.stdin)
            },
          }).finally(() => envFile.close())

          if (outcome.stderr !== '') ctx.log.warn(`qmail-queue said: ${outcome.stderr.trim().slice(0, 500)}`)
          if (outcome.spawnError !== undefined) {
            ctx.log.error(`cannot run ${program}: ${outcome.spawnError.message}`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'unable to exec qq (#4.3.0)' })
          }
          if (outcome.timedOut) {
            ctx.log.error(`${program} timed out after ${options.timeout}s and was killed`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'qq timeout (#4.3.0)' })
          }
          if (outcome.code === undefined) {
            ctx.log.error(`${program} was killed by ${outcome.signal ?? 'a signal'}`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'qq crashed (#4.3.0)' })
          }
          if (outcome.code !== 0) {
            const r = qmailQueueReply(outcome.code)
            ctx.log.warn(`${program} exited ${outcome.code}: ${r.text}`)
            return toVerdict(r)
          }
          // qmail_close: exit 0 after we failed to write everything is still a read error.
          if (outcome.feedError !== undefined) {
            ctx.log.error(`${program} exited 0 but the message was not fully written: ${outcome.feedError.message}`)
            return defer({ code: 451, enhanced: '4.3.0', text: 'qq read error (#4.3.0)' })
          }
          const msgId = replyMessageId(msg.headers.first('Message-ID'))
          ctx.result('pass', `queued by ${program} (pid ${outcome.pid ?? '?'})`)
          return accept({ code: 250, text: `Queued! ${Math.floor(Date.now() / 1000)} qp ${outcome.pid ?? 0} ${msgId}` })
        },
      },
    }
  },
})
