import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { DkimKeyError, dnsRecord, generateKey, readKeyring, txtStrings } from './keys.ts'

const dirs: string[] = []
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))))
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'qtsmtpd-dkim-keys-'))
  dirs.push(d)
  return d
}

async function writeKey(dir: string, selector: string, pem: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'selector'), `${selector}\n`)
  await writeFile(join(dir, 'private'), pem)
}
const pem = (type: 'rsa' | 'ed25519', bits = 2048) =>
  (type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: bits })
    : generateKeyPairSync('ed25519', undefined)
  ).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string

describe('readKeyring', () => {
  it('reads qpsmtpd layout keys, the Ed25519 key beside them, symlinked domains and parents', async () => {
    const dir = await tempDir()
    await writeKey(join(dir, 'example.org'), 'mar2027', pem('rsa'))
    await writeKey(join(dir, 'example.org', 'ed25519'), 'ed2027', pem('ed25519'))
    await symlink('example.org', join(dir, 'client.com'))
    await mkdir(join(dir, 'nokey.test'))
    const ring = await readKeyring(dir)
    assert.deepEqual([...ring.domains].sort(), ['client.com', 'example.org'])
    const summary = (d: string) => ring.keysFor(d).map((k) => `${k.algorithm} d=${k.domain} s=${k.selector}`)
    assert.deepEqual(summary('example.org'), [
      'rsa-sha256 d=example.org s=mar2027',
      'ed25519-sha256 d=example.org s=ed2027',
    ])
    // A symlinked domain signs with the target's name, as qpsmtpd does.
    assert.deepEqual(summary('CLIENT.com'), summary('example.org'))
    // A host or subdomain without keys of its own uses its closest parent's.
    assert.deepEqual(summary('mail.eu.example.org'), summary('example.org'))
    assert.deepEqual(summary('example.net'), [])
    assert.deepEqual(summary('org'), [])
    assert.deepEqual(summary('nokey.test'), [])
  })

  it('a missing directory has no keys', async () => {
    const ring = await readKeyring(join(await tempDir(), 'none'))
    assert.deepEqual(ring.domains, [])
  })

  const broken: { name: string; make: (d: string) => Promise<void>; want: RegExp }[] = [
    {
      name: 'RSA under 1024 bits',
      make: (d) => writeKey(d, 's1', pem('rsa', 768)),
      want: /private: RSA key of 768 bits/,
    },
    { name: 'not PEM', make: (d) => writeKey(d, 's1', 'hello'), want: /private: not a private key in PEM/ },
    {
      name: 'bad selector',
      make: (d) => writeKey(d, 'a b', pem('ed25519')),
      want: /selector: "a b" is not a DNS label/,
    },
    {
      name: 'selector without key',
      make: async (d) => {
        await mkdir(d, { recursive: true })
        await writeFile(join(d, 'selector'), 's1\n')
      },
      want: /private: missing/,
    },
  ]
  for (const { name, make, want } of broken) {
    it(`stops at a broken key: ${name}`, async () => {
      const dir = await tempDir()
      await make(join(dir, 'example.org'))
      await assert.rejects(readKeyring(dir), (e: unknown) => e instanceof DkimKeyError && want.test(e.message))
    })
  }
})

describe('generateKey', () => {
  it('writes the layout readKeyring reads, and the record holds the public key', async () => {
    const dir = await tempDir()
    const rsa = await generateKey(dir, 'Example.ORG', 'k1')
    const ed = await generateKey(dir, 'example.org', 'k2', { type: 'ed25519' })
    assert.equal(rsa.name, 'k1._domainkey.example.org')
    const ring = await readKeyring(dir)
    const [rsaKey, edKey] = ring.keysFor('example.org')
    assert.equal(rsa.record, dnsRecord(rsaKey?.privateKey as never))
    assert.equal(ed.record, dnsRecord(edKey?.privateKey as never))
    assert.match(ed.record, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/)
    assert.match(rsa.zoneLine, /^k1\._domainkey\.example\.org\. IN TXT "v=DKIM1; k=rsa; p=[^"]{200,}" "[^"]+"$/)
    await assert.rejects(generateKey(dir, 'example.org', 'k3'), /private exists/)
  })

  it('refuses what would make an unusable key', async () => {
    const dir = await tempDir()
    await assert.rejects(generateKey(dir, 'localhost', 's'), /not a domain name/)
    await assert.rejects(generateKey(dir, 'example.org', 'a;b'), /not a DNS label/)
    await assert.rejects(generateKey(dir, 'example.org', 's', { bits: 512 }), /from 1024 to 4096/)
  })

  it('splits a TXT value into strings of at most 255 octets', () => {
    assert.equal(txtStrings('a'.repeat(300)), `"${'a'.repeat(255)}" "${'a'.repeat(45)}"`)
  })
})
