/**
 * dkim through real SMTP sessions with scripted DNS (the loopback DNS server's tests are in
 * test/interop/dkim-interop.test.ts): results in Authentication-Results, refusals only with
 * `reject 1` and never a 5xx for DNS trouble, signing for relay clients and authenticated
 * users in the config/dkim layout, and a signature that survives the core's own edits.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type ScriptedName, scriptedDns } from '../../dns/scripted.ts'
import type { PluginChoice } from '../../host/define-plugin.ts'
import { relaxedBodyHash } from '../../mailauth/dkim/canonical.ts'
import { dnsRecord, generateKey, readKeyring } from '../../mailauth/dkim/keys.ts'
import { dkimSignature, type SigningKey } from '../../mailauth/dkim/sign.ts'
import { verifyDkim } from '../../mailauth/dkim/verify.ts'
import { HeaderBlock } from '../../message/headers.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import authFlatFile from '../auth/auth-flat-file.ts'
import relay from '../connect/relay.ts'
import { acceptRcpt, sendMail, sendMailSession } from '../test-support.ts'
import dkim from './dkim.ts'

const theirs = generateKeyPairSync('rsa', { modulusLength: 2048 })
const theirKey: SigningKey = {
  domain: 'sender.example',
  selector: 's1',
  algorithm: 'rsa-sha256',
  privateKey: theirs.privateKey,
  file: 'test',
}
const zone: Record<string, ScriptedName> = {
  's1._domainkey.sender.example': { TXT: [dnsRecord(theirs.publicKey)] },
  'sluggish._domainkey.sender.example': { TXT: [dnsRecord(theirs.publicKey)], delayMs: 5_000 },
  'slow._domainkey.sender.example': 'timeout',
}

const message = (from = 'alice@sender.example', body = 'Hello\r\n') =>
  `From: Alice <${from}>\r\nTo: bob@mx.test\r\nSubject: test\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@sender.example>\r\n\r\n${body}`

async function signed(text: string, key: SigningKey = theirKey): Promise<string> {
  const { headers, body } = HeaderBlock.parse(Buffer.from(text))
  headers.prepend('DKIM-Signature', dkimSignature(headers.fields, await relaxedBodyHash([body]), key))
  return `${headers.toBuffer().toString()}\r\n${body.toString()}`
}

const authResults = (data: string) =>
  /^Authentication-Results: ([\s\S]*?)\r\n(?![ \t])/m.exec(data)?.[1]?.replace(/\r\n\t/g, ' ')

let keyDir: string
before(async () => {
  keyDir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dkim-plugin-'))
  await generateKey(join(keyDir, 'dkim'), 'mx.test', 'rsa2027')
  await generateKey(join(keyDir, 'dkim'), 'mx.test', 'ed2027', { type: 'ed25519' })
})
after(() => rm(keyDir, { recursive: true, force: true }))

async function server(plugins: PluginChoice[], config: Record<string, string | string[]> = {}): Promise<TestServer> {
  return startTestServer({
    plugins: [acceptRcpt(), ...plugins],
    dns: scriptedDns(zone),
    config,
    policies: { authRequiresTls: false },
  })
}

describe('dkim: verifying', () => {
  it('a valid signature: 250, and dkim=pass with header.d/i/s/a/b in Authentication-Results', async () => {
    const srv = await server([dkim()])
    try {
      const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], await signed(message()))
      assert.equal(r.code, 250)
      assert.match(
        authResults(srv.queued[0]?.text ?? '') ?? '',
        /^mx\.test; dkim=pass header\.d=sender\.example header\.i=@sender\.example header\.s=s1 header\.a=rsa-sha256 header\.b="?[A-Za-z0-9+/]{8}"?$/,
      )
    } finally {
      await srv.close()
    }
  })

  const cases: { name: string; content: () => Promise<string>; reject: string; want: RegExp; result: RegExp }[] = [
    {
      name: 'a changed body, reject 0 (the default): accepted, dkim=fail',
      content: async () => (await signed(message())).replace('Hello', 'Jello'),
      reject: '0',
      want: /^250 /,
      result: /dkim=fail reason="body hash did not verify" header\.d=sender\.example/,
    },
    {
      name: 'a changed body, reject 1: 550 5.7.20',
      content: async () => (await signed(message())).replace('Hello', 'Jello'),
      reject: '1',
      want: /^550 5\.7\.20 DKIM signature verification failed/,
      result: /./,
    },
    {
      name: 'the key lookup times out, reject 1: 451, never 5xx',
      content: () => signed(message(), { ...theirKey, selector: 'slow' }),
      reject: '1',
      want: /^451 4\.7\.5 DKIM keys could not be looked up, try again later/,
      result: /./,
    },
    {
      name: 'the key lookup times out, reject 0: accepted with dkim=temperror',
      content: () => signed(message(), { ...theirKey, selector: 'slow' }),
      reject: '0',
      want: /^250 /,
      result: /dkim=temperror reason="DNS failure: ETIMEOUT" header\.d=sender\.example/,
    },
    {
      name: 'no key in DNS, reject 1: neutral is no reason to refuse',
      content: () => signed(message(), { ...theirKey, selector: 'gone' }),
      reject: '1',
      want: /^250 /,
      result: /dkim=neutral reason="no key" header\.d=sender\.example/,
    },
    {
      name: 'unsigned, reject 1: accepted with dkim=none',
      content: async () => message(),
      reject: '1',
      want: /^250 /,
      result: /^mx\.test; dkim=none$/,
    },
  ]
  for (const { name, content, reject, want, result } of cases) {
    it(name, async () => {
      const srv = await server([dkim({ reject })])
      try {
        const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], await content())
        assert.match(r.raw, want)
        if (r.code === 250) assert.match(authResults(srv.queued[0]?.text ?? '') ?? '', result)
        else assert.equal(srv.queued.length, 0)
      } finally {
        await srv.close()
      }
    })
  }

  it('verification past its timeout: dkim=temperror, and 451 with reject 1', async () => {
    const content = await signed(message(), { ...theirKey, selector: 'sluggish' })
    for (const [reject, want] of [
      ['0', /^250 /],
      ['1', /^451 4\.7\.5 /],
    ] as const) {
      const srv = await server([dkim({ reject, timeout: 1 })])
      try {
        const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], content)
        assert.match(r.raw, want)
        if (reject === '0')
          assert.match(
            authResults(srv.queued[0]?.text ?? '') ?? '',
            /^mx\.test; dkim=temperror reason="verification took longer than 1 s"$/,
          )
      } finally {
        await srv.close()
      }
    }
  })

  it('a signature that fails beside one that passes: both reported, reject 1 accepts', async () => {
    const srv = await server([dkim({ reject: '1' })])
    try {
      const good = await signed(message())
      const twice = `DKIM-Signature: ${good.split('DKIM-Signature: ')[1]?.split('\r\nFrom:')[0]?.replace('b=', 'b=AAAA')}\r\n${good}`
      const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], twice)
      assert.equal(r.code, 250)
      const ar = authResults(srv.queued[0]?.text ?? '') ?? ''
      assert.match(ar, /dkim=fail .*; dkim=pass /)
    } finally {
      await srv.close()
    }
  })
})

describe('dkim: signing', () => {
  const verifiedBy = async (data: string) => {
    const dns = scriptedDns(
      Object.fromEntries(
        (await readKeyring(join(keyDir, 'dkim')))
          .keysFor('mx.test')
          .map((k) => [`${k.selector}._domainkey.mx.test`, { TXT: [dnsRecord(k.privateKey)] }]),
      ),
    )
    const v = await verifyDkim(Readable.from([Buffer.from(data)]), { dns, maxSignatures: 5, maxSignedFields: 500 })
    return v.signatures.map((s) => `${s.result} ${s.algorithm} s=${s.selector}`)
  }

  it('a relay client: signed with RSA and Ed25519, over the message as the queue stores it', async () => {
    const srv = await server([relay(), dkim({ key_dir: join(keyDir, 'dkim') })], { relayclients: ['127.0.0.1'] })
    try {
      const r = await sendMailSession(srv, 'alice@mx.test', ['bob@example.net'], message('alice@mx.test'))
      assert.equal(r.code, 250)
      const data = srv.queued[0]?.text ?? ''
      const unfolded = data.replace(/\r\n[ \t]+/g, ' ')
      assert.match(unfolded, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=mx\.test; s=rsa2027;/)
      assert.match(unfolded, /\r\nDKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=mx\.test; s=ed2027;/)
      assert.match(unfolded, / h=from:from:sender:reply-to:subject:subject:date:date:message-id: message-id:to:to:cc:/)
      assert.deepEqual(await verifiedBy(data), ['pass rsa-sha256 s=rsa2027', 'pass ed25519-sha256 s=ed2027'])
    } finally {
      await srv.close()
    }
  })

  it('an authenticated user: signed with the key of the From domain', async () => {
    const srv = await server([authFlatFile(), dkim({ key_dir: join(keyDir, 'dkim') })], {
      flat_auth_pw: ['alice@mx.test:secret'],
    })
    try {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      await c.send(`AUTH PLAIN ${Buffer.from('\0alice@mx.test\0secret').toString('base64')}`, 235)
      const r = await sendMail(c, 'bounces@other.example', ['bob@example.net'], message('alice@mx.test'))
      assert.equal(r.code, 250)
      assert.equal((await verifiedBy(srv.queued[0]?.text ?? '')).length, 2)
    } finally {
      await srv.close()
    }
  })

  it('mail from other clients, and From domains without a key, are not signed', async () => {
    const srv = await server([relay(), dkim({ key_dir: join(keyDir, 'dkim') })], { relayclients: ['127.0.0.1'] })
    const outside = await server([dkim({ key_dir: join(keyDir, 'dkim') })])
    try {
      await sendMailSession(srv, 'carol@elsewhere.example', ['bob@example.net'], message('carol@elsewhere.example'))
      assert.doesNotMatch(srv.queued[0]?.text ?? '', /DKIM-Signature/)
      await sendMailSession(outside, 'alice@mx.test', ['bob@mx.test'], message('alice@mx.test'))
      assert.doesNotMatch(outside.queued[0]?.text ?? '', /DKIM-Signature/)
    } finally {
      await srv.close()
      await outside.close()
    }
  })

  it('a message without From is not signed (RFC 6376 §5.4)', async () => {
    const srv = await server([relay(), dkim({ key_dir: join(keyDir, 'dkim') })], { relayclients: ['127.0.0.1'] })
    try {
      await sendMailSession(
        srv,
        'alice@mx.test',
        ['bob@example.net'],
        'To: bob@example.net\r\nSubject: x\r\n\r\nhi\r\n',
      )
      assert.doesNotMatch(srv.queued[0]?.text ?? '', /DKIM-Signature/)
    } finally {
      await srv.close()
    }
  })

  it('a broken key stops the start with the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dkim-broken-'))
    try {
      const { mkdir, writeFile } = await import('node:fs/promises')
      await mkdir(join(dir, 'example.org'))
      await writeFile(join(dir, 'example.org', 'selector'), 'x\n')
      await writeFile(join(dir, 'example.org', 'private'), 'not a key')
      await assert.rejects(server([dkim({ key_dir: dir })]), /example\.org\/private: not a private key in PEM/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
