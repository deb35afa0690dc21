/**
 * How a virus scanner's answer (a program's exit code and output, or a daemon's reply line) is
 * read into a verdict, the same way for every vendor: what means clean, what means infected,
 * where the virus names are, and that anything else is an error, never "clean". Shared by the
 * program and socket clients of this folder.
 */
import { printable, ScannerError } from '../exchange.ts'

/** A line pattern: the capture groups of its first match, or undefined (a RegExp or an operator's pattern). */
export interface LinePattern {
  groups(line: string): readonly string[] | undefined
}

/** A RegExp as a LinePattern. */
export const linePattern = (re: RegExp): LinePattern => ({
  groups: (line) => {
    const m = re.exec(line)
    return m === null ? undefined : m.slice(1).map((g) => g ?? '')
  },
})

export interface OutputRules {
  /** A line naming a virus: its first capture group is the name. */
  readonly virus: LinePattern
  /** With it, a clean answer must also have a line that matches (clamscan's `stdin: OK`). */
  readonly clean?: LinePattern | undefined
  /** A virus line means infected whatever the exit code (scanners read by their output only). */
  readonly namesDecide?: boolean | undefined
  /** Lines that refuse the message with a text of their own (uvscan's password-protected archives). */
  readonly refusals?: readonly { readonly pattern: LinePattern; readonly text: string }[] | undefined
}

export type ScanVerdict =
  | { readonly kind: 'clean' }
  | { readonly kind: 'infected'; readonly names: readonly string[] }
  | { readonly kind: 'refuse'; readonly text: string }

/** Virus names are printable ASCII (they go into headers and SMTP replies), at most 200 characters. */
const NAME = /^[\x21-\x7e][\x20-\x7e]{0,199}$/

/**
 * Reads `output` (lines) with a clean / infected / other outcome already known from the exit code
 * or the reply. Contradictions are errors: "infected" with no virus named, "clean" with a virus
 * named or without the clean line the rules require.
 */
export function readOutput(
  outcome: 'clean' | 'infected',
  output: string,
  rules: OutputRules,
  where: string,
): ScanVerdict {
  const lines = output.split(/\r?\n/).map((l) => l.trim())
  for (const r of rules.refusals ?? [])
    if (lines.some((l) => r.pattern.groups(l) !== undefined)) return { kind: 'refuse', text: r.text }
  const names = [
    ...new Set(
      lines.map((l) => rules.virus.groups(l)?.[0]?.trim()).filter((n): n is string => n !== undefined && n !== ''),
    ),
  ]
  const bad = names.find((n) => !NAME.test(n))
  if (bad !== undefined) throw new ScannerError('malformed', `${where} named a virus "${printable(bad)}"`)
  if (outcome === 'infected' || (rules.namesDecide && names.length > 0)) {
    if (names.length === 0)
      throw new ScannerError('malformed', `${where} reported a virus but named none: "${printable(output, 300)}"`)
    return { kind: 'infected', names }
  }
  if (names.length > 0)
    throw new ScannerError('malformed', `${where} reported clean but named a virus: "${printable(output, 300)}"`)
  if (rules.clean !== undefined && !lines.some((l) => rules.clean?.groups(l) !== undefined))
    throw new ScannerError('malformed', `${where} reported clean without saying so: "${printable(output, 300)}"`)
  return { kind: 'clean' }
}
