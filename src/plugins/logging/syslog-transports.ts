/**
 * Where logging/syslog's messages go, none of which ever blocks or grows without bound: past
 * `maxQueue` bytes waiting (receiver down or slow) messages are dropped and counted, and a
 * notice with the count goes first once the receiver takes messages again. The first failure
 * of an outage is written to stderr (not to the log: that could be this very plugin).
 * - local: the syslog socket (/dev/log) is a Unix datagram socket, which Node cannot open, so
 *   util-linux logger (an argument vector, no shell) writes each line of its stdin to it as
 *   syslog(3) does; restarted after a back-off when it exits (the daemon restarted).
 * - udp: a connected UDP socket, one message per datagram (RFC 5426).
 * - tcp: one connection, reconnected after a back-off (1 s doubling to 30 s); messages wait
 *   in a bounded queue while it is down (RFC 6587 framing, done by the caller).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { isIPv6, type Socket, connect as tcpConnect } from 'node:net'

export interface SyslogTransport {
  send(record: Buffer): void
  close(): Promise<void>
}

export interface TransportOptions {
  /** The plugin instance, for stderr. */
  readonly name: string
  readonly maxQueue: number
  /** The record announcing `count` dropped messages. */
  readonly droppedNotice: (count: number) => Buffer
}

const firstDelayMs = 1000
const maxDelayMs = 30_000

/** Counts drops and reports an outage once on stderr. */
class Outage {
  dropped = 0
  #reported = false
  readonly #opts: TransportOptions
  constructor(opts: TransportOptions) {
    this.#opts = opts
  }
  report(what: string): void {
    if (this.#reported) return
    this.#reported = true
    process.stderr.write(`${this.#opts.name}: ${what}; retrying, dropping messages past ${this.#opts.maxQueue} bytes\n`)
  }
  /** The notice to send before the next message, once after an outage that dropped some. */
  over(): Buffer | undefined {
    this.#reported = false
    if (this.dropped === 0) return undefined
    const notice = this.#opts.droppedNotice(this.dropped)
    this.dropped = 0
    return notice
  }
}

export function tcpTransport(host: string, port: number, opts: TransportOptions): SyslogTransport {
  const outage = new Outage(opts)
  let queue: Buffer[] = []
  let queued = 0
  let socket: Socket | undefined
  let connected = false
  let closed = false
  let delay = firstDelayMs
  let timer: NodeJS.Timeout | undefined

  const open = (): void => {
    timer = undefined
    const s = tcpConnect({ host, port })
    socket = s
    s.on('connect', () => {
      connected = true
      delay = firstDelayMs
      // The queue holds the oldest messages (newer ones were dropped), so it goes first.
      for (const record of queue) s.write(record)
      queue = []
      queued = 0
      const notice = outage.over()
      if (notice !== undefined) s.write(notice)
    })
    s.on('error', (e) => outage.report(`cannot send to ${host}:${port} over TCP: ${e.message}`))
    s.on('close', () => {
      connected = false
      socket = undefined
      if (closed) return
      timer = setTimeout(open, delay)
      timer.unref()
      delay = Math.min(delay * 2, maxDelayMs)
    })
  }
  open()

  return {
    send(record) {
      if (connected && socket !== undefined && socket.writableLength <= opts.maxQueue) socket.write(record)
      else if (!connected && queued + record.length <= opts.maxQueue) {
        queue.push(record)
        queued += record.length
      } else outage.dropped++
    },
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      const s = socket
      if (s === undefined) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => s.destroy(), 2000)
        s.once('close', () => {
          clearTimeout(force)
          resolve()
        })
        if (connected) s.end()
        else s.destroy()
      })
    },
  }
}

export function udpTransport(host: string, port: number, opts: TransportOptions): SyslogTransport {
  const outage = new Outage(opts)
  const socket: UdpSocket = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  let connected = false
  let pending: Buffer[] = []
  let inFlight = 0
  const transmit = (record: Buffer): void => {
    if (inFlight * 1500 > opts.maxQueue) {
      outage.dropped++
      return
    }
    inFlight++
    socket.send(record, (e) => {
      inFlight--
      if (e) {
        outage.dropped++
        outage.report(`cannot send to ${host}:${port} over UDP: ${e.message}`)
      }
    })
  }
  socket.on('error', (e) => outage.report(`cannot send to ${host}:${port} over UDP: ${e.message}`))
  socket.connect(port, host, () => {
    connected = true
    for (const record of pending) transmit(record)
    pending = []
  })
  socket.unref()
  return {
    send(record) {
      if (connected) {
        // A refused datagram (ICMP port unreachable) fails a later send: the outage ends with a success.
        if (outage.dropped > 0 && inFlight === 0) {
          const notice = outage.over()
          if (notice !== undefined) transmit(notice)
        }
        transmit(record)
      } else if (pending.length < 100) pending.push(record)
      else outage.dropped++
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  }
}

/** `logger` reads `<PRI>message` lines and sends each to the socket in syslog(3)'s format. */
export function localTransport(
  logger: string,
  socketPath: string,
  ident: string,
  maxMessage: number,
  opts: TransportOptions,
): SyslogTransport {
  const outage = new Outage(opts)
  const args = [
    '--socket-errors=on',
    '--prio-prefix',
    '--tag',
    ident,
    `--id=${process.pid}`,
    '--size',
    String(maxMessage),
    '--socket',
    socketPath,
  ]
  let child: ChildProcess | undefined
  let closed = false
  let delay = firstDelayMs
  let timer: NodeJS.Timeout | undefined

  const start = (): void => {
    timer = undefined
    const startedAt = Date.now()
    const c = spawn(logger, args, { stdio: ['pipe', 'ignore', 'pipe'] })
    child = c
    let errors = ''
    c.stderr?.on('data', (d: Buffer) => {
      if (errors.length < 1000) errors += d.toString()
    })
    c.stdin?.on('error', () => {})
    c.on('error', (e) => outage.report(`cannot run ${logger}: ${e.message}`))
    c.on('spawn', () => {
      const notice = outage.over()
      if (notice !== undefined) c.stdin?.write(notice)
    })
    c.on('close', (code) => {
      if (child === c) child = undefined
      if (closed) return
      outage.report(`${logger} exited (${code ?? 'signal'}) writing to ${socketPath}: ${errors.trim() || 'no message'}`)
      if (Date.now() - startedAt > 10_000) delay = firstDelayMs
      timer = setTimeout(start, delay)
      timer.unref()
      delay = Math.min(delay * 2, maxDelayMs)
    })
  }
  start()

  return {
    send(record) {
      const stdin = child?.stdin
      if (stdin?.writable && stdin.writableLength <= opts.maxQueue) stdin.write(record)
      else outage.dropped++
    },
    close: () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      const c = child
      if (c === undefined) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => c.kill('SIGKILL'), 2000)
        c.once('close', () => {
          clearTimeout(force)
          resolve()
        })
        c.stdin?.end()
      })
    },
  }
}
