import assert from 'node:assert/strict'
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { dkimSign } from 'mailauth/lib/dkim/sign.js'
import type { ScriptedName } from '../../dns/scripted.ts'
import { scriptedDns } from '../../dns/scripted.ts'
import { HeaderBlock } from '../../message/headers.ts'
import { relaxedBodyHash } from './canonical.ts'
import { dnsRecord } from './keys.ts'
import { dkimSignature, type SigningKey } from './sign.ts'
import { type DkimVerifyOptions, dkimAuthResults, shortSignatures, verifyDkim } from './verify.ts'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ed = generateKeyPairSync('ed25519', undefined)
const weak = generateKeyPairSync('rsa', { modulusLength: 768 })
const key = (selector: string, pair: typeof rsa, algorithm: SigningKey['algorithm']): SigningKey => ({
  domain: 'example.org',
  selector,
  algorithm,
  privateKey: pair.privateKey,
  file: selector,
})
const rsaKey = key('rsa1', rsa, 'rsa-sha256')
const edKey = key('ed1', ed, 'ed25519-sha256')

/** An RSA public key of any size: a random odd modulus (no private key exists for it). */
function bigKey(bits: number): string {
  const n = randomBytes(bits / 8)
  n[0] = (n[0] as number) | 0x80
  n[n.length - 1] = (n[n.length - 1] as number) | 1
  return dnsRecord(createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: 'AQAB' }, format: 'jwk' }))
}

const zone: Record<string, ScriptedName> = {
  // 16384 bits is OpenSSL's largest modulus; 32768 is refused. A TXT record of 4 KB.
  'rsa16k._domainkey.example.org': { TXT: [bigKey(16_384)] },
  'rsa32k._domainkey.example.org': { TXT: [bigKey(32_768)] },
  'rsa1._domainkey.example.org': { TXT: [dnsRecord(rsa.publicKey)] },
  'ed1._domainkey.example.org': { TXT: [dnsRecord(ed.publicKey)] },
  'weak._domainkey.example.org': { TXT: [dnsRecord(weak.publicKey)] },
  'test._domainkey.example.org': { TXT: [`${dnsRecord(rsa.publicKey)}; t=y`] },
  'slow._domainkey.example.org': 'timeout',
  'broken._domainkey.example.org': 'servfail',
  'garbage._domainkey.example.org': { TXT: ['v=DKIM1; p=not*base64!'] },
  'huge._domainkey.example.org': { TXT: [`v=DKIM1; p=${'A'.repeat(60_000)}`] },
  'revoked._domainkey.example.org': { TXT: ['v=DKIM1; p='] },
}

const message = 'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello Bob\r\n'

async function sign(text: string, ...keys: SigningKey[]): Promise<string> {
  const { headers, body } = HeaderBlock.parse(Buffer.from(text))
  const bh = await relaxedBodyHash([body])
  for (const k of keys) headers.prepend('DKIM-Signature', dkimSignature(headers.fields, bh, k))
  return `${headers.toBuffer().toString()}\r\n${body.toString()}`
}

async function theirSignature(text: string, opts: Record<string, unknown>): Promise<string> {
  const privateKey = rsa.privateKey.export({ type: 'pkcs8', format: 'pem' })
  const data = { signingDomain: 'example.org', selector: 'rsa1', privateKey, ...opts }
  const r = await dkimSign(text, { signatureData: [data] } as never)
  return r.signatures + text
}

async function verify(text: string, opts: Partial<DkimVerifyOptions> = {}) {
  const dns = scriptedDns(zone)
  const v = await verifyDkim(Readable.from([Buffer.from(text)]), {
    dns,
    maxSignatures: 5,
    maxSignedFields: 500,
    ...opts,
  })
  return { v, dns, summary: v.signatures.map((s) => `${s.result}${s.reason === undefined ? '' : ` (${s.reason})`}`) }
}

