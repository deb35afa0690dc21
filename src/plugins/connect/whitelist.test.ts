import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { scriptedDns } from '../../dns/index.ts'
import { withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import badmailfrom from '../mail/badmailfrom.ts'
import { ask } from '../test-support.ts'
import dnsWhitelistSoft from './dns-whitelist-soft.ts'
import dnsbl from './dnsbl.ts'
import whitelist from './whitelist.ts'

let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      '1.0.0.127.bl.test. 300 IN A 127.0.0.2',
      '1.0.0.127.wl.test. 300 IN A 127.0.10.0',
      '1.0.0.127.overlimit.test. 300 IN A 127.0.0.255',
    ],
    { zones: ['bl.test', 'wl.test', 'overlimit.test', 'empty.test'] },
  )
})
after(() => loopback.stop())

const greeting = (whitelistZones: readonly string[]) =>
  withTestServer(
    {
      plugins: [dnsWhitelistSoft(), dnsbl()],
      config: { whitelist_zones: whitelistZones, dnsbl_zones: ['bl.test:listed'] },
      dns: loopback.dns,
    },
    async (srv) => (await (await srv.connect()).reply()).raw,
  )

describe('dns_whitelist_soft against a DNS server on loopback', () => {
  it('a client in a whitelist zone is immune to dnsbl after it', async () => {
    assert.match(await greeting(['wl.test']), /^220 /)
    assert.equal(await greeting(['empty.test']), '554 5.7.1 listed\r\n')
  })

  it("dnswl.org's 127.0.0.255 (over the query limit) and error codes whitelist nobody", async () => {
    assert.equal(await greeting(['overlimit.test']), '554 5.7.1 listed\r\n')
    const dns = scriptedDns({ '1.0.0.127.wl.test': { A: ['192.0.2.1'] }, '1.0.0.127.bl.test': { A: ['127.0.0.2'] } })
    await withTestServer(
      {
        plugins: [dnsWhitelistSoft(), dnsbl()],
        config: { whitelist_zones: ['wl.test'], dnsbl_zones: ['bl.test:listed'] },
        dns,
      },
      async (srv) => assert.equal((await (await srv.connect()).reply()).raw, '554 5.7.1 listed\r\n'),
    )
  })
})

describe('whitelist', () => {
  const config = {
    whitelisthosts: ['192.0.2.', '10.0.0.0/8'],
    whitelisthelo: ['Trusted.Example'],
    whitelistsenders: ['boss@corp.example', 'partner.example'],
    whitelistrcpt: ['abuse@mx.test'],
    badmailfrom: ['@partner.example', '@corp.example', '@spam.example'],
  }

  it('accepts listed senders before badmailfrom; sets the keys; other senders are checked', () =>
    withTestServer({ plugins: [whitelist(), badmailfrom()], config }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO trusted.example', 250)
      assert.equal(await ask(c, 'MAIL FROM:<anyone@Partner.example>'), '250 2.1.0 Sender OK\r\n')
      await c.send('RSET', 250)
      assert.equal(await ask(c, 'MAIL FROM:<BOSS@corp.example>'), '250 2.1.0 Sender OK\r\n')
      await c.send('RSET', 250)
      assert.match(await ask(c, 'MAIL FROM:<other@corp.example>'), /^550 /)
      assert.match(await ask(c, 'MAIL FROM:<x@spam.example>'), /^550 /)
      await c.send('MAIL FROM:<x@ok.example>', 250)
      // whitelistrcpt accepts the recipient (no rcpt_ok here: the core would refuse it otherwise).
      assert.equal(await ask(c, 'RCPT TO:<Abuse@mx.test>'), '250 2.1.5 Recipient OK\r\n')
      assert.match(await ask(c, 'RCPT TO:<other@mx.test>'), /^550 5\.7\.1 /)
      await c.quit()
    }))

  it('a whitelisted host skips dnsbl; a malformed whitelisthosts line stops the start', async () => {
    const dns = scriptedDns({ '1.0.0.127.bl.test': { A: ['127.0.0.2'] } })
    await withTestServer(
      { plugins: [whitelist(), dnsbl()], config: { whitelisthosts: ['127.0.0.1'], dnsbl_zones: ['bl.test'] }, dns },
      async (srv) => assert.match((await (await srv.connect()).reply()).raw, /^220 /),
    )
    await assert.rejects(
      withTestServer({ plugins: [whitelist()], config: { whitelisthosts: ['192.168.1'] } }, async () => undefined),
      /whitelisthosts>?:1: not an IP address, CIDR or prefix: "192\.168\.1"/,
    )
  })

  it('per_recipient: everything is decided at RCPT', () =>
    withTestServer({ plugins: [whitelist({ per_recipient: true }), badmailfrom()], config }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO other.example', 250)
      // At MAIL nothing is whitelisted yet: badmailfrom refuses.
      assert.match(await ask(c, 'MAIL FROM:<boss@corp.example>'), /^550 /)
      await c.send('MAIL FROM:<x@ok.example>', 250)
      assert.equal(await ask(c, 'RCPT TO:<abuse@mx.test>'), '250 2.1.5 Recipient OK\r\n')
      await c.quit()
    }))
})
