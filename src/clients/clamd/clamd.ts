/**
 * A clamd client (ClamAV's scanning daemon, clamd.conf(5) and clamd(8) "COMMANDS"): the
 * message goes over `zINSTREAM` as length-prefixed chunks, streamed from the spool with
 * back-pressure, so clamd needs no access to our files and nothing is loaded whole. Every call
 * opens its own connection (clamd closes it after each reply) under one deadline.
 *
 * clamd refuses a stream longer than its StreamMaxLength with "INSTREAM size limit exceeded.
 * ERROR" and closes the connection: that is an error (`refused`), never a clean result; callers
 * skip messages above their own `max_size` before sending.
 */
import type { ConnectTarget } from '../../net/index.ts'
import { type Connector, exchange, ScannerError, printable as show, writeAll, writeOne } from '../exchange.ts'

export interface ClamdOptions {
  readonly connect: Connector
  /** clamd's LocalSocket (`{ path }`) or TCPSocket/TCPAddr (`{ host, port }`). */
  readonly target: ConnectTarget
  /** For connect, stream and reply together. */
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  /** Largest reply accepted (default 64 KiB). */
  readonly maxReplyBytes?: number
}

export type ClamdVerdict =
  | { readonly infected: false }
  /** `names`: the signatures found (several with clamd's AllMatchScans). */
  | { readonly infected: true; readonly names: readonly string[] }

/** Largest INSTREAM chunk we send; clamd reads chunks of any size up to StreamMaxLength. */
const CHUNK = 64 * 1024
const NUL = 0

/** Scans a stream of bytes (the whole message) with clamd. */
export async function clamdScan(source: AsyncIterable<Buffer | string>, o: ClamdOptions): Promise<ClamdVerdict> {
  const reply = await exchange({
    connect: o.connect,
    target: o.target,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    maxReplyBytes: o.maxReplyBytes ?? 64 * 1024,
    async write(socket, signal) {
      await writeOne(socket, 'zINSTREAM\0', signal)
      await writeAll(socket, source, signal, frame)
      await writeOne(socket, Buffer.alloc(4), signal)
    },
    // clamd closes the connection after its reply (several \0-ended lines with AllMatchScans).
    complete: (received, ended) => (ended && received.length > 0 ? received.length : undefined),
  })
  return parseClamdReply(reply)
}

/** clamd's version line (`ClamAV 1.4.6/27470/Tue Dec  1 09:23:51 2026`). */
export async function clamdVersion(o: ClamdOptions): Promise<string> {
  const reply = await exchange({
    connect: o.connect,
    target: o.target,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    maxReplyBytes: 1024,
    write: (socket, signal) => writeOne(socket, 'zVERSION\0', signal),
    complete: (received, ended) => {
      const end = received.indexOf(NUL)
      return end >= 0 ? end + 1 : ended && received.length > 0 ? received.length : undefined
    },
  })
  const line = lines(reply)[0] ?? ''
  if (!/^ClamAV [\x20-\x7e]+$/.test(line)) throw new ScannerError('malformed', `clamd VERSION answered "${show(line)}"`)
  return line
}

/** The 4-byte big-endian length, then the bytes; pieces above CHUNK are split. */
function frame(chunk: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < chunk.length; at += CHUNK) {
    const piece = chunk.subarray(at, at + CHUNK)
    const length = Buffer.alloc(4)
    length.writeUInt32BE(piece.length)
    out.push(length, piece)
  }
  return out
}

const lines = (reply: Buffer): string[] =>
  reply
    .toString('latin1')
    .split(/[\0\n]/)
    .map((l) => l.trim())
    .filter((l) => l !== '')

/**
 * `stream: OK`, `stream: NAME FOUND` (one or more), or an error: `... ERROR`, anything else.
 * Signature names are printable ASCII (they end up in headers and SMTP replies).
 */
export function parseClamdReply(reply: Buffer): ClamdVerdict {
  const all = lines(reply)
  if (all.length === 0) throw new ScannerError('malformed', 'clamd sent an empty reply')
  const names: string[] = []
  for (const line of all) {
    if (/ ERROR$/.test(line)) throw new ScannerError('refused', `clamd: ${show(line)}`)
    const found = /^(?:stream|fd\[\d+\]|\S+): ([\x21-\x7e][\x20-\x7e]{0,200}) FOUND$/.exec(line)
    if (found !== null) {
      names.push(found[1] as string)
      continue
    }
    if (!/^(?:stream|\S+): OK$/.test(line)) throw new ScannerError('malformed', `clamd answered "${show(line)}"`)
  }
  return names.length > 0 ? { infected: true, names } : { infected: false }
}
