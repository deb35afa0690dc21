/**
 * arc through real SMTP sessions with scripted DNS: arc= in Authentication-Results, sealing as
 * a forwarder, and the reason ARC exists: a forwarder that changes the message breaks DKIM at
 * the mailbox, and the mailbox's arc=pass carries the forwarder's dkim=pass.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type ScriptedName, scriptedDns } from '../../dns/scripted.ts'
import { definePlugin, type PluginChoice } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { ArcValidated, type ArcValidation, sealArc, verifyArc } from '../../mailauth/arc/arc.ts'
import { relaxedBodyHash } from '../../mailauth/dkim/canonical.ts'
import { dnsRecord, generateKey } from '../../mailauth/dkim/keys.ts'
import { dkimSignature, type SigningKey } from '../../mailauth/dkim/sign.ts'
import { HeaderBlock } from '../../message/headers.ts'
import { startTestServer, type TestServer } from '../../testing/index.ts'
import relay from '../connect/relay.ts'
import { acceptRcpt, sendMailSession } from '../test-support.ts'
import arc from './arc.ts'
import dkim from './dkim.ts'

const author = generateKeyPairSync('rsa', { modulusLength: 2048 })
const upstream = generateKeyPairSync('rsa', { modulusLength: 2048 })
const authorKey: SigningKey = {
  domain: 'sender.example',
  selector: 's1',
  algorithm: 'rsa-sha256',
  privateKey: author.privateKey,
  file: 'a',
}
const upstreamKey: SigningKey = {
  domain: 'list.example',
  selector: 'arc1',
  algorithm: 'rsa-sha256',
  privateKey: upstream.privateKey,
  file: 'u',
}

let dir: string
let zone: Record<string, ScriptedName>
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-arc-plugin-'))
  const ours = await generateKey(join(dir, 'arc_seal'), 'forwarder.example', 'seal1')
  zone = {
    's1._domainkey.sender.example': { TXT: [dnsRecord(author.publicKey)] },
    'arc1._domainkey.list.example': { TXT: [dnsRecord(upstream.publicKey)] },
    'seal1._domainkey.forwarder.example': { TXT: [ours.record] },
    'slow._domainkey.list.example': 'timeout',
  }
})
after(() => rm(dir, { recursive: true, force: true }))

const message =
  'From: Alice <alice@sender.example>\r\nTo: bob@mx.test\r\nSubject: hello\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <a1@sender.example>\r\n\r\nHello Bob\r\n'

async function dkimSigned(text: string): Promise<string> {
  const { headers, body } = HeaderBlock.parse(Buffer.from(text))
  headers.prepend('DKIM-Signature', dkimSignature(headers.fields, await relaxedBodyHash([body]), authorKey))
  return `${headers.toBuffer().toString()}\r\n${body.toString()}`
}

/** An ARC set from list.example, as if the message had passed a mailing list before us. */
async function upstreamSealed(text: string, key = upstreamKey): Promise<string> {
  const none: ArcValidation = { result: 'none', instance: 0, reason: undefined, temporary: false, sealers: [] }
  const outcome = await sealArc(Readable.from([Buffer.from(text)]), {
    key,
    validation: none,
    authResults: 'list.example; dkim=pass header.d=sender.example',
  })
  assert.ok(outcome.sealed)
  return `${outcome.fields.map(([n, v]) => `${n}: ${v}\r\n`).join('')}${text}`
}

const authResults = (data: string) =>
  (/^Authentication-Results: ([\s\S]*?)\r\n(?![ \t])/m.exec(data)?.[1] ?? '').replace(/\r\n\t/g, ' ')

async function server(plugins: PluginChoice[], config: Record<string, string[]> = {}): Promise<TestServer> {
  return startTestServer({ plugins: [acceptRcpt(), ...plugins], dns: scriptedDns(zone), config })
}

/** What dmarc would read: the ArcValidated key, as each message had it. */
const observed: (ArcValidation | undefined)[] = []
const observer = definePlugin({
  name: 'test/arc-observer',
  options: {},
  setup: () => ({
    hooks: {
      dataPost: (ctx) => {
        observed.push(ctx.get(ArcValidated))
        return pass()
      },
    },
  }),
})

