import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { type DnsResolver, scriptedDns } from '../../dns/index.ts'
import { startTestServer, withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import { acceptRcpt, sendMailSession } from '../test-support.ts'
import uribl from './uribl.ts'

let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      'spammer.example.multi.test. 300 IN A 127.0.0.8',
      'phish.com.multi.test. 300 IN A 127.0.0.16',
      'refused.example.multi.test. 300 IN A 127.0.0.1',
      '1.2.0.192.multi.test. 300 IN A 127.0.0.64',
      'spammer.example.dbl.test. 300 IN A 127.0.1.2',
    ],
    { zones: ['multi.test', 'dbl.test'] },
  )
})
after(() => loopback.stop())

const b64 = (s: string) => Buffer.from(s).toString('base64').replace(/.{76}/g, '$&\r\n')

/** A multipart message: a base64 text part and a quoted-printable HTML part. */
const message = (text: string, html: string, extraHeaders = '') =>
  [
    `${extraHeaders}Subject: offer`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    b64(text),
    '--b1',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    html.replace(/=/g, '=3D'),
    '--b1--',
    '',
  ].join('\r\n')

async function deliver(zones: readonly string[], body: string, options: Parameters<typeof uribl>[0] = {}, extra = {}) {
  return withTestServer(
    { plugins: [uribl(options), acceptRcpt()], config: { uribl_zones: zones, ...extra }, dns: loopback.dns },
    async (srv) => {
      const r = await sendMailSession(srv, 's@sender.example', ['u@mx.test'], body)
      return { reply: r.raw, stored: srv.queued[0]?.data.toString() ?? '' }
    },
  )
}

describe('uribl against a DNS server on loopback', () => {
  it('deny: a listed domain in a quoted-printable HTML link refuses the message (mask 8)', async () => {
    const body = message('nothing here', '<a href="https://www.spammer.example/buy">buy</a>')
    assert.equal(
      (await deliver(['multi.test 8,16 deny'], body)).reply,
      '554 5.7.1 spammer.example in multi.test: 127.0.0.8\r\n',
    )
    // A mask without the listing's bit: not a match.
    assert.match((await deliver(['multi.test 2,4 deny'], body)).reply, /^250 /)
  })

  it('add-header: matches are marked in X-URIBL-Match; forged ones are removed; a base64 text part is read', async () => {
    const body = message('go to http://0xc0.0.2.1/ or phish.com today', '<p>hi</p>', 'X-URIBL-Match: forged\r\n')
    const { reply, stored } = await deliver(['multi.test'], body)
    assert.match(reply, /^250 /)
    assert.doesNotMatch(stored, /forged/)
    assert.match(stored, /\r\nX-URIBL-Match: phish\.com in multi\.test: 127\.0\.0\.16\r\n/)
    assert.match(stored, /\r\nX-URIBL-Match: 1\.2\.0\.192 in multi\.test: 127\.0\.0\.64\r\n/)
  })

  it('127.0.0.1 (the list refusing the query) is no listing; a whitelisted domain is not asked; denysoft is 451', async () => {
    assert.match((await deliver(['multi.test -1 deny'], message('http://refused.example/', ''))).reply, /^250 /)
    const spam = message('http://spammer.example/', '')
    assert.match(
      (await deliver(['multi.test -1 deny'], spam, {}, { uribl_whitelist_domains: ['spammer.example'] })).reply,
      /^250 /,
    )
    assert.equal(
      (await deliver(['dbl.test'], spam, { action: 'denysoft' })).reply,
      '451 4.7.1 spammer.example in dbl.test: 127.0.1.2\r\n',
    )
  })

  it('a malformed uribl_zones stops the start at its file:line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'uribl-'))
    try {
      await writeFile(join(dir, 'plugins'), 'uribl\n')
      await writeFile(join(dir, 'uribl_zones'), 'multi.test 2,x deny\nblack.test 2 reject\n')
      await assert.rejects(startTestServer({ configDir: dir, dns: loopback.dns }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e))
        assert.match(e.message, /uribl_zones:1: mask "x" of multi\.test is not a number/)
        assert.match(
          e.message,
          /uribl_zones:2: action "reject" of black\.test is not one of add-header, deny, denysoft, log/,
        )
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('uribl logic (scripted DNS)', () => {
  it('reads at most max_size octets of a message, and the header fields only with scan-headers', async () => {
    const dns = scriptedDns({})
    const filler = 'x'.repeat(76)
    const body = [
      'Subject: see http://subject-site.example/',
      '',
      'early http://early.example/',
      ...Array.from({ length: 40 }, () => filler),
      'late http://late.example/',
      '',
    ].join('\r\n')
    const asked = async (options: Parameters<typeof uribl>[0]) => {
      const before = dns.calls.length
      await withTestServer(
        { plugins: [uribl(options), acceptRcpt()], config: { uribl_zones: ['z.test'] }, dns },
        async (srv) => assert.match((await sendMailSession(srv, 's@sender.example', ['u@mx.test'], body)).raw, /^250 /),
      )
      return dns.calls.slice(before).map((q) => q.name)
    }
    assert.deepEqual(await asked({}), ['early.example.z.test', 'late.example.z.test'])
    assert.deepEqual(await asked({ max_size: 2048 }), ['early.example.z.test'])
    assert.deepEqual(await asked({ 'scan-headers': true }), [
      'early.example.z.test',
      'late.example.z.test',
      'subject-site.example.z.test',
    ])
  })

  it('every name of every zone is asked at once; a failing list passes, or defers with on_error defer', async () => {
    const dns = scriptedDns({ 'a.example.z1.test': 'servfail' }, { delayMs: 50 })
    let inflight = 0
    let peak = 0
    const counting: DnsResolver = {
      query: async (name, type, opts) => {
        peak = Math.max(peak, ++inflight)
        try {
          return await dns.query(name, type, opts)
        } finally {
          inflight--
        }
      },
    }
    const body = 'Subject: x\r\n\r\nhttp://a.example/ http://b.example/ http://c.example/\r\n'
    for (const [on_error, want] of [
      ['pass', /^250 /],
      ['defer', /^451 4\.4\.3 URI blocklists cannot be checked now/],
    ] as const) {
      await withTestServer(
        {
          plugins: [uribl({ on_error }), acceptRcpt()],
          config: { uribl_zones: ['z1.test', 'z2.test'] },
          dns: counting,
        },
        async (srv) => {
          const r = await sendMailSession(srv, 's@sender.example', ['u@mx.test'], body)
          assert.match(r.raw, want)
        },
      )
    }
    assert.equal(peak, 6)
  })
})
