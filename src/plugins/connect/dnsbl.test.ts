import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import packet from 'dns-packet'
import { answer, startDnsResponder } from '../../../test/peers/dns-responder.ts'
import { ConfigError } from '../../config/config-error.ts'
import { objectConfigSource } from '../../config/config-source.ts'
import { createDnsService, type DnsResolver, scriptedDns } from '../../dns/index.ts'
import { reversedLabels } from '../../net/ip.ts'
import { openSession, SmtpTestClient, startTestServer, withTestServer } from '../../testing/index.ts'
import { type LoopbackDns, startLoopbackDns } from '../dns-test-support.ts'
import naughty from '../naughty.ts'
import { acceptRcpt, ask, sendMail } from '../test-support.ts'
import dnsbl from './dnsbl.ts'

// The test client connects from 127.0.0.1: its key is 1.0.0.127.
let loopback: LoopbackDns
before(async () => {
  loopback = await startLoopbackDns(
    [
      '1.0.0.127.bl.test. 300 IN A 127.0.0.2',
      '1.0.0.127.bl.test. 300 IN TXT "Listed by bl.test, see http://bl.test/127.0.0.1"',
      '1.0.0.127.quiet.test. 300 IN A 127.0.0.2',
      '1.0.0.127.zen.test. 300 IN A 127.0.0.4',
      '1.0.0.127.dbl.test. 300 IN A 127.0.1.2',
      '1.0.0.127.refusing.test. 300 IN A 127.255.255.254',
      '1.0.0.127.parked.test. 300 IN A 192.0.2.80',
    ],
    { zones: ['bl.test', 'quiet.test', 'zen.test', 'dbl.test', 'refusing.test', 'parked.test', 'clean.test'] },
  )
})
after(() => loopback.stop())

async function greeting(zones: readonly string[], options: Parameters<typeof dnsbl>[0] = {}): Promise<string> {
  const srv = await startTestServer({ plugins: [dnsbl(options)], config: { dnsbl_zones: zones }, dns: loopback.dns })
  try {
    const c = await srv.connect()
    return (await c.reply()).raw
  } finally {
    await srv.close()
  }
}

