/**
 * queue/exim-bsmtp: hands the message to Exim in batched SMTP mode (qpsmtpd `queue/exim-bsmtp`).
 * qpsmtpd arguments: `exim_path <path>` (default /usr/sbin/rsmtp, run with `-bS`). Extra options:
 * `exim_args` (arguments before `-bS`, e.g. `-C /etc/exim4/qt.conf -odq`) and `timeout` (seconds).
 *
 * One message per batch, written straight into Exim's stdin: HELO, MAIL, RCPT..., DATA with the
 * final message dot-stuffed (RFC 5321 §4.5.2), QUIT. Exim answers nothing on success and exits 0
 * once the message is in its spool; on error it prints one SMTP reply line and exits non-zero.
 * The qtsmtpd user must be in Exim's trusted_users, or Exim replaces the envelope sender.
 * Security: Exim runs from an argument vector; the envelope only ever travels as BSMTP bytes.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { dotStuff, mtaEnvelope } from '../../clients/mta-input/mta-input.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { opt } from '../../host/options.ts'
import { accept, defer, reject, type Verdict } from '../../host/verdict.ts'
import { type ChildOutcome, findProgram, runChild } from '../../net/child-process.ts'

/** The BSMTP lines that open a transaction for one message. */
export function bsmtpPreamble(helo: string, from: string, to: readonly string[]): Buffer {
  const lines = [`HELO ${helo}`, `MAIL FROM:<${from}>`, ...to.map((t) => `RCPT TO:<${t}>`), 'DATA']
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8')
}

/** Exim's answer as a verdict: exit 0 with no reply line is the only success. */
export function eximVerdict(o: ChildOutcome & { feedError: Error | undefined }, program: string): Verdict {
  const m = /^([245])(\d\d)[ -]([^\r\n]*)/m.exec(o.stdout)
  if (o.spawnError !== undefined) return defer(`Cannot run ${program}`)
  if (o.timedOut) return defer({ code: 451, enhanced: '4.4.2', text: 'Exim did not answer in time' })
  if (o.code === undefined) return defer({ code: 451, enhanced: '4.3.0', text: 'Exim crashed' })
  // A message we could not write in full is never a success, whatever Exim says.
  if (o.feedError !== undefined)
    return defer({ code: 451, enhanced: '4.3.0', text: 'Error handing the message to Exim' })
  if (o.code === 0 && m === null) return accept()
  if (m !== null && m[1] === '5') return reject({ code: Number(`5${m[2]}`), text: (m[3] ?? '').slice(0, 400) })
  if (m !== null && m[1] === '4') return defer({ code: Number(`4${m[2]}`), text: (m[3] ?? '').slice(0, 400) })
  return defer({ code: 451, enhanced: '4.3.0', text: 'Exim refused the message; try again later' })
}

export default definePlugin({
  name: 'queue/exim-bsmtp',
  description: 'hands the message to Exim in batched SMTP mode (exim -bS)',
  options: {
    exim_path: opt.string({ default: '/usr/sbin/rsmtp', description: 'Exim binary (run with -bS)' }),
    exim_args: opt.list({ default: [], description: 'arguments before -bS, e.g. "-C /etc/exim4/qt.conf -odq"' }),
    timeout: opt.number({ default: 300, min: 1, max: 3000, description: 'seconds before Exim is killed (451)' }),
  },
  // Our own `timeout` answers first; the host's limit is only a backstop.
  timeoutMs: 3_100_000,
  async setup({ options, server, log, paths }) {
    const program = await findProgram(options.exim_path, paths)
    if (program === undefined)
      throw new Error(`Exim not found at ${options.exim_path}; set exim_path in config/plugins`)
    const argv = [program, ...options.exim_args, '-bS']
    log.info(`queueing with ${argv.join(' ')}`)

    return {
      hooks: {
        queue: async (ctx, msg) => {
          const txn = ctx.transaction
          const envelope = mtaEnvelope(txn)
          if (envelope === undefined) return reject('Address not acceptable to Exim')
          const { from, to } = envelope
          const outcome = await runChild({
            argv,
            stdio: ['pipe', 'pipe', 'pipe'],
            timeoutMs: options.timeout * 1000,
            signal: ctx.signal,
            feed: async (child) => {
              if (child.stdin === null) throw new Error('no stdin pipe')
              const preamble = bsmtpPreamble(server.me, from, to)
              async function* batch() {
                yield preamble
                yield* msg.stream().pipe(dotStuff())
                yield QUIT
              }
              await pipeline(Readable.from(batch()), child.stdin)
            },
          })
          const v = eximVerdict(outcome, program)
          const said = outcome.stdout.trim().split('\n')[0] ?? ''
          if (v.kind === 'accept') {
            ctx.result('pass', `queued by ${program} -bS (pid ${outcome.pid ?? '?'})`)
            return accept({ code: 250, text: `Queued as ${txn.id} (Exim BSMTP)` })
          }
          ctx.log.warn(
            `${program} -bS: exit ${outcome.code ?? outcome.signal ?? 'none'}${outcome.timedOut ? ' (timed out)' : ''}` +
              `${said === '' ? '' : `, said ${said}`}${outcome.feedError ? `, write error ${outcome.feedError.message}` : ''}`,
          )
          return v
        },
      },
    }
  },
})

const QUIT = Buffer.from('QUIT\r\n')