describe('arc: validating', () => {
  const cases: { name: string; content: () => Promise<string>; want: RegExp }[] = [
    {
      name: 'no chain: arc=none',
      content: async () => message,
      want: /^mx\.test; arc=none smtp\.remote-ip=127\.0\.0\.1$/,
    },
    {
      name: 'a valid chain: arc=pass (i=1)',
      content: () => upstreamSealed(message),
      want: /^mx\.test; arc=pass \(i=1\) smtp\.remote-ip=127\.0\.0\.1$/,
    },
    {
      name: 'a chain over a message changed after sealing: arc=fail',
      content: async () => (await upstreamSealed(message)).replace('Hello Bob', 'Hello Rob'),
      want: /^mx\.test; arc=fail \(i=1\) reason="[^"]+" smtp\.remote-ip=127\.0\.0\.1$/,
    },
    {
      name: 'the sealer key times out: arc=fail with the DNS reason, never a refusal',
      content: () => upstreamSealed(message, { ...upstreamKey, selector: 'slow' }),
      want: /arc=fail \(i=1\) reason="DNS failure: slow\._domainkey\.list\.example: ETIMEOUT"/,
    },
  ]
  for (const { name, content, want } of cases) {
    it(name, async () => {
      const srv = await server([arc()])
      try {
        const r = await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], await content())
        assert.equal(r.code, 250)
        assert.match(authResults(srv.queued[0]?.text ?? ''), want)
      } finally {
        await srv.close()
      }
    })
  }
})

describe('arc: sealing', () => {
  it('seals with cv=pass above a valid chain; the next hop validates i=2', async () => {
    const srv = await server([arc({ seal: 'forwarder.example', key_dir: join(dir, 'arc_seal') })])
    try {
      await sendMailSession(srv, 'alice@sender.example', ['bob@mx.test'], await upstreamSealed(message))
      const data = srv.queued[0]?.text ?? ''
      const unfolded = data.replace(/\r\n[ \t]+/g, ' ')
      assert.match(unfolded, /^ARC-Seal: i=2; a=rsa-sha256; t=\d+; cv=pass; d=forwarder\.example; s=seal1;/)
      assert.match(
        unfolded,
        /\r\nARC-Authentication-Results: i=2; mx\.test; arc=pass \(i=1\) smtp\.remote-ip=127\.0\.0\.1\r\n/,
      )
      const next = await verifyArc(Readable.from([Buffer.from(data)]), { dns: scriptedDns(zone) })
      assert.deepEqual(
        [next.result, next.instance, next.sealers.map((s) => s.domain)],
        ['pass', 2, ['list.example', 'forwarder.example']],
      )
    } finally {
      await srv.close()
    }
  })

  it('does not seal when the chain could not be validated for DNS trouble, nor mail from relay clients', async () => {
    const srv = await server([relay(), arc({ seal: 'forwarder.example', key_dir: join(dir, 'arc_seal') })], {
      relayclients: ['127.0.0.2'],
    })
    const fromRelay = await server([relay(), arc({ seal: 'forwarder.example', key_dir: join(dir, 'arc_seal') })], {
      relayclients: ['127.0.0.1'],
    })
    try {
      await sendMailSession(
        srv,
        'alice@sender.example',
        ['bob@mx.test'],
        await upstreamSealed(message, { ...upstreamKey, selector: 'slow' }),
      )
      assert.doesNotMatch(srv.queued[0]?.text ?? '', /ARC-Seal: i=2/)
      await sendMailSession(fromRelay, 'alice@mx.test', ['bob@example.net'], message)
      assert.doesNotMatch(fromRelay.queued[0]?.text ?? '', /ARC-Seal|arc=/)
    } finally {
      await srv.close()
      await fromRelay.close()
    }
  })

  it('a forwarder that changes the message: DKIM fails at the mailbox, ARC passes with the forwarder dkim=pass', async () => {
    // The forwarder tags the Subject (as a mailing list does) after verifying, then seals.
    const tagger = definePlugin({
      name: 'test/subject-tag',
      options: {},
      setup: () => ({
        hooks: {
          dataPost: (_ctx, msg) => {
            msg.headers.change('Subject', 0, `[list] ${msg.headers.first('Subject') ?? ''}`)
            return pass()
          },
        },
      }),
    })
    const forwarder = await server([
      dkim(),
      tagger(),
      arc({ seal: 'forwarder.example', key_dir: join(dir, 'arc_seal') }),
    ])
    const mailbox = await server([dkim(), arc(), observer()])
    try {
      await sendMailSession(forwarder, 'alice@sender.example', ['bob@mx.test'], await dkimSigned(message))
      const forwarded = forwarder.queued[0]?.text ?? ''
      assert.match(forwarded, /Subject: \[list\] hello/)
      await sendMailSession(mailbox, 'alice@sender.example', ['bob@mx.test'], forwarded.replace(/^\./gm, '..'))
      const ar = authResults(mailbox.queued[0]?.text ?? '')
      assert.match(ar, /dkim=fail reason="bad signature" header\.d=sender\.example/)
      assert.match(ar, /arc=pass \(i=1\)/)
      // dmarc's local policy may trust forwarder.example's word: it saw the author's signature pass.
      const sealer = observed.at(-1)?.sealers[0]
      assert.equal(sealer?.domain, 'forwarder.example')
      assert.match(sealer?.authResults ?? '', /^mx\.test; dkim=pass header\.d=sender\.example /)
    } finally {
      await forwarder.close()
      await mailbox.close()
    }
  })
})
