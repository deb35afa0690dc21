/**
 * Maildir sub-directory names from client-supplied addresses (queue/maildir's %l, %d, %u).
 *
 * qpsmtpd replaces every character outside `-A-Za-z0-9+_.,@=` with `_`, which is safe but lossy
 * (`a/b` and `a_b` share a mailbox). We keep that safe set, so ordinary addresses give the same
 * directories as qpsmtpd, and percent-encode everything else as `%XX` per UTF-8 byte (reversible,
 * collision-free). A leading dot and a dot after a dot are encoded too (`%2E`), so an expansion is
 * never `.`, `..`, a hidden name or a path; an empty local part becomes `%empty`.
 * Security: `"../../etc"@x` becomes `%2E%2E%2F.%2E%2Fetc`, one name inside the maildir root.
 */

const SAFE = /^[-A-Za-z0-9+_.,@=]$/

/** Encodes one address part into a single safe path component (see the file header). */
export function encodePathComponent(text: string): string {
  if (text === '') return '%empty'
  let out = ''
  let prev = ''
  for (const ch of text) {
    const dotUnsafe = ch === '.' && (prev === '' || prev === '.')
    if (SAFE.test(ch) && !dotUnsafe) out += ch
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`
    prev = ch
  }
  return out
}

export interface PatternAddress {
  readonly local: string
  /** undefined for the bare `<postmaster>`; the caller passes its own host name then. */
  readonly domain: string
}

/** Expands `%l`, `%d`, `%u` (and `%%`) in a sub-directory pattern; the domain is lower-cased. */
export function expandPattern(pattern: string, addr: PatternAddress): string {
  const l = encodePathComponent(addr.local)
  const d = encodePathComponent(addr.domain.toLowerCase())
  return pattern.replace(/%([ldu%])/g, (_, c: string) =>
    c === 'l' ? l : c === 'd' ? d : c === 'u' ? `${l}@${d}` : '%',
  )
}

/** Checks an operator's pattern at start-up: relative, with a substitution, no `.`/`..` components. */
export function checkPattern(pattern: string): string | undefined {
  if (!/%[ldu]/.test(pattern)) return 'the sub-directory pattern needs %l, %d or %u'
  if (pattern.startsWith('/')) return 'the sub-directory pattern must be relative to the maildir path'
  if (pattern.includes('\0')) return 'the sub-directory pattern contains NUL'
  if (pattern.split('/').some((c) => c === '.' || c === '..'))
    return 'the sub-directory pattern must not contain "." or ".." components'
  return undefined
}
