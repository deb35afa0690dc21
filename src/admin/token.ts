/** The admin listener's bearer token, read from `--admin-token-file`. */
import { readFileSync, statSync } from 'node:fs'

/** Shortest token accepted: 128 bits of hex or base64 fit in it. */
const minTokenLength = 16

/** Reads the token (before the privilege drop: the file may be readable by root only). */
export function readAdminToken(file: string): string {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (e) {
    throw new Error(`--admin-token-file ${file}: ${(e as Error).message}`)
  }
  if (text.length < minTokenLength || /\s/.test(text))
    throw new Error(
      `--admin-token-file ${file}: the token must be one word of at least ${minTokenLength} characters ` +
        '(e.g. openssl rand -hex 32 > FILE)',
    )
  return text
}

/** A warning when others may read the token file. */
export function tokenFileWarning(file: string): string | undefined {
  try {
    if ((statSync(file).mode & 0o004) !== 0) return `--admin-token-file ${file} is readable by everyone (chmod 600 it)`
  } catch {}
  return undefined
}
