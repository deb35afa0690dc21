import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { dkimVerify } from 'mailauth/lib/dkim/verify.js'
import { HeaderBlock } from '../../message/headers.ts'
import { RelaxedBodyHash, relaxedBodyHash, relaxedHeader } from './canonical.ts'
import { dnsRecord } from './keys.ts'
import { dkimSignature, type SigningKey, selectFields, signedFieldNames } from './sign.ts'

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const ed = generateKeyPairSync('ed25519', undefined)
const keys: Record<string, SigningKey> = {
  rsa: { domain: 'example.org', selector: 'rsa1', algorithm: 'rsa-sha256', privateKey: rsa.privateKey, file: 'x' },
  ed25519: {
    domain: 'example.org',
    selector: 'ed1',
    algorithm: 'ed25519-sha256',
    privateKey: ed.privateKey,
    file: 'y',
  },
}
const records: Record<string, string> = {
  'rsa1._domainkey.example.org': dnsRecord(rsa.publicKey),
  'ed1._domainkey.example.org': dnsRecord(ed.publicKey),
}
const resolver = async (name: string, type: string) => {
  const r = type === 'TXT' ? records[name] : undefined
  if (r === undefined) throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' })
  return [[r]]
}

async function signed(message: string, key: SigningKey): Promise<Buffer> {
  const { headers, body } = HeaderBlock.parse(Buffer.from(message, 'latin1'))
  const bh = await relaxedBodyHash([body])
  headers.prepend('DKIM-Signature', dkimSignature(headers.fields, bh, key))
  return Buffer.concat([headers.toBuffer(), Buffer.from('\r\n'), body])
}

async function verdicts(message: Buffer): Promise<string[]> {
  const r = await dkimVerify(message, { resolver, strict: true })
  return r.results.map((x) => x.status.result)
}

const head =
  'From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hello\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\n'
const bodies = [
  { name: 'plain lines', body: 'Hello Bob,\r\nsee you.\r\n' },
  { name: 'empty body', body: '' },
  { name: 'only empty lines', body: '\r\n\r\n\r\n' },
  { name: 'no final CRLF', body: 'no newline at the end' },
  { name: 'white space inside and at line ends', body: ' lead\t and  \t trail \t\r\n\t\r\nx \r\n \r\n\r\n' },
  { name: 'bare CR and LF in lines', body: 'a\rb\nc\r\n\r\r\nend\r' },
  { name: '8-bit text', body: 'caf\xe9 \xe0 la cr\xe8me\r\n' },
]

describe('dkimSignature', () => {
  for (const type of ['rsa', 'ed25519'] as const) {
    for (const { name, body } of bodies) {
      it(`${type}: mailauth verifies a body with ${name}`, async () => {
        const key = keys[type] as SigningKey
        assert.deepEqual(await verdicts(await signed(`${head}\r\n${body}`, key)), ['pass'])
      })
    }
  }

  it('folded and oddly spaced header fields verify (relaxed header canonicalization)', async () => {
    const message =
      'FROM :  Alice\r\n  <alice@example.org> \r\nsubject:\tsplit\r\n\tover  lines\r\nTo: b@example.net\r\n\r\nx\r\n'
    assert.deepEqual(await verdicts(await signed(message, keys.rsa as SigningKey)), ['pass'])
  })

  it('a changed signed header, an added From, or a changed body fails', async () => {
    const good = (await signed(`${head}\r\nHello\r\n`, keys.rsa as SigningKey)).toString('latin1')
    assert.deepEqual(await verdicts(Buffer.from(good, 'latin1')), ['pass'])
    assert.deepEqual(await verdicts(Buffer.from(good.replace('Subject: hello', 'Subject: hellO'), 'latin1')), ['fail'])
    assert.deepEqual(await verdicts(Buffer.from(`From: mallory@evil.test\r\n${good}`, 'latin1')), ['fail'])
    assert.deepEqual(await verdicts(Buffer.from(`Reply-To: mallory@evil.test\r\n${good}`, 'latin1')), ['fail'])
    assert.deepEqual(await verdicts(Buffer.from(good.replace('Hello', 'Jello'), 'latin1')), ['fail'])
  })

  it('a field that is not signed may be added (Received, X-Spam)', async () => {
    const good = (await signed(`${head}\r\nHello\r\n`, keys.ed25519 as SigningKey)).toString('latin1')
    assert.deepEqual(await verdicts(Buffer.from(`Received: from x\r\nX-Spam: no\r\n${good}`, 'latin1')), ['pass'])
  })

  it('h= over-signs From, To, Subject and Date, and forbids a Cc, Reply-To or MIME fields added later', () => {
    const { headers } = HeaderBlock.parse(Buffer.from(`${head}\r\n`))
    assert.deepEqual(signedFieldNames(headers.fields), [
      'from',
      'from',
      'sender',
      'reply-to',
      'subject',
      'subject',
      'date',
      'date',
      'to',
      'to',
      'cc',
      'mime-version',
      'content-type',
      'content-transfer-encoding',
      'in-reply-to',
      'references',
    ])
  })

  it('a field listed twice selects its instances from the bottom up, then nothing', () => {
    const { headers } = HeaderBlock.parse(Buffer.from('To: a\r\nFrom: x\r\nTo: b\r\n\r\n'))
    const picked = selectFields(headers.fields, ['to', 'to', 'to', 'from'])
    assert.deepEqual(
      picked.map((f) => relaxedHeader(f.raw).toString()),
      ['to:b\r\n', 'to:a\r\n', 'from:x\r\n'],
    )
  })

  it('writes a header value of folded lines no longer than 78 characters', async () => {
    const { headers, body } = HeaderBlock.parse(Buffer.from(`${head}\r\nHi\r\n`))
    const value = dkimSignature(headers.fields, await relaxedBodyHash([body]), keys.rsa as SigningKey)
    const lines = `DKIM-Signature: ${value}`.split('\r\n')
    assert.ok(
      lines.every((l) => l.length <= 78),
      lines.join('\n'),
    )
    assert.ok(lines.slice(1).every((l) => /^[ \t]/.test(l)))
  })
})

describe('RelaxedBodyHash', () => {
  it('agrees with mailauth on 500 random bodies fed in random chunks', async () => {
    const { dkimBody } = createRequire(import.meta.url)('mailauth/lib/dkim/body/index.js') as {
      dkimBody(c: string, h: string, l: false): { update(b: Buffer): void; digest(e: 'base64'): string }
    }
    const alphabet = [0x20, 0x09, 0x0d, 0x0a, 0x61, 0xe9]
    let seed = 42
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    for (let round = 0; round < 500; round++) {
      const body = Buffer.from(Array.from({ length: random(60) }, () => alphabet[random(alphabet.length)] as number))
      const theirs = dkimBody('relaxed', 'sha256', false)
      theirs.update(body)
      const ours = new RelaxedBodyHash()
      for (let at = 0; at < body.length; ) {
        const n = 1 + random(7)
        ours.update(body.subarray(at, at + n))
        at += n
      }
      assert.equal(ours.digest(), theirs.digest('base64'), JSON.stringify(body.toString('latin1')))
    }
  })
})
