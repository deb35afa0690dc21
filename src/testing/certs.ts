/**
 * Self-signed certificates made at test time with openssl (an argument vector, no shell),
 * so no key is committed and tests never depend on an expiring fixture.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TestCertificate {
  readonly dir: string
  readonly certFile: string
  readonly keyFile: string
  readonly cert: Buffer
  readonly key: Buffer
}

export async function makeCertificate(commonName = 'localhost', dir?: string): Promise<TestCertificate> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'qtsmtpd-cert-')))
  const certFile = join(where, `${commonName}.crt`)
  const keyFile = join(where, `${commonName}.key`)
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
    '-addext',
    `subjectAltName=DNS:${commonName}`,
  ])
  return { dir: where, certFile, keyFile, cert: await readFile(certFile), key: await readFile(keyFile) }
}
