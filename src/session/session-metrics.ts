/**
 * What sessions count, per listener: replies by phase and code class, bytes received,
 * messages accepted, TLS handshakes by version and cipher, AUTH outcomes by mechanism, queue
 * hand-offs by plugin and outcome with their time. Children are bound once per listener (or at
 * the first occurrence of a TLS cipher, an AUTH mechanism, a queue plugin), so an event costs a
 * Map lookup at most and an increment.
 *
 * `onVerdict` hears each refusal and each accepted message (the status page's recent verdicts):
 * one small object per refused command or message, nothing per accepted command.
 */
import type { Connection, TlsInfo } from '../host/context.ts'
import type { Counter, Histogram, Metrics } from '../metrics/index.ts'
import type { Reply } from '../protocol/reply.ts'
import type { CommandInProgress } from './log-lines.ts'

/** A refusal or an accepted message, as the status page lists it. */
export interface RecentVerdict {
  /** Milliseconds since the epoch. */
  readonly at: number
  readonly session: string
  readonly ip: string
  readonly helo: string | undefined
  /** The command answered (CONNECT, MAIL, RCPT, DATA, ...). */
  readonly command: string
  /** The reply's code, enhanced code and first line, cut to 200 characters. */
  readonly reply: string
  /** The plugin that refused, or the queue plugin that took the message; undefined: the core. */
  readonly plugin: string | undefined
  readonly accepted: boolean
}

export type QueueOutcome = 'accepted' | 'deferred' | 'rejected' | 'declined'
export type AuthOutcome = 'success' | 'failure' | 'tempfail' | 'aborted'

/** The phases replies are counted in, from the command they answer. */
const phases = ['connect', 'helo', 'mail', 'rcpt', 'data', 'auth', 'starttls', 'quit', 'other', 'session'] as const
type ReplyPhase = (typeof phases)[number]
const phaseOfVerb: ReadonlyMap<string, number> = new Map(
  (
    [
      ['CONNECT', 'connect'],
      ['HELO', 'helo'],
      ['EHLO', 'helo'],
      ['MAIL', 'mail'],
      ['RCPT', 'rcpt'],
      ['DATA', 'data'],
      ['BDAT', 'data'],
      ['AUTH', 'auth'],
      ['STARTTLS', 'starttls'],
      ['QUIT', 'quit'],
    ] as const
  ).map(([verb, phase]: readonly [string, ReplyPhase]) => [verb, phases.indexOf(phase)]),
)
const otherPhase = phases.indexOf('other')
const sessionPhase = phases.indexOf('session')
const classes = ['2xx', '3xx', '4xx', '5xx'] as const

/** The metric families; declared once per registry (declaring again returns the same). */
export function declareSessionMetrics(metrics: Metrics) {
  return {
    replies: metrics.counter({
      name: 'qtsmtpd_replies_total',
      help: 'Replies sent, by the phase of the command answered (session: timeouts, shutdown) and code class',
      labelNames: ['listener', 'phase', 'class'],
    }),
    bytes: metrics.counter({
      name: 'qtsmtpd_received_bytes_total',
      help: 'Bytes read from clients (after TLS decryption)',
      labelNames: ['listener'],
    }),
    accepted: metrics.counter({
      name: 'qtsmtpd_messages_accepted_total',
      help: 'Messages accepted (a queue plugin took them, 250 sent)',
      labelNames: ['listener'],
    }),
    tls: metrics.counter({
      name: 'qtsmtpd_tls_handshakes_total',
      help: 'TLS handshakes completed (STARTTLS and implicit TLS), by protocol version and cipher',
      labelNames: ['listener', 'version', 'cipher'],
    }),
    tlsFailures: metrics.counter({
      name: 'qtsmtpd_tls_handshake_failures_total',
      help: 'TLS handshakes that failed or timed out',
      labelNames: ['listener'],
    }),
    auth: metrics.counter({
      name: 'qtsmtpd_auth_attempts_total',
      help: 'AUTH exchanges by mechanism and outcome (aborted: cancelled or malformed by the client)',
      labelNames: ['listener', 'mechanism', 'outcome'],
    }),
    queue: metrics.counter({
      name: 'qtsmtpd_queue_handoffs_total',
      help: 'Messages handed to the queue hook, by the plugin that decided and the outcome',
      labelNames: ['plugin', 'outcome'],
    }),
    queueSeconds: metrics.histogram({
      name: 'qtsmtpd_queue_handoff_seconds',
      help: 'Time the queue hook took to hand a message off, by the plugin that decided',
      labelNames: ['plugin'],
    }),
  }
}

