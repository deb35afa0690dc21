/**
 * DKIM signing keys in qpsmtpd's layout: `config/dkim/<domain>/selector` (one line) and
 * `config/dkim/<domain>/private` (PEM), plus qtsmtpd's second key beside it in
 * `config/dkim/<domain>/ed25519/{selector,private}`, so that RSA and Ed25519 sign side by side
 * (RFC 8463 §5: Ed25519 is not yet verified everywhere). A domain directory that is a symlink
 * signs with the name of its target, as qpsmtpd does (`ln -s example.org client.com`).
 * Making keys (dkim-keygen) and the DNS record to publish are here too.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { domainToASCII } from 'node:url'
import type { SigningAlgorithm, SigningKey } from './sign.ts'

/** A DNS name of letters, digits and hyphens (RFC 6376 §3.5 domain-name, §3.1 selector). */
const dnsName = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i

/** RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits (and SHOULD use 2048). */
export const MIN_RSA_BITS = 1024

export class DkimKeyError extends Error {
  readonly file: string
  constructor(file: string, text: string) {
    super(`${file}: ${text}`)
    this.file = file
  }
}

/** The keys of a directory: `selector` and `private`, one of each; undefined when there are none. */
async function readKey(dir: string, domain: string): Promise<SigningKey | undefined> {
  const selectorFile = join(dir, 'selector')
  const privateFile = join(dir, 'private')
  const [selectorText, pem] = await Promise.all([optionalText(selectorFile), optionalText(privateFile)])
  if (selectorText === undefined && pem === undefined) return undefined
  if (pem === undefined) throw new DkimKeyError(privateFile, 'missing (selector without private key)')
  if (selectorText === undefined) throw new DkimKeyError(selectorFile, 'missing (private key without selector)')
  const selector = selectorText.split('\n')[0]?.trim() ?? ''
  if (!dnsName.test(selector)) throw new DkimKeyError(selectorFile, `"${selector}" is not a DNS label`)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (e) {
    throw new DkimKeyError(privateFile, `not a private key in PEM: ${(e as Error).message}`)
  }
  return { domain, selector, privateKey, algorithm: algorithmOf(privateKey, privateFile), file: privateFile }
}

function algorithmOf(key: KeyObject, file: string): SigningAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519-sha256'
  if (key.asymmetricKeyType !== 'rsa') throw new DkimKeyError(file, `${key.asymmetricKeyType} keys cannot sign DKIM`)
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0
  if (bits < MIN_RSA_BITS) throw new DkimKeyError(file, `RSA key of ${bits} bits: at least ${MIN_RSA_BITS} (RFC 8301)`)
  return 'rsa-sha256'
}

async function optionalText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new DkimKeyError(file, (e as Error).message)
  }
}

/** The signing keys by domain, as loaded at start-up (and at each reload). */
export interface DkimKeyring {
  readonly domains: readonly string[]
  /**
   * The keys for a domain: its own, else those of its closest parent that has keys (not a bare
   * top-level domain), as qpsmtpd signs host.example.com with example.com's key.
   */
  keysFor(domain: string): readonly SigningKey[]
}

/**
 * Reads every `<dir>/<domain>/` with a key. A broken key (unreadable, not PEM, RSA under 1024
 * bits, a selector that is not a DNS name) throws DkimKeyError naming the file: better a start
 * that stops than mail that goes out unsigned.
 */
