/**
 * DKIM interoperability, offline, every key served by a real DNS server on loopback (unbound):
 * - mail our dkim plugin signs for a relay client (RSA and Ed25519) verifies with dkimpy's
 *   dkimverify, OpenDKIM's opendkim-testmsg and our own verifier; a changed signed header, an
 *   added From or a changed body makes all three fail;
 * - mail signed by dkimpy's dkimsign (both canonicalizations, RSA and Ed25519) verifies through
 *   a real SMTP session with dkim (Authentication-Results); changed, it fails. opendkim-testmsg
 *   signs with rsa-sha1 only: that is `policy` (RFC 8301 §3.1), a changed body still `fail`.
 * dkimpy and OpenDKIM ask the system resolver (port 53): they run in a network namespace where
 * unbound answers on 127.0.0.1:53 (test/peers/dns-namespace.ts). The pass counts are printed
 * for docs/conformance.md.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { objectConfigSource } from '../../src/config/config-source.ts'
import { createDnsService } from '../../src/dns/config.ts'
import type { DnsService } from '../../src/dns/types.ts'
import { dnsRecord, generateKey, txtStrings } from '../../src/mailauth/dkim/keys.ts'
import { verifyDkim } from '../../src/mailauth/dkim/verify.ts'
import relay from '../../src/plugins/connect/relay.ts'
import dkim from '../../src/plugins/data/dkim.ts'
import { acceptRcpt, sendMailSession } from '../../src/plugins/test-support.ts'
import { startTestServer } from '../../src/testing/index.ts'
import { namespacesAvailable, runWithLoopbackDns, type ToolRun } from '../peers/dns-namespace.ts'
import { startUnbound, type Unbound, type UnboundOptions } from '../peers/unbound.ts'

const skip = namespacesAvailable() ? false : 'unprivileged user namespaces are not available (unshare -rnm)'

const theirRsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const theirEd = generateKeyPairSync('ed25519', undefined)

let dir: string
let zone: UnboundOptions
let unbound: Unbound
let dns: DnsService

before(async () => {
  if (skip) return
  dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dkim-interop-'))
  const rsa = await generateKey(join(dir, 'dkim'), 'example.org', 'rsa2027')
  const ed = await generateKey(join(dir, 'dkim'), 'example.org', 'ed2027', { type: 'ed25519' })
  await writeFile(join(dir, 'their-rsa.pem'), theirRsa.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  // dkimpy takes an Ed25519 key as the base64 of its 32-octet seed.
  const seed = theirEd.privateKey.export({ type: 'pkcs8', format: 'der' }).subarray(-32)
  await writeFile(join(dir, 'their-ed25519.key'), seed.toString('base64'))
  const record = (name: string, text: string) => `${name}. 300 IN TXT ${txtStrings(text)}`
  zone = {
    zones: { 'example.org': 'static', 'example.net': 'static' },
    records: [
      record(rsa.name, rsa.record),
      record(ed.name, ed.record),
      record('py._domainkey.example.net', dnsRecord(theirRsa.publicKey)),
      record('pyed._domainkey.example.net', dnsRecord(theirEd.publicKey)),
      record('od._domainkey.example.net', dnsRecord(theirRsa.publicKey)),
    ],
  }
  unbound = await startUnbound(zone)
  dns = createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${unbound.port}`] }))
})
after(async () => {
  if (skip) return
  await unbound.stop()
  await rm(dir, { recursive: true, force: true })
})

const message = [
  'From: Alice <alice@example.org>',
  'To: Bob <bob@example.net>',
  'Cc: carol@example.net',
  'Subject: interop',
  '  on two lines',
  'Date: Fri, 4 Dec 2026 10:00:00 +0000',
  'Message-ID: <interop@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Hello Bob,  ',
  '\tthis line starts with a tab and has  double  spaces.',
  '',
  '',
].join('\r\n')

const ours = async (text: string) => {
  const v = await verifyDkim(Readable.from([Buffer.from(text)]), { dns, maxSignatures: 5, maxSignedFields: 500 })
  return v.signatures.map((s) => s.result).join(',')
}

/** Without the k-th DKIM-Signature field (the others do not cover it). */
const withoutSignature = (text: string, k: number) => {
  const fields = text.split(/\r\n(?![ \t])/)
  const at = fields.map((f, i) => (/^DKIM-Signature:/i.test(f) ? i : -1)).filter((i) => i >= 0)[k]
  return fields.filter((_, i) => i !== at).join('\r\n')
}

/** Dot-stuffed, CRLF, for DATA. */
const forData = (text: string) =>
  `${text
    .replace(/\r?\n/g, '\r\n')
    .replace(/^\./gm, '..')
    .replace(/(\r\n)?$/, '\r\n')}`