describe('verifyDkim', () => {
  it('verifies RSA and Ed25519 signatures side by side', async () => {
    const { v } = await verify(await sign(message, rsaKey, edKey))
    assert.deepEqual(
      v.signatures.map((s) => [s.result, s.domain, s.selector, s.algorithm, s.identity]),
      [
        ['pass', 'example.org', 'ed1', 'ed25519-sha256', '@example.org'],
        ['pass', 'example.org', 'rsa1', 'rsa-sha256', '@example.org'],
      ],
    )
  })

  it('an unsigned message: no signatures, and dkim=none in Authentication-Results', async () => {
    const { v } = await verify(message)
    assert.deepEqual(v.signatures, [])
    assert.deepEqual(dkimAuthResults(v, 5), [{ method: 'dkim', result: 'none', properties: [] }])
  })

  it('a changed body or signed header fails (RFC 6376 §6.1.3: the body hash is a fail, not neutral)', async () => {
    const signed = await sign(message, rsaKey)
    assert.deepEqual((await verify(signed.replace('Hello', 'Jello'))).summary, ['fail (body hash did not verify)'])
    assert.deepEqual((await verify(signed.replace('Subject: hi', 'Subject: hi!'))).summary, ['fail (bad signature)'])
  })

  const keyCases: { selector: string; want: string }[] = [
    { selector: 'nokey', want: 'neutral (no key)' },
    { selector: 'revoked', want: 'neutral (invalid public key)' },
    { selector: 'garbage', want: 'neutral (invalid public key)' },
    { selector: 'huge', want: 'neutral (unknown key type)' },
    { selector: 'rsa16k', want: 'fail (bad signature)' },
    { selector: 'rsa32k', want: 'fail (bad signature)' },
    { selector: 'slow', want: 'temperror (DNS failure: ETIMEOUT)' },
    { selector: 'broken', want: 'temperror (DNS failure: ESERVFAIL)' },
  ]
  for (const { selector, want } of keyCases) {
    it(`key ${selector}: ${want}`, async () => {
      const { summary } = await verify(await sign(message, { ...rsaKey, selector }))
      assert.deepEqual(summary, [want])
    })
  }

  it('RFC 8301: an RSA key under 1024 bits and rsa-sha1 get policy, never pass', async () => {
    const privateKey = weak.privateKey.export({ type: 'pkcs8', format: 'pem' })
    const data = { signingDomain: 'example.org', selector: 'weak', privateKey }
    const short = await dkimSign(message, { signatureData: [data] } as never)
    assert.deepEqual((await verify(short.signatures + message)).summary, ['policy (RSA key shorter than 1024 bits)'])
    assert.deepEqual((await verify(await theirSignature(message, { algorithm: 'rsa-sha1' }))).summary, [
      'policy (rsa-sha1 (RFC 8301))',
    ])
  })

  it('a key in testing mode (t=y) says so', async () => {
    const { v } = await verify(await sign(message, { ...rsaKey, selector: 'test' }))
    assert.equal(v.signatures[0]?.testing, true)
    assert.equal(dkimAuthResults(v, 5)[0]?.comment, 'key in testing mode (t=y)')
  })

  it('l=: content appended after the signed length is policy, or pass when the operator accepts it', async () => {
    const signed = await theirSignature(message, { maxBodyLength: 11 })
    assert.deepEqual((await verify(signed)).summary, ['pass'])
    const appended = `${signed}Click here: http://evil.test/\r\n`
    assert.deepEqual((await verify(appended)).summary, ['policy (31 body octets after l= are not signed)'])
    assert.deepEqual((await verify(appended, { unsignedBody: 'pass' })).summary, ['pass'])
  })

  const malformed: { name: string; field: string; want: string }[] = [
    {
      name: 'no d=',
      field: 'v=1; a=rsa-sha256; s=rsa1; h=from; bh=x; b=abc',
      want: 'neutral (signature missing required tag)',
    },
    {
      name: 'unknown a=',
      field: 'v=1; a=rsa-md5; d=example.org; s=rsa1; h=from; bh=x; b=abc',
      want: 'neutral (unknown algorithm)',
    },
    {
      name: 'unknown c=',
      field: 'v=1; a=rsa-sha256; c=loose; d=example.org; s=rsa1; h=from; bh=x; b=abc',
      want: 'neutral (unknown canonicalization)',
    },
    {
      name: 'From not signed',
      field: 'v=1; a=rsa-sha256; d=example.org; s=rsa1; h=subject; bh=x; b=abc',
      want: 'neutral (From field not signed)',
    },
    { name: 'no tags at all', field: ';;;', want: 'neutral (unknown algorithm)' },
    {
      name: 'an h= of 10,000 fields',
      field: `v=1; a=rsa-sha256; d=example.org; s=rsa1; h=${Array(10_000).fill('from').join(':')}; bh=x; b=abc`,
      want: 'neutral (h= names 10000 fields, more than the 500 verified)',
    },
  ]
  for (const { name, field, want } of malformed) {
    it(`a signature with ${name}: ${want}`, async () => {
      assert.deepEqual((await verify(`DKIM-Signature: ${field}\r\n${message}`)).summary, [want])
    })
  }

  it('1,000 signatures: the first 5 verified (5 key lookups), one neutral result for the rest', async () => {
    const one = (await sign(message, { ...rsaKey, selector: 'nokey' })).split('\r\nFrom:')[0] as string
    const { v, dns } = await verify(`${`${one}\r\n`.repeat(1000)}${message}`)
    assert.equal(v.signatures.length, 5)
    assert.equal(v.notVerified, 995)
    assert.equal(dns.calls.length, 1, 'one lookup for the five identical keys')
    const results = dkimAuthResults(v, 5)
    assert.equal(results.length, 6)
    assert.equal(results[5]?.reason, '995 more signatures not verified (at most 5 per message)')
  })

  it('keys are fetched in parallel: five slow keys take one timeout, not five', async () => {
    const dns = scriptedDns(
      Object.fromEntries(
        [1, 2, 3, 4, 5].map((i) => [`s${i}._domainkey.example.org`, { TXT: ['v=DKIM1; p='], delayMs: 300 }]),
      ),
    )
    const signed = await sign(message, ...[1, 2, 3, 4, 5].map((i) => ({ ...rsaKey, selector: `s${i}` })))
    let inFlight = 0
    let most = 0
    const counting = {
      ...dns,
      query: async (...args: Parameters<typeof dns.query>) => {
        most = Math.max(most, ++inFlight)
        try {
          return await dns.query(...args)
        } finally {
          inFlight--
        }
      },
    }
    const v = await verifyDkim(Readable.from([Buffer.from(signed)]), {
      dns: counting as typeof dns,
      maxSignatures: 5,
      maxSignedFields: 500,
    })
    assert.equal(v.signatures.length, 5)
    assert.equal(most, 5)
  })

  it('a key record that changes takes effect at once: parsed keys are shared by record text, not by name', async () => {
    const dns = scriptedDns({ 'rot._domainkey.example.org': { TXT: [dnsRecord(rsa.publicKey)] } })
    const run = async (key: SigningKey) => {
      const v = await verifyDkim(Readable.from([Buffer.from(await sign(message, key))]), {
        dns,
        maxSignatures: 5,
        maxSignedFields: 500,
      })
      return v.signatures.map((s) => s.result)
    }
    assert.deepEqual(await run({ ...rsaKey, selector: 'rot' }), ['pass'])
    assert.deepEqual(await run({ ...rsaKey, selector: 'rot' }), ['pass'])
    dns.set('rot._domainkey.example.org', { TXT: [dnsRecord(ed.publicKey)] })
    assert.deepEqual(await run({ ...rsaKey, selector: 'rot' }), ['neutral']) // an RSA signature, an Ed25519 key
    assert.deepEqual(await run({ ...edKey, selector: 'rot' }), ['pass'])
    assert.equal(dns.calls.length, 4, 'each message looks its key up (the DNS layer caches, by TTL)')
  })

  it('an aborted signal ends the lookups as temperror', async () => {
    const controller = new AbortController()
    const dns = scriptedDns({ 'rsa1._domainkey.example.org': { TXT: [dnsRecord(rsa.publicKey)], delayMs: 60_000 } })
    setTimeout(() => controller.abort(new Error('hook deadline')), 50)
    const signed = await sign(message, rsaKey)
    const v = await verifyDkim(Readable.from([Buffer.from(signed)]), {
      dns,
      signal: controller.signal,
      maxSignatures: 5,
      maxSignedFields: 500,
    }).catch((e: Error) => e)
    // Either the stream was cut (the message was read already, so usually not) or the lookup ended.
    if (v instanceof Error) assert.match(v.message, /hook deadline|aborted/)
    else assert.match(v.signatures[0]?.result ?? '', /temperror/)
  })
})

describe('dkimAuthResults', () => {
  it('reports header.d, header.i, header.s, header.a and a header.b long enough to tell signatures apart', async () => {
    const { v } = await verify(await sign(message, rsaKey))
    const [r] = dkimAuthResults(v, 5)
    assert.deepEqual(
      r?.properties.map((p) => `${p.type}.${p.name}`),
      ['header.d', 'header.i', 'header.s', 'header.a', 'header.b'],
    )
    assert.equal(r?.properties[4]?.value.length, 8)
    assert.deepEqual(shortSignatures(['abcdefghXY', 'abcdefghZZ', 'zzzzzzzzzz']), [
      'abcdefghX',
      'abcdefghZ',
      'zzzzzzzz',
    ])
  })
})