describe('dnsbl against a DNS server on loopback', () => {
  const cases = [
    {
      name: 'the TXT record is the reply',
      zones: ['bl.test'],
      want: '554 5.7.1 Listed by bl.test, see http://bl.test/127.0.0.1\r\n',
    },
    {
      name: 'the zone line message, %IP% replaced',
      zones: ['clean.test', 'quiet.test:Mail from %IP% refused, see https://quiet.test/?ip=%IP%'],
      want: '554 5.7.1 Mail from 127.0.0.1 refused, see https://quiet.test/?ip=127.0.0.1\r\n',
    },
    {
      name: 'an A record without TXT and no message',
      zones: ['quiet.test'],
      want: '554 5.7.1 Blocked by quiet.test\r\n',
    },
    {
      name: 'a code inside the filter',
      zones: ['zen.test=127.0.0.[2..11]'],
      want: '554 5.7.1 Blocked by zen.test\r\n',
    },
    {
      name: 'a code outside the filter (a DBL code from a ZEN-style zone)',
      zones: ['dbl.test=127.0.0.[2..11]'],
      want: /^220 /,
    },
    { name: "the list's error code 127.255.255.254 is no listing", zones: ['refusing.test'], want: /^220 / },
    { name: 'an answer outside 127/8 (parked zone) is no listing', zones: ['parked.test'], want: /^220 / },
    { name: 'not listed', zones: ['clean.test'], want: /^220 / },
  ]
  for (const t of cases)
    it(t.name, async () => {
      const got = await greeting(t.zones)
      if (typeof t.want === 'string') assert.equal(got, t.want)
      else assert.match(got, t.want)
    })

  it('on_error defer: a list that answers with its error code gets the client a 421, never a 5xx', async () => {
    assert.equal(
      await greeting(['refusing.test'], { on_error: 'defer' }),
      '421 4.4.3 DNS lists cannot be checked now, try again later\r\n',
    )
    // A listing in another zone still decides.
    assert.equal(
      await greeting(['refusing.test', 'quiet.test'], { on_error: 'defer' }),
      '554 5.7.1 Blocked by quiet.test\r\n',
    )
  })

  it('reject_type temp answers 421; reject 0 only logs', async () => {
    assert.equal(await greeting(['quiet.test'], { reject_type: 'temp' }), '421 4.7.1 Blocked by quiet.test\r\n')
    assert.match(await greeting(['quiet.test'], { reject: '0' }), /^220 /)
  })

  it('dnsbl_allow and relay clients are not checked', () =>
    withTestServer(
      { plugins: [dnsbl()], config: { dnsbl_zones: ['bl.test'], dnsbl_allow: ['127.0.0.'] }, dns: loopback.dns },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.quit()
      },
    ))

  it('reject naughty: refused at RCPT by naughty, except postmaster and abuse, who get the message', () =>
    withTestServer(
      {
        plugins: [dnsbl({ reject: 'naughty' }), naughty(), acceptRcpt()],
        config: { dnsbl_zones: ['bl.test'] },
        dns: loopback.dns,
      },
      async (srv) => {
        const c = await openSession(srv)
        const r = await sendMail(
          c,
          'admin@listed.example',
          ['Postmaster@mx.test', 'abuse@mx.test'],
          'Subject: delist\r\n\r\nplease\r\n',
        )
        assert.equal(r.code, 250)
        await c.send('MAIL FROM:<spam@listed.example>', 250)
        await c.send('RCPT TO:<postmaster@mx.test>', 250)
        assert.equal(
          await ask(c, 'RCPT TO:<victim@mx.test>'),
          '550 5.7.1 (connect/dnsbl) Listed by bl.test, see http://bl.test/127.0.0.1\r\n',
        )
        await c.closed()
        assert.equal(srv.queued.length, 1)
        assert.deepEqual(srv.queued[0]?.to, ['Postmaster@mx.test', 'abuse@mx.test'])
      },
    ))

  it('a malformed dnsbl_zones stops the start at its file:line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dnsbl-'))
    try {
      await writeFile(join(dir, 'plugins'), 'dnsbl\n')
      await writeFile(
        join(dir, 'dnsbl_zones'),
        '# lists\nzen.spamhaus.org=127.0.0.[2..11]\nbad zone:message\nx.test=127.0.0.[11..2]\n',
      )
      await assert.rejects(startTestServer({ configDir: dir, dns: loopback.dns }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e))
        assert.match(e.message, /dnsbl_zones:3: not a DNS zone name: "bad zone"/)
        assert.match(e.message, /dnsbl_zones:4: answer filter "127\.0\.0\.\[11\.\.2\]" of x\.test is not four octets/)
        return true
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('loads as async/dnsbl with the old positional reject_type (disconnect)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dnsbl-'))
    try {
      await writeFile(join(dir, 'plugins'), 'async/dnsbl disconnect\nrcpt_ok\n')
      await writeFile(join(dir, 'dnsbl_zones'), 'quiet.test:go away\n')
      await withTestServer({ configDir: dir, dns: loopback.dns }, async (srv) => {
        const c = await srv.connect()
        assert.equal((await c.reply()).raw, '554 5.7.1 go away\r\n')
        await c.closed()
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('dnsbl logic (scripted DNS)', () => {
  it('an IPv6 client is looked up by its nibbles under every zone', async () => {
    const key = reversedLabels('::1')
    const dns = scriptedDns({ [`${key}.v6.test`]: { A: ['127.0.0.2'] } })
    const srv = await startTestServer({
      plugins: [dnsbl()],
      config: { dnsbl_zones: ['v6.test:IPv6 %IP% listed'] },
      dns,
      listeners: [{ host: '::1', port: 0 }],
    })
    try {
      const c = await SmtpTestClient.connect(srv.port, '::1')
      assert.equal((await c.reply()).raw, '554 5.7.1 IPv6 ::1 listed\r\n')
      assert.deepEqual(
        dns.calls.map((q) => `${q.name} ${q.type}`),
        [`${key}.v6.test A`],
      )
    } finally {
      await srv.close()
    }
  })

  it('a zone that times out lists nobody; the others still decide', async () => {
    const dns = scriptedDns({ '1.0.0.127.slow.test': 'timeout', '1.0.0.127.bl.test': { A: ['127.0.0.3'] } })
    assert.match(
      await withTestServer({ plugins: [dnsbl()], config: { dnsbl_zones: ['slow.test'] }, dns }, async (srv) => {
        const c = await srv.connect()
        return (await c.reply()).raw
      }),
      /^220 /,
    )
    assert.equal(
      await withTestServer(
        { plugins: [dnsbl()], config: { dnsbl_zones: ['slow.test', 'bl.test:no'] }, dns },
        async (srv) => {
          const c = await srv.connect()
          return (await c.reply()).raw
        },
      ),
      '554 5.7.1 no\r\n',
    )
  })
})

describe('dnsbl and bad DNS answers: failures of the list, never listings', () => {
  const greet = async (dns: DnsResolver, zones: readonly string[], options = {}) =>
    withTestServer(
      { plugins: [dnsbl(options)], config: { dnsbl_zones: zones }, dns },
      async (srv) => (await (await srv.connect()).reply()).raw,
    )

  it('a malformed answer (record data shorter than its length), from a server on loopback', async () => {
    const responder = await startDnsResponder((q) => {
      const good = packet.encode(answer(q, { answers: [{ name: q.name, type: 'A', ttl: 60, data: '127.0.0.2' }] }))
      return [good.subarray(0, good.length - 2)]
    })
    try {
      const dns = createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${responder.port}`] }))
      assert.match(await greet(dns, ['bad.test']), /^220 /)
      assert.match(await greet(dns, ['bad.test'], { on_error: 'defer' }), /^421 4\.4\.3 /)
    } finally {
      await responder.close()
    }
  })

  it('an oversized answer and a CNAME loop, from unbound', async () => {
    const big = await startLoopbackDns(
      [
        ...Array.from({ length: 60 }, (_, i) => `1.0.0.127.big.test. 300 IN A 127.0.0.${i + 2}`),
        '1.0.0.127.loop.test. 300 IN CNAME 1.0.0.127.loop2.test.',
        '1.0.0.127.loop2.test. 300 IN CNAME 1.0.0.127.loop.test.',
      ],
      { zones: ['big.test', 'loop.test', 'loop2.test'], settings: ['dns_answer_size_limit 512'] },
    )
    try {
      assert.match(await greet(big.dns, ['big.test']), /^220 /)
      assert.match(await greet(big.dns, ['loop.test']), /^220 /)
      assert.match(await greet(big.dns, ['big.test', 'loop.test'], { on_error: 'defer' }), /^421 4\.4\.3 /)
    } finally {
      await big.stop()
    }
  })
})

describe('dnsbl parallelism', () => {
  it('10 zones that each answer after 1 s: the verdict comes after about 1 s, not 10', async () => {
    const arrived: number[] = []
    const sent: number[] = []
    const responder = await startDnsResponder(async (q) => {
      arrived.push(Date.now())
      await sleep(1000)
      sent.push(Date.now())
      return [answer(q, { answers: [{ name: q.name, type: 'A', ttl: 60, data: '127.0.0.2' }] })]
    })
    const dns = createDnsService(objectConfigSource({ dns_servers: [`127.0.0.1:${responder.port}`] }))
    const zones = Array.from({ length: 10 }, (_, i) => `z${i}.test:listed in z${i}`)
    const srv = await startTestServer({ plugins: [dnsbl()], config: { dnsbl_zones: zones }, dns })
    try {
      const start = Date.now()
      const c = await srv.connect()
      assert.equal((await c.reply(30_000)).raw, '554 5.7.1 listed in z0\r\n')
      const elapsed = Date.now() - start
      // Every query was on the wire before the first answer came back: they ran side by side.
      assert.equal(arrived.length, 10)
      assert.ok(Math.max(...arrived) < Math.min(...sent), 'all ten queries arrived before the first answer')
      // Generous: sequential lookups would take 10 s.
      assert.ok(elapsed < 5000, `verdict after ${elapsed} ms`)
    } finally {
      await srv.close()
      await responder.close()
    }
  })
})
