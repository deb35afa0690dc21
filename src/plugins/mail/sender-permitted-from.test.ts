/**
 * sender_permitted_from through real SMTP sessions, its zones served by a private unbound on
 * loopback (the client is 127.0.0.1): results in Authentication-Results and Received-SPF, the
 * reject levels, the null sender's HELO identity, relay clients skipped, a DNS server that
 * refuses or never answers (temperror: 4xx, never 5xx), and hostile records (include loops,
 * too many lookups, void lookups, syntax errors) ending in permerror within bounded time.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startUnbound, type Unbound } from '../../../test/peers/unbound.ts'
import { objectConfigSource } from '../../config/config-source.ts'
import { createDnsService } from '../../dns/config.ts'
import { scriptedDns } from '../../dns/scripted.ts'
import type { DnsResolver } from '../../dns/types.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { accept } from '../../host/verdict.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../../testing/index.ts'
import senderPermittedFrom from './sender-permitted-from.ts'

let unbound: Unbound
let dns: DnsResolver
before(async () => {
  const includes = Array.from(
    { length: 11 },
    (_, i) => `inc${i}.test. 300 IN TXT "v=spf1 include:inc${i + 1}.test -all"`,
  )
  unbound = await startUnbound({
    zones: { 'test.': 'static', 'refused.test.': 'refuse' },
    records: [
      'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60',
      'good.test. 300 IN TXT "v=spf1 ip4:127.0.0.0/8 -all"',
      'bad.test. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"',
      'soft.test. 300 IN TXT "v=spf1 ~all"',
      'neutral.test. 300 IN TXT "v=spf1 ?all"',
      'mx.good.test. 300 IN TXT "v=spf1 a -all"',
      'mx.good.test. 300 IN A 127.0.0.1',
      'loop.test. 300 IN TXT "v=spf1 include:loop.test -all"',
      ...includes,
      'void.test. 300 IN TXT "v=spf1 a:v1.test a:v2.test a:v3.test -all"',
      'syntax.test. 300 IN TXT "v=spf1 ip4:127.0.0.1/99 -all"',
    ],
  })
  dns = createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${unbound.port}`] }))
})
after(() => unbound.stop())

const authOk = definePlugin({ name: 'test/auth', options: {}, setup: () => ({ hooks: { authPlain: () => accept() } }) })

function withSpf(
  options: Parameters<typeof senderPermittedFrom>[0],
  fn: (srv: TestServer) => Promise<void>,
  resolver = dns,
) {
  return withTestServer(
    {
      plugins: [senderPermittedFrom(options), authOk(), acceptAllRecipients()],
      dns: resolver,
      policies: { authRequiresTls: false },
    },
    fn,
  )
}

async function mailFrom(srv: TestServer, sender: string, helo = 'client.test') {
  const c = await openSession(srv, helo)
  const r = await c.send(`MAIL FROM:<${sender}>`, /^\d{3}/)
  return { c, r }
}

async function deliver(srv: TestServer, sender: string, helo = 'client.test'): Promise<string> {
  const { c } = await mailFrom(srv, sender, helo)
  await c.send('RCPT TO:<u@local.test>', 250)
  await c.send('DATA', 354)
  await c.send('Subject: s\r\n\r\nbody\r\n.', 250)
  await c.quit()
  return srv.queued.at(-1)?.text ?? ''
}

describe('sender_permitted_from', () => {
  it('pass: Received-SPF and spf=pass for MAIL FROM and the HELO name in Authentication-Results', () =>
    withSpf({ reject: '3' }, async (srv) => {
      const text = await deliver(srv, 'a@good.test', 'mx.good.test')
      assert.match(
        text,
        /\r\nAuthentication-Results: mx\.test;\r\n\tspf=pass \(mx\.test: domain of a@good\.test designates 127\.0\.0\.1 as permitted sender\) smtp\.mailfrom=good\.test;\r\n\tspf=pass \(mx\.test: domain of postmaster@mx\.good\.test designates 127\.0\.0\.1 as permitted sender\) smtp\.helo=mx\.good\.test\r\nReceived-SPF: pass \(mx\.test: domain of a@good\.test designates 127\.0\.0\.1 as permitted sender\) client-ip=127\.0\.0\.1; envelope-from="a@good\.test";\r\n helo=mx\.good\.test;\r\nSubject: s\r\n/,
      )
    }))

  const levels = [
    {
      sender: 'a@bad.test',
      level: 2,
      want: /^450 4\.7\.23 SPF - fail: mx\.test: domain of a@bad\.test does not designate 127\.0\.0\.1 as permitted sender\r\n$/,
    },
    { sender: 'a@bad.test', level: 3, want: /^550 5\.7\.23 SPF - forgery: / },
    { sender: 'a@soft.test', level: 3, want: /^450 4\.7\.23 SPF - fail: / },
    { sender: 'a@soft.test', level: 4, want: /^550 5\.7\.23 SPF - fail: / },
    { sender: 'a@neutral.test', level: 4, want: /^250 / },
    { sender: 'a@neutral.test', level: 5, want: /^550 5\.7\.23 SPF - neutral: / },
    { sender: 'a@none.test', level: 5, want: /^250 / },
    { sender: 'a@none.test', level: 6, want: /^550 5\.7\.23 SPF - none: / },
    { sender: 'a@bad.test', level: 1, want: /^250 / },
  ]
  for (const l of levels)
    it(`reject ${l.level}, ${l.sender}: ${l.want.source.slice(1, 14)}`, () =>
      withSpf({ reject: String(l.level) }, async (srv) => {
        const { r } = await mailFrom(srv, l.sender)
        assert.match(r?.raw ?? '', l.want)
      }))

  it('the null sender is checked through the HELO name (RFC 7208 §2.4)', () =>
    withSpf({ reject: '3' }, async (srv) => {
      const { r } = await mailFrom(srv, '', 'bad.test')
      assert.match(r?.raw ?? '', /^550 5\.7\.23 SPF - forgery: mx\.test: domain of postmaster@bad\.test /)
    }))

  it('an authenticated client is not checked', () =>
    withSpf({ reject: '6' }, async (srv) => {
      const c = await openSession(srv)
      await c.send(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`, 235)
      await c.send('MAIL FROM:<a@bad.test>', 250)
    }))

  it('a DNS server that refuses: temperror, 451 at reject 2 and above, never 5xx; annotated at 1', async () => {
    for (const level of [2, 6])
      await withSpf({ reject: String(level) }, async (srv) => {
        const { r } = await mailFrom(srv, 'a@refused.test')
        assert.match(r?.raw ?? '', /^451 4\.7\.24 SPF - temperror: /)
      })
    await withSpf({ reject: '1' }, async (srv) => {
      assert.match(await deliver(srv, 'a@refused.test'), /\tspf=temperror \(.*\) smtp\.mailfrom=refused\.test/)
    })
  })

  it('a DNS server that never answers: temperror after the timeout, 451', () =>
    withSpf(
      { reject: '3', timeout: 1, check_helo: false },
      async (srv) => {
        const { r } = await mailFrom(srv, 'a@slow.test')
        assert.match(r?.raw ?? '', /^451 4\.7\.24 SPF - temperror: /)
      },
      scriptedDns({ 'slow.test': { TXT: ['v=spf1 -all'], delayMs: 60_000 } }),
    ))

  const hostile = [
    { sender: 'a@loop.test', why: 'an include loop' },
    { sender: 'a@inc0.test', why: '11 nested includes (more than 10 lookups)' },
    { sender: 'a@void.test', why: 'three lookups that find nothing (more than 2 void lookups)' },
    { sender: 'a@syntax.test', why: 'a malformed ip4 prefix' },
  ]
  for (const h of hostile)
    it(`permerror for ${h.why}: refused at reject 6, deferred at 4, reported at 3`, async () => {
      await withSpf({ reject: '6' }, async (srv) => {
        assert.match((await mailFrom(srv, h.sender)).r?.raw ?? '', /^550 5\.7\.24 SPF - permerror: /)
      })
      await withSpf({ reject: '4' }, async (srv) => {
        assert.match((await mailFrom(srv, h.sender)).r?.raw ?? '', /^450 4\.7\.24 SPF - permerror: /)
      })
      await withSpf({ reject: '3' }, async (srv) => {
        assert.match(await deliver(srv, h.sender), /\tspf=permerror /)
      })
    })
})
