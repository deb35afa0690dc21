/**
 * A command-line virus scanner run for one message (clamscan, and qpsmtpd's vendor scanners:
 * Kaspersky, BitDefender, H+BEDV, McAfee): the message goes on the program's stdin, streamed
 * with back-pressure, or into a file whose path replaces `{file}` in the argument vector (never a
 * shell: argv items are passed as they are). The exit code says clean, infected or error, the
 * output names the viruses (verdict.ts). A program that cannot start, runs past its deadline, dies
 * of a signal, exits with another code, prints what contradicts its exit code, or stops reading
 * its stdin early (a scanner that skipped part of the message) is a ScannerError, never "clean".
 */
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { RunOptions } from '../../net/child-process.ts'
import type { ChildResult } from '../../net/index.ts'
import { printable, ScannerError } from '../exchange.ts'
import { type MessageFiles, writeMessageFile } from './message-file.ts'
import { type OutputRules, readOutput, type ScanVerdict } from './verdict.ts'

export interface ProgramScanner extends OutputRules {
  /** The argument vector: argv[0] the program; `{file}` anywhere is replaced by the message file's path. */
  readonly argv: readonly string[]
  /** Exit codes that mean clean, and that mean infected; any other is an error. */
  readonly cleanExit: readonly number[]
  readonly infectedExit: readonly number[]
}

export interface ProgramScanOptions {
  readonly run: (opts: RunOptions) => Promise<ChildResult>
  readonly timeoutMs: number
  readonly signal?: AbortSignal | undefined
  /** Where `{file}` is written (the spool directory), and with which mode (readable by a daemon's group). */
  readonly files: MessageFiles
}

/** The program's verdict on the message (`stream` yields its bytes, new on each call). */
export async function scanWithProgram(
  scanner: ProgramScanner,
  stream: () => Readable,
  o: ProgramScanOptions,
): Promise<ScanVerdict> {
  const usesFile = scanner.argv.some((a) => a.includes('{file}'))
  const file = usesFile ? await writeMessageFile(o.files, stream()) : undefined
  const program = scanner.argv[0] ?? ''
  try {
    const argv = file === undefined ? scanner.argv : scanner.argv.map((a) => a.replaceAll('{file}', file.path))
    const result = await o.run({
      argv,
      stdio: [usesFile ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeoutMs: o.timeoutMs,
      ...(o.signal === undefined ? {} : { signal: o.signal }),
      maxOutput: 65_536,
      ...(usesFile
        ? {}
        : {
            feed: async (child) => {
              if (child.stdin === null) throw new Error('no stdin pipe')
              await pipeline(stream(), child.stdin)
            },
          }),
    })
    return judge(scanner, program, result, o)
  } finally {
    await file?.remove()
  }
}

function judge(scanner: ProgramScanner, program: string, r: ChildResult, o: ProgramScanOptions): ScanVerdict {
  const output = `${r.stdout}\n${r.stderr}`
  if (r.spawnError !== undefined)
    throw new ScannerError('unreachable', `cannot run ${program}: ${r.spawnError.message}`)
  if (r.timedOut) throw new ScannerError('timeout', `${program} ran past ${o.timeoutMs} ms and was killed`)
  if (o.signal?.aborted) throw new ScannerError('aborted', `${program} stopped: ${String(o.signal.reason)}`)
  if (r.code === undefined) throw new ScannerError('closed', `${program} was killed by ${r.signal ?? 'a signal'}`)
  const clean = scanner.cleanExit.includes(r.code)
  const infected = scanner.infectedExit.includes(r.code)
  // A scanner read by its output (namesDecide) may name a virus with any exit code.
  const named =
    scanner.namesDecide === true && output.split(/\r?\n/).some((l) => scanner.virus.groups(l.trim()) !== undefined)
  if (!clean && !infected && !named)
    throw new ScannerError('refused', `${program} exited ${r.code}: "${printable(output.trim(), 300)}"`)
  const verdict = readOutput(clean && !named ? 'clean' : 'infected', output, scanner, program)
  if (verdict.kind === 'clean' && r.feedError !== undefined)
    throw new ScannerError('closed', `${program} said clean without reading the whole message (${r.feedError.message})`)
  return verdict
}
