import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '../../config/config-error.ts'
import { scriptedDns } from '../../dns/index.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import { ask } from '../test-support.ts'
import rhsbl from './rhsbl.ts'

let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      'spammer.example.dbl.test. 300 IN A 127.0.1.2',
      'spammer.example.dbl.test. 300 IN TXT "is a spam domain, see https://dbl.test/spammer.example"',
      'bouncer.example.dsn.test. 300 IN A 127.0.0.2',
      'phish.example.dbl.test. 300 IN A 127.0.1.4',
      'helo.spammer.example.dbl.test. 300 IN A 127.0.1.2',
      'mail.spammer.example.dbl.test. 300 IN A 127.0.1.2',
      'broken.example.dbl.test. 300 IN A 127.255.255.254',
    ],
    { zones: ['dbl.test', 'dsn.test'] },
  )
})
after(() => loopback.stop())

const ZONES = ['dbl.test=127.0.1.[2..3]', 'dsn.test does not accept bounces. This violates RFC 5321']

describe('rhsbl against a DNS server on loopback', () => {
  const cases = [
    {
      from: 'x@spammer.example',
      want: '550 5.7.1 Mail from spammer.example rejected because it is a spam domain, see https://dbl.test/spammer.example\r\n',
    },
    {
      from: 'x@Bouncer.Example',
      want: '550 5.7.1 Mail from bouncer.example rejected because it does not accept bounces. This violates RFC 5321\r\n',
    },
    // 127.0.1.4 is outside the filter; 127.255.255.254 is the list refusing to answer.
    { from: 'x@phish.example', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'x@broken.example', want: '250 2.1.0 Sender OK\r\n' },
    { from: 'x@clean.example', want: '250 2.1.0 Sender OK\r\n' },
    { from: '', want: '250 2.1.0 Sender OK\r\n' },
  ]
  it('refuses listed sender domains with the zone line message or the TXT record', () =>
    withTestServer({ plugins: [rhsbl()], config: { rhsbl_zones: ZONES }, dns: loopback.dns }, async (srv) => {
      const c = await openSession(srv)
      for (const t of cases) {
        assert.equal(await ask(c, `MAIL FROM:<${t.from}>`), t.want, t.from)
        await c.send('RSET', 250)
      }
      await c.quit()
    }))

  it('check helo,rdns: the HELO name and the verified host name too', async () => {
    const rdns = definePlugin({
      name: 'test/rdns',
      options: {},
      setup: () => ({
        hooks: {
          connect: (ctx) => {
            ctx.connection.remoteHost = 'mail.spammer.example'
            return pass()
          },
        },
      }),
    })
    await withTestServer(
      { plugins: [rhsbl({ check: 'sender,helo' })], config: { rhsbl_zones: ZONES }, dns: loopback.dns },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO helo.spammer.example', 250)
        assert.equal(
          await ask(c, 'MAIL FROM:<>'),
          '550 5.7.1 Mail from HELO helo.spammer.example rejected because it is listed in dbl.test\r\n',
        )
      },
    )
    await withTestServer(
      { plugins: [rdns(), rhsbl({ check: 'rdns' })], config: { rhsbl_zones: ZONES }, dns: loopback.dns },
      async (srv) => {
        const c = await openSession(srv)
        assert.equal(
          await ask(c, 'MAIL FROM:<a@clean.example>'),
          '550 5.7.1 Mail from host mail.spammer.example rejected because it is listed in dbl.test\r\n',
        )
      },
    )
  })

  it('a malformed rhsbl_zones stops the start at its file:line; check takes only its words', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rhsbl-'))
    try {
      await writeFile(join(dir, 'plugins'), 'rhsbl\n')
      await writeFile(join(dir, 'rhsbl_zones'), 'dbl.test\ndbl.test=127.0.1.2 again\n')
      await assert.rejects(startTestServer({ configDir: dir, dns: loopback.dns }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e))
        assert.match(e.message, /rhsbl_zones:2: zone dbl\.test is listed twice \(also at .*rhsbl_zones:1\)/)
        return true
      })
      await writeFile(join(dir, 'plugins'), 'async/rhsbl check sender,ptr\n')
      await assert.rejects(
        startTestServer({ configDir: dir, dns: loopback.dns }),
        /plugins:1: .*check: ptr is not one of sender, helo, rdns/,
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('rhsbl logic (scripted DNS)', () => {
  it('a list that fails lists nobody, or with on_error defer answers 451 (never 5xx)', async () => {
    const dns = scriptedDns({ 'x.example.dbl.test': 'servfail' })
    for (const [options, want] of [
      [{}, '250 2.1.0 Sender OK\r\n'],
      [{ on_error: 'defer' as const }, '451 4.4.3 DNS lists cannot be checked now, try again later\r\n'],
    ] as const)
      await withTestServer({ plugins: [rhsbl(options)], config: { rhsbl_zones: ['dbl.test'] }, dns }, async (srv) => {
        const c = await openSession(srv)
        assert.equal(await ask(c, 'MAIL FROM:<a@x.example>'), want)
      })
  })
})
