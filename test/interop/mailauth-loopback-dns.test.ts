/**
 * dkim, arc and domainkeys through real SMTP sessions with the process's DNS service against
 * real DNS servers on loopback: unbound with the keys, a server that never answers (DNS down
 * or slow) and unbound refusing the zone (SERVFAIL-like). DNS trouble is temperror (dkim: 451
 * only with reject 1), arc=fail with the reason and no seal, never a 5xx. And a message with
 * 1,000 DKIM-Signature fields gets its answer after at most max_signatures key lookups.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { objectConfigSource } from '../../src/config/config-source.ts'
import { createDnsService } from '../../src/dns/config.ts'
import type { DnsService } from '../../src/dns/types.ts'
import type { PluginChoice } from '../../src/host/define-plugin.ts'
import { type ArcValidation, sealArc } from '../../src/mailauth/arc/arc.ts'
import { relaxedBodyHash } from '../../src/mailauth/dkim/canonical.ts'
import { dnsRecord, generateKey, txtStrings } from '../../src/mailauth/dkim/keys.ts'
import { dkimSignature, type SigningKey } from '../../src/mailauth/dkim/sign.ts'
import { HeaderBlock } from '../../src/message/headers.ts'
import arc from '../../src/plugins/data/arc.ts'
import dkim from '../../src/plugins/data/dkim.ts'
import domainkeys from '../../src/plugins/data/domainkeys.ts'
import { acceptRcpt, sendMailSession } from '../../src/plugins/test-support.ts'
import { startTestServer } from '../../src/testing/index.ts'
import { answer, type DnsResponder, startDnsResponder } from '../peers/dns-responder.ts'
import { startUnbound, type Unbound } from '../peers/unbound.ts'

const author = generateKeyPairSync('rsa', { modulusLength: 2048 })
const lister = generateKeyPairSync('rsa', { modulusLength: 2048 })
const authorKey: SigningKey = {
  domain: 'sender.example',
  selector: 's1',
  algorithm: 'rsa-sha256',
  privateKey: author.privateKey,
  file: 'a',
}
const listKey: SigningKey = {
  domain: 'list.example',
  selector: 'arc1',
  algorithm: 'rsa-sha256',
  privateKey: lister.privateKey,
  file: 'l',
}

let dir: string
let unbound: Unbound
let silent: DnsResponder
let nxdomain: DnsResponder
let good: DnsService
let down: DnsService
let refused: DnsService
let counted: DnsService

const service = (server: { port: number }, settings: string[] = []) =>
  createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${server.port}`], 'smtpd.conf': settings }))

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-mailauth-dns-'))
  const seal = await generateKey(join(dir, 'arc_seal'), 'forwarder.example', 'seal1')
  unbound = await startUnbound({
    zones: {
      'sender.example': 'static',
      'list.example': 'static',
      'forwarder.example': 'static',
      'refused.example': 'refuse',
    },
    records: [
      `s1._domainkey.sender.example. 300 IN TXT ${txtStrings(dnsRecord(author.publicKey))}`,
      `arc1._domainkey.list.example. 300 IN TXT ${txtStrings(dnsRecord(lister.publicKey))}`,
      `seal1._domainkey.forwarder.example. 300 IN TXT ${txtStrings(seal.record)}`,
    ],
  })
  silent = await startDnsResponder(() => [])
  nxdomain = await startDnsResponder((q) => [answer(q, { rcode: 'NXDOMAIN' })])
  good = service(unbound)
  refused = service(unbound)
  down = service(silent, ['dns_timeout 500ms', 'dns_retries 0'])
  counted = service(nxdomain)
})
after(async () => {
  await unbound.stop()
  await silent.close()
  await nxdomain.close()
  await rm(dir, { recursive: true, force: true })
})

const message = (from = 'alice@sender.example') =>
  `From: Alice <${from}>\r\nTo: bob@mx.test\r\nSubject: hello\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@sender.example>\r\n\r\nHello Bob\r\n`

async function signed(text: string, key = authorKey): Promise<string> {
  const { headers, body } = HeaderBlock.parse(Buffer.from(text))
  headers.prepend('DKIM-Signature', dkimSignature(headers.fields, await relaxedBodyHash([body]), key))
  return `${headers.toBuffer().toString()}\r\n${body.toString()}`
}

async function listSealed(text: string): Promise<string> {
  const none: ArcValidation = { result: 'none', instance: 0, reason: undefined, temporary: false, sealers: [] }
  const r = await sealArc(Readable.from([Buffer.from(text)]), {
    key: listKey,
    validation: none,
    authResults: 'list.example; dkim=pass header.d=sender.example',
  })
  assert.ok(r.sealed)
  return `${r.fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}${text}`
}

const authResults = (data: string) =>
  (/^Authentication-Results: ([\s\S]*?)\r\n(?![ \t])/m.exec(data)?.[1] ?? '').replace(/\r\n\t/g, ' ')

async function session(dns: DnsService, plugins: PluginChoice[], content: string, headerSize?: number) {
  const srv = await startTestServer({
    plugins: [acceptRcpt(), ...plugins],
    dns,
    ...(headerSize === undefined ? {} : { limits: { headerSize } }),
  })
  try {
    const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], content)
    return { reply: r.raw, data: srv.queued[0]?.text ?? '' }
  } finally {
    await srv.close()
  }
}

const sealing = () => arc({ seal: 'forwarder.example', key_dir: join(dir, 'arc_seal') })

describe('mail authentication against DNS servers on loopback', () => {
  it('unbound answers: dkim=pass, arc=pass, the forwarder seals i=2, domainkeys=neutral', async () => {
    const content = `DomainKey-Signature: a=rsa-sha1; d=sender.example; s=old; b=abc\r\n${await listSealed(await signed(message()))}`
    const { reply, data } = await session(good, [dkim({ reject: '1' }), domainkeys(), sealing()], content)
    assert.match(reply, /^250 /)
    assert.match(
      authResults(data),
      /^mx\.test; dkim=pass header\.d=sender\.example .*; domainkeys=neutral .*; arc=pass \(i=1\) smtp\.remote-ip=127\.0\.0\.1$/,
    )
    assert.match(data, /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=pass;/)
  })

  const outages: { name: string; dns: () => DnsService; signature: () => Promise<string>; lookup: RegExp }[] = [
    { name: 'a server that never answers', dns: () => down, signature: () => signed(message()), lookup: /ETIMEOUT/ },
    {
      name: 'a server that refuses the zone',
      dns: () => refused,
      signature: () => signed(message('alice@refused.example'), { ...authorKey, domain: 'refused.example' }),
      lookup: /ESERVFAIL/,
    },
  ]
  for (const { name, dns, signature, lookup } of outages) {
    it(`${name}: dkim=temperror and 451 with reject 1, 250 with reject 0; never 5xx`, async () => {
      const content = await signature()
      const strict = await session(dns(), [dkim({ reject: '1' })], content)
      assert.match(strict.reply, /^451 4\.7\.5 DKIM keys could not be looked up, try again later/)
      const lenient = await session(dns(), [dkim()], content)
      assert.match(lenient.reply, /^250 /)
      const ar = authResults(lenient.data)
      assert.match(ar, /dkim=temperror reason="DNS failure: /)
      assert.match(ar, lookup)
    })
  }

  it('a server that never answers: arc=fail with the DNS reason, and the message is not sealed', async () => {
    const { reply, data } = await session(down, [sealing()], await listSealed(message()))
    assert.match(reply, /^250 /)
    assert.match(authResults(data), /arc=fail \(i=1\) reason="DNS failure: arc1\._domainkey\.list\.example: ETIMEOUT"/)
    assert.doesNotMatch(data, /ARC-Seal: i=2/)
  })

  it('1,000 DKIM-Signature fields: 250 with 5 results and one for the rest, after 5 key lookups (the top five)', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => ({ ...authorKey, selector: `k${i}` }))
    const { headers, body } = HeaderBlock.parse(Buffer.from(message()))
    const bh = await relaxedBodyHash([body])
    const fields = headers.fields
    for (const k of keys) headers.prepend('DKIM-Signature', dkimSignature(fields, bh, k))
    const content = `${headers.toBuffer().toString()}\r\n${body.toString()}`
    const before = nxdomain.queries.length
    const { reply, data } = await session(counted, [dkim()], content, 2_000_000)
    assert.match(reply, /^250 /)
    const results = authResults(data).split('; ').slice(1)
    assert.equal(results.length, 6)
    assert.ok(
      results.slice(0, 5).every((r) => r.startsWith('dkim=neutral reason="no key"')),
      results.join('\n'),
    )
    assert.equal(results[5], 'dkim=neutral reason="995 more signatures not verified (at most 5 per message)"')
    const asked = new Set(nxdomain.queries.slice(before).map((q) => q.name))
    assert.deepEqual(
      [...asked].sort(),
      ['k995', 'k996', 'k997', 'k998', 'k999'].map((s) => `${s}._domainkey.sender.example`).sort(),
    )
  })
})
