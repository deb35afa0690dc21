/**
 * dmarc through real SMTP sessions with sender_permitted_from before it, zones served by a
 * private unbound on loopback (the client is 127.0.0.1): pass by aligned SPF, p=reject refused
 * with 550 5.7.1, quarantine marked or refused, relay clients skipped, report records written,
 * a DNS failure reported as temperror and never refused, several From fields a permerror.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startUnbound, type Unbound } from '../../../test/peers/unbound.ts'
import { objectConfigSource } from '../../config/config-source.ts'
import { createDnsService } from '../../dns/config.ts'
import type { DnsResolver } from '../../dns/types.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { accept } from '../../host/verdict.ts'
import { relaxedBodyHash } from '../../mailauth/dkim/canonical.ts'
import { dnsRecord, txtStrings } from '../../mailauth/dkim/keys.ts'
import { dkimSignature } from '../../mailauth/dkim/sign.ts'
import { HeaderBlock } from '../../message/headers.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../../testing/index.ts'
import senderPermittedFrom from '../mail/sender-permitted-from.ts'
import dkim from './dkim.ts'
import dmarc from './dmarc.ts'

const bankKey = generateKeyPairSync('ed25519')

let unbound: Unbound
let dns: DnsResolver
before(async () => {
  unbound = await startUnbound({
    zones: { 'test.': 'static', 'down.test.': 'refuse' },
    records: [
      'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60',
      'sender.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"',
      'bank.test. 300 IN A 192.0.2.1',
      'bank.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"',
      '_dmarc.bank.test. 300 IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@bank.test"',
      'shop.test. 300 IN TXT "v=spf1 ip4:127.0.0.1 -all"',
      '_dmarc.shop.test. 300 IN TXT "v=DMARC1; p=quarantine"',
      `s1._domainkey.bank.test. 300 IN TXT ${txtStrings(dnsRecord(bankKey.publicKey))}`,
    ],
  })
  dns = createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${unbound.port}`] }))
})
after(() => unbound.stop())

const authOk = definePlugin({ name: 'test/auth', options: {}, setup: () => ({ hooks: { authPlain: () => accept() } }) })

function withDmarc(options: Parameters<typeof dmarc>[0], fn: (srv: TestServer) => Promise<void>) {
  return withTestServer(
    {
      plugins: [senderPermittedFrom({ reject: '1' }), dkim(), dmarc(options), authOk(), acceptAllRecipients()],
      dns,
      policies: { authRequiresTls: false },
    },
    fn,
  )
}

async function send(srv: TestServer, sender: string, from: string, opts: { auth?: boolean } = {}) {
  const c = await openSession(srv, 'client.test')
  if (opts.auth) await c.send(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`, 235)
  await c.send(`MAIL FROM:<${sender}>`, 250)
  await c.send('RCPT TO:<u@local.test>', 250)
  await c.send('DATA', 354)
  const r = await c.send(`${from}Subject: s\r\n\r\nbody\r\n.`, /^\d{3}/)
  await c.quit()
  return { reply: r?.raw ?? '', text: srv.queued.at(-1)?.text ?? '' }
}

describe('dmarc', () => {
  it('aligned SPF: dmarc=pass in Authentication-Results', () =>
    withDmarc({}, async (srv) => {
      const { reply, text } = await send(srv, 'a@bank.test', 'From: a@bank.test\r\n')
      assert.match(reply, /^250 /)
      assert.match(
        text,
        /\r\n\tdmarc=pass \(p=REJECT sp=REJECT dis=NONE\) header\.from=bank\.test policy\.dmarc=none\r\n/,
      )
    }))

  it('a DKIM signature of the From domain aligns when SPF does not: dmarc=pass through the dkim plugin', () =>
    withDmarc({}, async (srv) => {
      const { headers, body } = HeaderBlock.parse(Buffer.from('From: ceo@bank.test\r\nSubject: s\r\n\r\nbody\r\n'))
      const key = {
        domain: 'bank.test',
        selector: 's1',
        algorithm: 'ed25519-sha256' as const,
        privateKey: bankKey.privateKey,
        file: 'test',
      }
      headers.prepend('DKIM-Signature', dkimSignature(headers.fields, await relaxedBodyHash([body]), key))
      // send() adds the Subject field and the body that were signed.
      const signedFields = headers
        .toBuffer()
        .toString()
        .replace(/Subject: s\r\n$/, '')
      const { reply, text } = await send(srv, 'a@sender.test', signedFields)
      assert.match(reply, /^250 /)
      assert.match(
        text,
        /\r\n\tdkim=pass .*header\.d=bank\.test.*;\r\n\tdmarc=pass \(p=REJECT sp=REJECT dis=NONE\) header\.from=bank\.test/,
      )
    }))

  it('From a p=reject domain that nothing aligns with: 550 5.7.1, nothing queued', () =>
    withDmarc({}, async (srv) => {
      const { reply } = await send(srv, 'a@sender.test', 'From: "Bank" <ceo@bank.test>\r\n')
      assert.equal(reply, '550 5.7.1 DMARC policy of bank.test refuses this message\r\n')
      assert.equal(srv.queued.length, 0)
    }))

  it('reject 0 only reports; reject_type temp answers 451', async () => {
    await withDmarc({ reject: '0' }, async (srv) => {
      const { reply, text } = await send(srv, 'a@sender.test', 'From: ceo@bank.test\r\n')
      assert.match(reply, /^250 /)
      assert.match(text, /\tdmarc=fail \(p=REJECT sp=REJECT dis=REJECT\) header\.from=bank\.test policy\.dmarc=reject/)
    })
    await withDmarc({ reject_type: 'temp' }, async (srv) => {
      assert.match((await send(srv, 'a@sender.test', 'From: ceo@bank.test\r\n')).reply, /^451 4\.7\.1 /)
    })
  })

  it('quarantine: accepted and marked by default, refused with quarantine reject', async () => {
    await withDmarc({}, async (srv) => {
      const { reply, text } = await send(srv, 'a@sender.test', 'From: a@shop.test\r\n')
      assert.match(reply, /^250 /)
      assert.match(
        text,
        /\tdmarc=fail \(p=QUARANTINE sp=QUARANTINE dis=QUARANTINE\) header\.from=shop\.test policy\.dmarc=quarantine/,
      )
    })
    await withDmarc({ quarantine: 'reject' }, async (srv) => {
      assert.match((await send(srv, 'a@sender.test', 'From: a@shop.test\r\n')).reply, /^550 5\.7\.1 /)
    })
  })

  it('a relay client (authenticated) is not checked', () =>
    withDmarc({}, async (srv) => {
      const { reply, text } = await send(srv, 'a@sender.test', 'From: ceo@bank.test\r\n', { auth: true })
      assert.match(reply, /^250 /)
      assert.doesNotMatch(text, /dmarc=/)
    }))

  it('a DNS server that refuses: dmarc=temperror, accepted (a DNS outage never refuses)', () =>
    withDmarc({}, async (srv) => {
      const { reply, text } = await send(srv, 'a@sender.test', 'From: a@down.test\r\n')
      assert.match(reply, /^250 /)
      assert.match(text, /\tdmarc=temperror \(DNS error\) header\.from=down\.test\r\n/)
    }))

  it('two From fields: dmarc=permerror, reported and accepted', () =>
    withDmarc({}, async (srv) => {
      const { reply, text } = await send(srv, 'a@sender.test', 'From: ceo@bank.test\r\nFrom: a@sender.test\r\n')
      assert.match(reply, /^250 /)
      assert.match(text, /\tdmarc=permerror \(multiple-from-fields\)\r\n/)
    }))

  it('report_file: one JSON record per message of a domain that asks for reports', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dmarc-'))
    try {
      const file = join(dir, 'dmarc.jsonl')
      await withDmarc({ reject: '0', report_file: file }, async (srv) => {
        await send(srv, 'a@sender.test', 'From: ceo@bank.test\r\n')
        await send(srv, 'a@sender.test', 'From: a@shop.test\r\n')
      })
      const lines = (await readFile(file, 'utf8')).trim().split('\n')
      assert.equal(lines.length, 1)
      const record = JSON.parse(lines[0] ?? '{}')
      assert.deepEqual(
        {
          published: record.policyPublished,
          row: record.row,
          identifiers: record.identifiers,
          spf: record.authResults.spf,
        },
        {
          published: {
            domain: 'bank.test',
            adkim: 'r',
            aspf: 'r',
            p: 'reject',
            sp: 'reject',
            pct: 100,
            testing: false,
            rua: 'mailto:dmarc@bank.test',
          },
          row: {
            sourceIp: '127.0.0.1',
            count: 1,
            policyEvaluated: { disposition: 'reject', dkim: 'fail', spf: 'fail' },
          },
          identifiers: { headerFrom: 'bank.test', envelopeFrom: 'sender.test' },
          spf: [{ domain: 'sender.test', scope: 'mfrom', result: 'pass' }],
        },
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
