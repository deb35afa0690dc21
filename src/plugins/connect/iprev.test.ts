/**
 * iprev through real SMTP sessions from 127.0.0.1, its PTR and A records served by a private
 * unbound on loopback (or scripted where a DNS behaviour is needed): iprev=pass and the verified
 * name in the Received line, fail, permerror, and temperror when DNS is down; never a refusal.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startUnbound, type Unbound } from '../../../test/peers/unbound.ts'
import { objectConfigSource } from '../../config/config-source.ts'
import { createDnsService } from '../../dns/config.ts'
import { scriptedDns } from '../../dns/scripted.ts'
import type { DnsResolver } from '../../dns/types.ts'
import { acceptAllRecipients, openSession, type TestServer, withTestServer } from '../../testing/index.ts'
import fcrdns from './fcrdns.ts'
import iprev from './iprev.ts'

let unbound: Unbound
before(async () => {
  unbound = await startUnbound({
    zones: { 'test.': 'static', '127.in-addr.arpa.': 'static' },
    records: [
      'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60',
      '127.in-addr.arpa. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60',
      '1.0.0.127.in-addr.arpa. 300 IN PTR mail.client.test.',
      'mail.client.test. 300 IN A 127.0.0.1',
    ],
  })
})
after(() => unbound.stop())

const loopbackDns = (): DnsResolver =>
  createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${unbound.port}`] }))

async function deliver(dns: DnsResolver, withFcrdns = false): Promise<{ srv: TestServer; text: string }> {
  let text = ''
  let server: TestServer | undefined
  const plugins = [...(withFcrdns ? [fcrdns()] : []), iprev(), acceptAllRecipients()]
  await withTestServer({ plugins, dns }, async (srv) => {
    server = srv
    const c = await openSession(srv, 'client.test')
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: s\r\n\r\nbody\r\n.', 250)
    await c.quit()
    text = srv.queued[0]?.text ?? ''
  })
  return { srv: server as TestServer, text }
}

describe('iprev', () => {
  it('pass: reported with the verified name, which the Received line shows', async () => {
    const { text } = await deliver(loopbackDns())
    assert.match(text, /^Received: from client\.test \(mail\.client\.test \[127\.0\.0\.1\]\)/)
    assert.match(
      text,
      /\r\nAuthentication-Results: mx\.test;\r\n\tiprev=pass \(mail\.client\.test\) policy\.iprev=127\.0\.0\.1\r\n/,
    )
  })

  it('after fcrdns: its result is used, and reported once', async () => {
    const { text } = await deliver(loopbackDns(), true)
    assert.equal(text.match(/\tiprev=/g)?.length, 1)
    assert.match(text, /\tiprev=pass \(mail\.client\.test\) policy\.iprev=127\.0\.0\.1\r\n/)
  })

  const others = [
    {
      name: 'fail: the PTR name does not resolve back',
      dns: scriptedDns({ '1.0.0.127.in-addr.arpa': { PTR: ['liar.test'] }, 'liar.test': { A: ['192.0.2.1'] } }),
      want: /\tiprev=fail \(liar\.test\) policy\.iprev=127\.0\.0\.1\r\n/,
    },
    {
      name: 'permerror: no PTR record',
      dns: scriptedDns({}),
      want: /\tiprev=permerror policy\.iprev=127\.0\.0\.1\r\n/,
    },
    {
      name: 'temperror: the DNS server fails, and the message is still accepted',
      dns: scriptedDns({ '1.0.0.127.in-addr.arpa': 'servfail' }),
      want: /\tiprev=temperror policy\.iprev=127\.0\.0\.1\r\n/,
    },
  ]
  for (const o of others)
    it(o.name, async () => {
      assert.match((await deliver(o.dns)).text, o.want)
    })
})
