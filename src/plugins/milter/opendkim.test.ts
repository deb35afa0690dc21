/**
 * milter with Debian's OpenDKIM through real SMTP sessions. Signing: mail from 127.0.0.1 (an
 * internal host) gets OpenDKIM's DKIM-Signature through SMFIR_INSHEADER, and the stored message
 * verifies with dkimpy's dkimverify and OpenDKIM's own opendkim-testmsg against the key served
 * by a loopback DNS server (simple and relaxed canonicalization, headers without a space after
 * the colon and folded ones: the header bytes reach the milter exactly, SMFIP_HDR_LEADSPC); a
 * changed copy fails, so the verification means something. Verifying: a second OpenDKIM that
 * treats us as external checks that signature and adds its Authentication-Results field.
 * Stopped or hanging OpenDKIM: the failure policy.
 */
import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { namespacesAvailable, runWithLoopbackDns } from '../../../test/peers/dns-namespace.ts'
import { type OpenDkim, startOpenDkim } from '../../../test/peers/opendkim.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import { sendMailSession } from '../test-support.ts'
import milter from './index.ts'

const skipDns = namespacesAvailable() ? false : 'unprivileged user namespaces are not available (unshare -rnm)'

const MESSAGE = [
  'From: Alice <alice@example.org>',
  'To: bob@example.net',
  'Subject:no space after the colon',
  'Date: Fri, 4 Dec 2026 10:00:00 +0000',
  'Message-ID: <milter-1@example.org>',
  'X-Folded: one',
  '  two',
  '',
  'Hello Bob,',
  '',
  '..a line that started with a dot',
  '',
].join('\r\n')

const send = (srv: TestServer) => sendMailSession(srv, 'alice@example.org', ['bob@example.net'], MESSAGE)

/** Both verifiers' verdicts on each text, with the key in loopback DNS. */
async function verify(dkim: OpenDkim, texts: readonly string[]): Promise<{ dkimpy: boolean; opendkim: boolean }[]> {
  const zone = {
    zones: { 'example.org': 'static' as const },
    records: [`${dkim.recordName}. 300 IN TXT "${dkim.record.match(/.{1,200}/g)?.join('" "')}"`],
  }
  const results = await runWithLoopbackDns(
    zone,
    texts.flatMap((text) => [
      { argv: ['/usr/bin/dkimverify'], stdin: text },
      { argv: ['/usr/sbin/opendkim-testmsg'], stdin: text },
    ]),
  )
  return texts.map((_, i) => ({
    dkimpy: results[2 * i]?.code === 0 && results[2 * i]?.stdout.trim() === 'signature ok',
    opendkim: results[2 * i + 1]?.code === 0 && results[2 * i + 1]?.stderr === '',
  }))
}

for (const canonicalization of ['simple/simple', 'relaxed/relaxed']) {
  describe(`milter with OpenDKIM signing (${canonicalization})`, () => {
    let dkim: OpenDkim
    before(async () => {
      dkim = await startOpenDkim({
        domain: 'example.org',
        selector: 'sel',
        settings: { Canonicalization: canonicalization },
      })
    })
    after(() => dkim.close())

    it('the signature OpenDKIM adds through the milter verifies (dkimpy, opendkim-testmsg); changed, it fails', {
      skip: skipDns,
    }, async () => {
      await withTestServer(
        { plugins: [milter({ name: 'opendkim', socket: dkim.socket }), acceptAllRecipients()] },
        async (srv) => {
          assert.equal((await send(srv)).code, 250)
          const stored = srv.queued[0]?.text ?? ''
          assert.match(
            stored,
            new RegExp(`^DKIM-Signature: v=1; a=rsa-sha256; c=${canonicalization}; d=example\\.org; s=sel;\\r\\n\\t`),
          )
          assert.match(
            stored,
            /\r\nReceived: from client\.test /,
            'the signature is above our Received field (insert at 0)',
          )
          const changed = stored.replace('Hello Bob', 'Hello Rob')
          const [original, tampered] = await verify(dkim, [stored, changed])
          assert.deepEqual(original, { dkimpy: true, opendkim: true }, stored)
          assert.deepEqual(tampered, { dkimpy: false, opendkim: false })
        },
      )
    })
  })
}

describe('milter with OpenDKIM verifying', () => {
  let signer: OpenDkim
  let verifier: OpenDkim
  before(async () => {
    signer = await startOpenDkim({ domain: 'example.org', selector: 'sel' })
    verifier = await startOpenDkim({
      domain: 'example.com',
      selector: 'other',
      settings: { Mode: 'v', InternalHosts: '192.0.2.1', AuthservID: 'mx.test' },
    })
    // The verifier reads the signer's key from a file instead of DNS (OpenDKIM's TestPublicKeys).
    await writeFile(join(verifier.dir, 'keys'), `${signer.recordName} ${signer.record}\n`)
    await verifier.stop()
    const conf = join(verifier.dir, 'opendkim.conf')
    await writeFile(conf, `${await readFile(conf, 'utf8')}TestPublicKeys ${join(verifier.dir, 'keys')}\n`)
    await verifier.start()
  })
  after(async () => {
    await signer.close()
    await verifier.close()
  })

  it('a second OpenDKIM checks the signature the first added and reports dkim=pass', async () => {
    let signed = ''
    await withTestServer(
      { plugins: [milter({ name: 'signer', socket: signer.socket }), acceptAllRecipients()] },
      async (srv) => {
        assert.equal((await send(srv)).code, 250)
        signed = srv.queued[0]?.text ?? ''
      },
    )
    // Relayed on: our Received field on top is not the client's, so drop it as the next hop would keep it.
    const relayed = signed.replace(/\r\nReceived: [\s\S]*?(?=\r\n[^ \t])/, '')
    await withTestServer(
      { plugins: [milter({ name: 'verifier', socket: verifier.socket }), acceptAllRecipients()] },
      async (srv) => {
        const reply = await sendMailSession(
          srv,
          'alice@example.org',
          ['bob@example.net'],
          relayed.replace(/^\./gm, '..'),
        )
        assert.equal(reply.code, 250)
        assert.match(
          srv.queued[0]?.text ?? '',
          /^Authentication-Results: mx\.test;\r\n\tdkim=pass \(2048-bit key\) header\.d=example\.org header\.i=@example\.org header\.a=rsa-sha256 header\.s=sel header\.b=[A-Za-z0-9+/]{8};/,
        )
      },
    )
  })
})

describe('milter with OpenDKIM away', () => {
  it('stopped: 421 at the greeting (tempfail); hanging (SIGSTOP): 421 after command_timeout', async () => {
    const dkim = await startOpenDkim({ domain: 'example.org', selector: 'sel' })
    try {
      await withTestServer(
        {
          plugins: [
            milter({ name: 'opendkim', socket: dkim.socket, command_timeout: '500ms', content_timeout: '500ms' }),
            acceptAllRecipients(),
          ],
        },
        async (srv) => {
          assert.equal((await send(srv)).code, 250)
          dkim.pause()
          const hung = await srv.connect()
          await hung.expect('421 4.7.1 Service unavailable - try again later', 10_000)
          dkim.resume()
          await dkim.stop()
          const down = await srv.connect()
          await down.expect('421 4.7.1 Service unavailable - try again later')
          await dkim.start()
          assert.equal((await send(srv)).code, 250)
          assert.equal(srv.queued.length, 2)
        },
      )
    } finally {
      await dkim.close()
    }
  })
})