export async function readKeyring(dir: string): Promise<DkimKeyring> {
  const byDomain = new Map<string, SigningKey[]>()
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') entries = []
    else throw new DkimKeyError(dir, (e as Error).message)
  }
  for (const entry of entries.sort()) {
    const path = join(dir, entry)
    const info = await stat(path).catch(() => undefined)
    if (info === undefined || !info.isDirectory()) continue
    const target = basename(await realpath(path))
    const domain = domainToASCII(target).toLowerCase()
    const keys = (await Promise.all([readKey(path, domain), readKey(join(path, 'ed25519'), domain)])).filter(
      (k) => k !== undefined,
    )
    if (keys.length === 0) continue
    if (!dnsName.test(domain)) throw new DkimKeyError(path, `signs as "${target}", which is not a domain name`)
    const asked = domainToASCII(entry).toLowerCase()
    if (asked === '') throw new DkimKeyError(path, `"${entry}" is not a domain name`)
    byDomain.set(asked, keys)
  }
  return {
    domains: [...byDomain.keys()],
    keysFor(domain) {
      const labels = domainToASCII(domain).toLowerCase().split('.')
      for (let i = 0; i < Math.max(1, labels.length - 1); i++) {
        const keys = byDomain.get(labels.slice(i).join('.'))
        if (keys !== undefined) return keys
      }
      return []
    },
  }
}

export type KeyType = 'rsa' | 'ed25519'

export interface GeneratedKey {
  /** The directory written: `<dkimDir>/<domain>` (RSA) or `<dkimDir>/<domain>/ed25519`. */
  readonly dir: string
  /** `<selector>._domainkey.<domain>` */
  readonly name: string
  /** The TXT record's text, `v=DKIM1; k=...; p=...`. */
  readonly record: string
  /** The record in zone-file syntax, in strings of at most 255 octets (RFC 1035 §3.3.14). */
  readonly zoneLine: string
}

/**
 * Makes a key pair and writes `selector`, `private` (mode 0600), `public` and `dns` into the
 * layout readKeyring reads. Refuses to replace an existing private key.
 * @example await generateKey('/etc/qpsmtpd/dkim', 'example.org', 'mar2027', { type: 'ed25519' })
 */
export async function generateKey(
  dkimDir: string,
  domain: string,
  selector: string,
  opts: { readonly type?: KeyType; readonly bits?: number } = {},
): Promise<GeneratedKey> {
  const type = opts.type ?? 'rsa'
  const bits = opts.bits ?? 2048
  const ascii = domainToASCII(domain).toLowerCase()
  if (!dnsName.test(ascii) || !ascii.includes('.')) throw new Error(`"${domain}" is not a domain name`)
  if (!dnsName.test(selector)) throw new Error(`selector "${selector}" is not a DNS label`)
  if (type === 'rsa' && (!Number.isInteger(bits) || bits < MIN_RSA_BITS || bits > 4096))
    throw new Error(`RSA key size ${bits}: from ${MIN_RSA_BITS} to 4096 bits (RFC 8301 §3.2; 2048 recommended)`)
  const dir = type === 'rsa' ? join(dkimDir, ascii) : join(dkimDir, ascii, 'ed25519')
  const privateFile = join(dir, 'private')
  if (await stat(privateFile).catch(() => undefined))
    throw new Error(`${privateFile} exists: remove it first to replace the key`)
  const pair =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519', undefined)
  const record = dnsRecord(pair.publicKey)
  const name = `${selector}._domainkey.${ascii}`
  const zoneLine = `${name}. IN TXT ${txtStrings(record)}`
  await mkdir(dir, { recursive: true, mode: 0o755 })
  await writeFile(privateFile, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' })
  await writeFile(join(dir, 'selector'), `${selector}\n`)
  await writeFile(join(dir, 'public'), pair.publicKey.export({ type: 'spki', format: 'pem' }))
  await writeFile(join(dir, 'dns'), `${zoneLine}\n`)
  return { dir, name, record, zoneLine }
}

/**
 * The key record for a public key: RSA as SubjectPublicKeyInfo in base64 (RFC 6376 §3.6.1),
 * Ed25519 as the bare 32-octet key (RFC 8463 §4).
 */
export function dnsRecord(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  if (publicKey.asymmetricKeyType === 'ed25519') {
    const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32)
    return `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`
  }
  return `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`
}

/** `"..." "..."`: a TXT value in character-strings of at most 255 octets. */
export function txtStrings(text: string): string {
  const parts = text.match(/.{1,255}/g) ?? ['']
  return parts.map((p) => `"${p}"`).join(' ')
}