type Families = ReturnType<typeof declareSessionMetrics>

export class SessionMetrics {
  readonly listener: string
  readonly #families: Families
  /** phases × classes, flattened. */
  readonly #replies: Counter[]
  readonly #bytes: Counter
  readonly #accepted: Counter
  readonly #tlsFailures: Counter
  readonly #lazy = new Map<string, Counter>()
  readonly #queueSeconds = new Map<string, Histogram>()
  readonly #onVerdict: ((v: RecentVerdict) => void) | undefined

  constructor(metrics: Metrics, listener: string, onVerdict?: (v: RecentVerdict) => void) {
    this.listener = listener
    const f = (this.#families = declareSessionMetrics(metrics))
    this.#replies = phases.flatMap((phase) => classes.map((c) => f.replies.labels({ listener, phase, class: c })))
    this.#bytes = f.bytes.labels({ listener })
    this.#accepted = f.accepted.labels({ listener })
    this.#tlsFailures = f.tlsFailures.labels({ listener })
    this.#onVerdict = onVerdict
  }

  /** Every reply; `verb` is the command it answers (undefined: none, as for a timeout). */
  reply(verb: string | undefined, code: number): void {
    const phase = verb === undefined ? sessionPhase : (phaseOfVerb.get(verb) ?? otherPhase)
    const cls = Math.min(Math.max(Math.floor(code / 100), 2), 5) - 2
    this.#replies[phase * classes.length + cls]?.inc()
  }

  received(bytes: number): void {
    this.#bytes.inc(bytes)
  }

  messageAccepted(): void {
    this.#accepted.inc()
  }

  tlsEstablished(info: TlsInfo): void {
    this.#child(`tls\u0000${info.version}\u0000${info.cipher}`, () =>
      this.#families.tls.labels({ listener: this.listener, version: info.version, cipher: info.cipher }),
    ).inc()
  }

  tlsFailed(): void {
    this.#tlsFailures.inc()
  }

  auth(mechanism: string, outcome: AuthOutcome): void {
    this.#child(`auth\u0000${mechanism}\u0000${outcome}`, () =>
      this.#families.auth.labels({ listener: this.listener, mechanism, outcome }),
    ).inc()
  }

  queued(plugin: string, outcome: QueueOutcome, seconds: number): void {
    this.#child(`queue\u0000${plugin}\u0000${outcome}`, () => this.#families.queue.labels({ plugin, outcome })).inc()
    let h = this.#queueSeconds.get(plugin)
    if (h === undefined) this.#queueSeconds.set(plugin, (h = this.#families.queueSeconds.labels({ plugin })))
    h.observe(seconds)
  }

  /** Told each refusal and accepted message (the status page's recent verdicts), when anyone listens. */
  get onVerdict(): ((v: RecentVerdict) => void) | undefined {
    return this.#onVerdict
  }

  #child(key: string, make: () => Counter): Counter {
    let c = this.#lazy.get(key)
    if (c === undefined) this.#lazy.set(key, (c = make()))
    return c
  }
}

/** The reply as the status page shows it: code, enhanced code, first line; at most 200 characters. */
const replySummary = (r: Reply): string =>
  `${r.code}${r.enhanced === undefined ? '' : ` ${r.enhanced}`} ${r.lines[0] ?? ''}`.slice(0, 200)

/** A final reply: a refusal, or an accepted message, goes to the recent verdicts when anyone listens. */
export function tellVerdict(
  s: { readonly metrics: SessionMetrics | undefined; readonly connection: Connection },
  command: CommandInProgress,
  r: Reply,
  refusedBy: string | undefined,
): void {
  const onVerdict = s.metrics?.onVerdict
  const accepted = r.code < 400 && command.message !== undefined
  if (onVerdict === undefined || (r.code < 400 && !accepted)) return
  onVerdict({
    at: Date.now(),
    session: s.connection.id,
    ip: s.connection.remote.ip,
    helo: s.connection.helo?.host,
    command: command.verb,
    reply: replySummary(r),
    plugin: accepted ? command.message?.queue : refusedBy,
    accepted,
  })
}
