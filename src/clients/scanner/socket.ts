/**
 * A scanning daemon that is handed a file name over a socket and answers with one line (Sophie,
 * the SOPHOS daemon qpsmtpd's `virus/sophie` spoke to: the path and a newline in, `1:NAME`,
 * `0` or `-1:error` out). The message is written to a file the daemon can read
 * (message-file.ts), removed after the answer. An answer that is neither the clean nor the
 * infected form is an error, never "clean".
 */
import type { Readable } from 'node:stream'
import type { ConnectTarget } from '../../net/index.ts'
import { type Connector, exchange, printable, ScannerError, writeOne } from '../exchange.ts'
import { type MessageFiles, writeMessageFile } from './message-file.ts'
import { type LinePattern, readOutput, type ScanVerdict } from './verdict.ts'

export interface SocketScanner {
  readonly target: ConnectTarget
  /** What is sent; `{file}` becomes the message file's path (which must not contain a newline). */
  readonly request: string
  /** The infected answer; its first group names the viruses (comma-separated). */
  readonly infected: LinePattern
  readonly clean: LinePattern
}

export interface SocketScanOptions {
  readonly connect: Connector
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  readonly files: MessageFiles
}

export async function scanWithSocket(
  scanner: SocketScanner,
  stream: () => Readable,
  o: SocketScanOptions,
): Promise<ScanVerdict> {
  const file = await writeMessageFile(o.files, stream())
  try {
    if (/[\r\n]/.test(file.path)) throw new ScannerError('refused', 'the message file path contains a line break')
    const reply = await exchange({
      connect: o.connect,
      target: scanner.target,
      timeoutMs: o.timeoutMs,
      signal: o.signal,
      maxReplyBytes: 4096,
      write: (socket, signal) => writeOne(socket, scanner.request.replaceAll('{file}', file.path), signal),
      complete: (received, ended) => {
        const nl = received.indexOf(0x0a)
        return nl >= 0 ? nl + 1 : ended && received.length > 0 ? received.length : undefined
      },
    })
    const line = reply.toString('latin1').trim()
    const where = `scanner at ${'path' in scanner.target ? scanner.target.path : scanner.target.host}`
    const names = scanner.infected.groups(line)
    if (names !== undefined) {
      const list = (names[0] ?? '').split(',').map((n) => n.trim())
      return readOutput('infected', list.join('\n'), { virus: { groups: (l) => (l === '' ? undefined : [l]) } }, where)
    }
    if (scanner.clean.groups(line) !== undefined) return { kind: 'clean' }
    throw new ScannerError('refused', `${where} answered "${printable(line)}"`)
  } finally {
    await file.remove()
  }
}
