/**
 * Query names on the wire (RFC 1035 §3.1): labels of 1 to 63 octets, 255 octets in all.
 * We encode names ourselves because mail brings odd ones: SPF macros and DNS lists build names
 * with `:`, `_`, `+` or spaces, which are legal DNS octets (RFC 2181 §11) but which resolvers
 * built for host names refuse. Non-ASCII labels become A-labels (RFC 5891) where they are valid
 * IDN labels, and are sent as UTF-8 octets otherwise. No backslash escapes: a dot always
 * separates labels.
 */
import { domainToASCII } from 'node:url'

/** The name as sent and as the cache keys it: no trailing dot, lowercase ASCII, A-labels. */
export type QueryName = { readonly text: string; readonly wire: Buffer }

/** A name that cannot be sent: the caller's answer is NXDOMAIN, as no such name can exist. */
export function encodeQueryName(name: string): QueryName | undefined {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name
  if (trimmed === '') return { text: '.', wire: Buffer.from([0]) }
  const labels: Buffer[] = []
  const texts: string[] = []
  let size = 1
  for (const label of trimmed.split('.')) {
    const text = asciiLabel(label)
    const bytes = Buffer.from(text, 'utf8')
    if (bytes.length === 0 || bytes.length > 63) return undefined
    size += bytes.length + 1
    if (size > 255) return undefined
    labels.push(Buffer.from([bytes.length]), bytes)
    texts.push(text)
  }
  labels.push(Buffer.from([0]))
  return { text: texts.join('.'), wire: Buffer.concat(labels, size) }
}

function asciiLabel(label: string): string {
  // Only ASCII letters fold case in DNS (RFC 4343 §3); toLowerCase would also fold other letters.
  if (/^[\x00-\x7f]*$/.test(label)) return label.replace(/[A-Z]/g, (c) => c.toLowerCase())
  const ace = domainToASCII(label)
  return ace !== '' && !ace.includes('.') ? ace : label
}

/** Case-insensitive comparison of names as dns-packet decodes them (RFC 4343). */
export function sameName(a: string, b: string): boolean {
  return foldCase(a) === foldCase(b)
}

export function foldCase(name: string): string {
  const trimmed = name.endsWith('.') && name !== '.' ? name.slice(0, -1) : name
  return trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase())
}
