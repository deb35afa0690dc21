/**
 * `qtsmtpd karma --config DIR list|search|capture|release ...` and
 * `qtsmtpd import-greylist|import-karma --config DIR SOURCE`: the arguments only; the work is
 * server/state-commands.ts.
 */
import { parseArgs } from 'node:util'
import { importCommand, karmaCommand, StateUsageError } from '../server/state-commands.ts'

export const stateCommands = ['karma', 'import-greylist', 'import-karma'] as const
export type StateCommand = (typeof stateCommands)[number]

export const stateUsage = `Usage: qtsmtpd karma --config DIR list
       qtsmtpd karma --config DIR search naughty|nice|both|ADDRESS
       qtsmtpd karma --config DIR capture ADDRESS     (into the penalty box now)
       qtsmtpd karma --config DIR release ADDRESS     (out of it, naughty count forgotten)
       qtsmtpd import-greylist --config DIR SOURCE
       qtsmtpd import-karma --config DIR SOURCE

  Work on the store the configuration's karma and greylisting plugins use, while the server
  runs. SOURCE is qpsmtpd's database: its DBM file (greylist.dbm, karma.dbm; read with perl's
  AnyDBM_File) or the redis:// URL of the Redis it kept them in.

  --config DIR   the qpsmtpd-layout configuration directory
`

export const isStateCommand = (word: string | undefined): word is StateCommand =>
  (stateCommands as readonly string[]).includes(word ?? '')

/** Runs the command; the text to print. Throws StateUsageError for arguments that make no sense. */
export async function runStateCommand(command: StateCommand, argv: readonly string[]): Promise<string> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (e) {
    throw new StateUsageError(`${command}: ${(e as Error).message}`)
  }
  const configDir = parsed.values.config
  if (configDir === undefined) throw new StateUsageError(`${command}: --config DIR is required`)
  if (command === 'karma') return karmaCommand(configDir, parsed.positionals)
  const [source, ...extra] = parsed.positionals
  if (source === undefined || extra.length > 0) throw new StateUsageError(`${command}: one SOURCE, please`)
  return importCommand(command === 'import-greylist' ? 'greylist' : 'karma', configDir, source)
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: { config: { type: 'string', short: 'c' } },
    allowPositionals: true,
    strict: true,
  })
}