describe('DKIM interop: our signatures, verified by dkimpy, OpenDKIM and us', { skip }, () => {
  it('RSA and Ed25519 signatures pass all three; changed header, added From, changed body fail all three', async () => {
    const srv = await startTestServer({
      plugins: [acceptRcpt(), relay(), dkim({ key_dir: join(dir, 'dkim') })],
      config: { relayclients: ['127.0.0.1'] },
      dns,
    })
    let signed: string
    try {
      const r = await sendMailSession(srv, 'alice@example.org', ['bob@example.net'], forData(message))
      assert.equal(r.code, 250)
      signed = srv.queued[0]?.text ?? ''
    } finally {
      await srv.close()
    }
    const rsaOnly = withoutSignature(signed, 1)
    const edOnly = withoutSignature(signed, 0)
    const variants: { name: string; text: string; ok: boolean }[] = [
      { name: 'rsa-sha256', text: rsaOnly, ok: true },
      { name: 'ed25519-sha256', text: edOnly, ok: true },
      { name: 'rsa-sha256, Subject changed', text: rsaOnly.replace('Subject: interop', 'Subject: Interop'), ok: false },
      {
        name: 'ed25519-sha256, Subject changed',
        text: edOnly.replace('Subject: interop', 'Subject: Interop'),
        ok: false,
      },
      { name: 'rsa-sha256, a second From on top', text: `From: mallory@example.com\r\n${rsaOnly}`, ok: false },
      { name: 'ed25519-sha256, a Reply-To added', text: `Reply-To: mallory@example.com\r\n${edOnly}`, ok: false },
      { name: 'rsa-sha256, body changed', text: rsaOnly.replace('Hello Bob', 'Hello Rob'), ok: false },
      { name: 'ed25519-sha256, body changed', text: edOnly.replace('Hello Bob', 'Hello Rob'), ok: false },
    ]
    const runs: ToolRun[] = variants.flatMap((v) => [
      { argv: ['/usr/bin/dkimverify'], stdin: v.text },
      { argv: ['/usr/sbin/opendkim-testmsg'], stdin: v.text },
    ])
    const results = await runWithLoopbackDns(zone, runs)
    const table: string[] = []
    let agreed = 0
    for (const [i, v] of variants.entries()) {
      const py = results[2 * i]
      const od = results[2 * i + 1]
      const got = {
        dkimpy: py?.code === 0 && py.stdout.trim() === 'signature ok',
        opendkim: od?.code === 0 && od.stderr === '',
        qtsmtpd: (await ours(v.text)) === 'pass',
      }
      const want = { dkimpy: v.ok, opendkim: v.ok, qtsmtpd: v.ok }
      agreed += Object.values(got).filter((g) => g === v.ok).length
      table.push(`${v.name}: ${JSON.stringify(got)} ${py?.stderr.split('\n').at(-2) ?? ''} ${od?.stderr.trim() ?? ''}`)
      assert.deepEqual(got, want, table.join('\n'))
    }
    console.log(
      `dkim interop, our signatures: ${agreed}/${variants.length * 3} verdicts as expected (dkimpy, OpenDKIM, qtsmtpd)`,
    )
  })
})

describe('DKIM interop: signatures by dkimpy and OpenDKIM, verified by qtsmtpd through SMTP', { skip }, () => {
  it('dkimsign (simple and relaxed, RSA and Ed25519) and opendkim-testmsg signatures pass; changed, they fail', async () => {
    const signers: { name: string; argv: string[] }[] = [
      {
        name: 'dkimpy rsa-sha256 relaxed/relaxed',
        argv: ['/usr/bin/dkimsign', '--bcanon', 'relaxed', 'py', 'example.net', join(dir, 'their-rsa.pem')],
      },
      {
        name: 'dkimpy rsa-sha256 relaxed/simple',
        argv: ['/usr/bin/dkimsign', 'py', 'example.net', join(dir, 'their-rsa.pem')],
      },
      {
        name: 'dkimpy rsa-sha256 simple/simple',
        argv: [
          '/usr/bin/dkimsign',
          '--hcanon',
          'simple',
          '--bcanon',
          'simple',
          'py',
          'example.net',
          join(dir, 'their-rsa.pem'),
        ],
      },
      {
        name: 'dkimpy ed25519-sha256 relaxed/relaxed',
        argv: [
          '/usr/bin/dkimsign',
          '--signalg',
          'ed25519-sha256',
          '--bcanon',
          'relaxed',
          'pyed',
          'example.net',
          join(dir, 'their-ed25519.key'),
        ],
      },
      {
        name: 'opendkim-testmsg rsa-sha256',
        argv: ['/usr/sbin/opendkim-testmsg', '-C', '-d', 'example.net', '-s', 'od', '-k', join(dir, 'their-rsa.pem')],
      },
    ]
    const original = message.replace('alice@example.org', 'alice@example.net')
    const signed = await runWithLoopbackDns(
      zone,
      signers.map((s) => ({ argv: s.argv, stdin: original })),
    )
    const srv = await startTestServer({ plugins: [acceptRcpt(), dkim()], dns })
    let passed = 0
    try {
      for (const [i, s] of signers.entries()) {
        const out = signed[i]
        assert.equal(out?.code, 0, `${s.name}: ${out?.stderr}`)
        const text = forData(out?.stdout ?? '')
        // opendkim-testmsg signs with rsa-sha1, which RFC 8301 §3.1 forbids verifiers to accept.
        const sha1 = s.name.startsWith('opendkim')
        for (const [variant, content, want] of [
          [
            'as signed',
            text,
            sha1
              ? /dkim=policy reason="rsa-sha1 \(RFC 8301\)" header\.d=example\.net/
              : /dkim=pass header\.d=example\.net/,
          ],
          ['body changed', text.replace('Hello Bob', 'Hello Rob'), /dkim=fail reason="body hash did not verify"/],
          [
            'Subject changed',
            text.replace('Subject: interop', 'Subject: Interop'),
            sha1 ? /dkim=policy reason="rsa-sha1/ : /dkim=fail reason="bad signature"/,
          ],
        ] as const) {
          const before = srv.queued.length
          const r = await sendMailSession(srv, 'alice@example.net', ['bob@mx.test'], content)
          assert.equal(r.code, 250)
          const stored = srv.queued[before]?.text ?? ''
          assert.match(stored.replace(/\r\n\t/g, ' '), want, `${s.name}, ${variant}`)
          passed++
        }
      }
    } finally {
      await srv.close()
    }
    console.log(
      `dkim interop, their signatures: ${passed}/${signers.length * 3} verdicts as expected (dkimpy, OpenDKIM signers)`,
    )
  })
})
