/**
 * `qtsmtpd dkim-keygen --config DIR [--ed25519] [--bits N] [--arc] DOMAIN SELECTOR`: makes a
 * key pair in the configuration's key layout and prints the DNS record to publish. The work is
 * mailauth/dkim/keys.ts; this only reads the arguments and prints.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKey } from '../mailauth/dkim/keys.ts'

export const keygenUsage = `Usage: qtsmtpd dkim-keygen --config DIR [--ed25519 | --bits N] [--arc] DOMAIN SELECTOR

  Makes a signing key for DOMAIN and prints the TXT record to publish at
  SELECTOR._domainkey.DOMAIN. Writes DIR/dkim/DOMAIN/{selector,private,public,dns}
  (an Ed25519 key: DIR/dkim/DOMAIN/ed25519/...), the layout the dkim plugin signs from.

  --config DIR   the qpsmtpd-layout configuration directory
  --ed25519      an Ed25519 key (RFC 8463), signed beside the RSA key; default RSA
  --bits N       RSA key size, 1024 to 4096 (default 2048)
  --arc          the key the arc plugin seals with: DIR/arc_seal/DOMAIN/ (RSA only, RFC 8617)
`

/** Arguments that do not make a command: the usage text goes with the message. */
export class KeygenUsageError extends Error {}

const usage = (text: string) => new KeygenUsageError(`dkim-keygen: ${text}`)

function parse(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      options: {
        config: { type: 'string', short: 'c' },
        ed25519: { type: 'boolean' },
        bits: { type: 'string' },
        arc: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    })
  } catch (e) {
    throw usage((e as Error).message)
  }
}

/** Returns the text to print; throws KeygenUsageError for bad arguments, Error when the key cannot be made. */
export async function dkimKeygen(argv: readonly string[]): Promise<string> {
  const { values, positionals } = parse(argv)
  const [domain, selector, ...extra] = positionals
  if (domain === undefined || selector === undefined || extra.length > 0) throw usage('expected DOMAIN and SELECTOR')
  if (values.config === undefined) throw usage('--config DIR is required')
  if (values.ed25519 && values.bits !== undefined) throw usage('--bits is for RSA keys')
  if (values.ed25519 && values.arc) throw usage('ARC seals with RSA keys only (RFC 8617)')
  const bits = values.bits === undefined ? undefined : Number(values.bits)
  const key = await generateKey(join(values.config, values.arc ? 'arc_seal' : 'dkim'), domain, selector, {
    type: values.ed25519 ? 'ed25519' : 'rsa',
    ...(bits === undefined ? {} : { bits }),
  })
  return [
    `wrote ${key.dir}/ (selector, private, public, dns)`,
    `publish this TXT record in the DNS of ${domain}, then reload qtsmtpd:`,
    '',
    key.zoneLine,
    '',
  ].join('\n')
}
