import assert from 'node:assert/strict'
import { isIPv6 } from 'node:net'
import { describe, it } from 'node:test'
import { parseCidrList } from '../config/cidr-list.ts'
import { ConfigError } from '../config/config-error.ts'
import { parseCidr } from './cidr.ts'
import { parseIPv6 } from './ip.ts'

const list = (...texts: string[]) =>
  parseCidrList(texts.map((text, i) => ({ text, file: 'config/relayclients', line: i + 1 })))

describe('parseCidr', () => {
  const ok = [
    { text: '1.2.3.4', want: { family: 4, first: 0x01020304, last: 0x01020304, prefix: 32 } },
    { text: '1.2.3.0/24', want: { family: 4, first: 0x01020300, last: 0x010203ff, prefix: 24 } },
    { text: '1.2.3.4/24 (host bits dropped)', want: { family: 4, first: 0x01020300, last: 0x010203ff, prefix: 24 } },
    { text: '0.0.0.0/0', want: { family: 4, first: 0, last: 0xffffffff, prefix: 0 } },
    { text: '1.2.3.', want: { family: 4, first: 0x01020300, last: 0x010203ff, prefix: 24 } },
    { text: '192.168.', want: { family: 4, first: 0xc0a80000, last: 0xc0a8ffff, prefix: 16 } },
    { text: '10.', want: { family: 4, first: 0x0a000000, last: 0x0affffff, prefix: 8 } },
    { text: '::ffff:1.2.3.4', want: { family: 4, first: 0x01020304, last: 0x01020304, prefix: 32 } },
    { text: '::ffff:1.2.3.0/120', want: { family: 4, first: 0x01020300, last: 0x010203ff, prefix: 24 } },
    { text: '::ffff:0:0/96', want: { family: 4, first: 0, last: 0xffffffff, prefix: 0 } },
    {
      text: '2001:db8::/32',
      want: { family: 6, first: 0x20010db8n << 96n, last: (0x20010db9n << 96n) - 1n, prefix: 32 },
    },
    { text: '2001:db8:', want: { family: 6, first: 0x20010db8n << 96n, last: (0x20010db9n << 96n) - 1n, prefix: 32 } },
    // qpsmtpd's config.sample/relayclients: expanded groups, ending on a nibble.
    { text: '2001:0DB8', want: { family: 6, first: 0x20010db8n << 96n, last: (0x20010db9n << 96n) - 1n, prefix: 32 } },
    {
      text: '2001:0db8:a',
      want: { family: 6, first: 0x20010db8an << 92n, last: (0x20010db8bn << 92n) - 1n, prefix: 36 },
    },
    { text: '::1', want: { family: 6, first: 1n, last: 1n, prefix: 128 } },
    { text: '::/0', want: { family: 6, first: 0n, last: (1n << 128n) - 1n, prefix: 0 } },
    {
      text: '1:2:3:4:5:6:7:8',
      want: {
        family: 6,
        first: 0x00010002000300040005000600070008n,
        last: 0x00010002000300040005000600070008n,
        prefix: 128,
      },
    },
  ] as const
  for (const c of ok) {
    it(c.text, () => assert.deepEqual(parseCidr(c.text.split(' ')[0] ?? ''), c.want))
  }

  const bad = [
    '',
    ' ',
    '1.2.3',
    '1.2.3.4.',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4',
    '1.2.3.04/24',
    '1.2.3.4/33',
    '1.2.3.4/',
    '1.2.3.4/-1',
    '1.2.3.4/a',
    '1.2.3.4 /24',
    '1.2.3.256.',
    '1..',
    '.1.2.3',
    '2001:db8::/129',
    '2001:db8:::1',
    '1::2::3',
    ':::',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:',
    '2001:db8::1:',
    '1.2.3.4::',
    '::1.2.3',
    'example.com',
    'fe80::1%eth0',
    '2001:db8::/32/1',
  ]
  for (const text of bad) it(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseCidr(text), undefined))

  it('parseIPv6 agrees with net.isIPv6 on generated forms', () => {
    const samples = [
      '::',
      '::1',
      '1::',
      '1:2::7:8',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:1.2.3.4',
      '1:2:3:4:5:6:7::',
      '::2:3:4:5:6:7:8',
    ]
    for (let i = 0; i < 2000; i++) {
      const n = 1 + Math.floor(Math.random() * 9)
      const parts = Array.from({ length: n }, () =>
        Math.random() < 0.2 ? '' : Math.floor(Math.random() * 0x1ffff).toString(16),
      )
      samples.push(parts.join(':'), `${parts.join(':')}.1.2.3`)
    }
    for (const s of samples) assert.equal(parseIPv6(s) !== undefined, isIPv6(s), s)
  })
})

describe('CidrList', () => {
  const rl = list('192.168.', '10.0.0.0/8', '1.2.3.4', '2001:db8:', 'fe80::/10', '::ffff:172.16.0.0/108', '10.1.0.0/16')
  const cases = [
    { ip: '192.168.0.1', want: true },
    { ip: '192.169.0.1', want: false },
    { ip: '10.255.255.255', want: true },
    { ip: '11.0.0.0', want: false },
    { ip: '1.2.3.4', want: true },
    { ip: '1.2.3.5', want: false },
    { ip: '172.16.1.1', want: true },
    { ip: '172.32.0.0', want: false },
    { ip: '::ffff:192.168.4.4', want: true, note: 'mapped client vs v4 rule' },
    { ip: '::FFFF:c0a8:0404', want: true, note: 'mapped client in hex form' },
    { ip: '::ffff:1.2.3.5', want: false },
    { ip: '2001:db8::1', want: true },
    { ip: '2001:0db8:0000:0000:0000:0000:0000:0001', want: true },
    { ip: '2001:db9::1', want: false },
    { ip: 'fe80::1%eth0', want: true, note: 'zone id ignored' },
    { ip: 'not an ip', want: false },
    { ip: '', want: false },
    { ip: '192.168.0.1 ', want: false },
  ]
  for (const c of cases) it(`${c.ip} → ${c.want}`, () => assert.equal(rl.contains(c.ip), c.want))

  it('an IPv6 catch-all does not cover IPv4 clients', () => {
    const all6 = list('::/0')
    assert.equal(all6.contains('2001:db8::1'), true)
    assert.equal(all6.contains('1.2.3.4'), false)
    assert.equal(all6.contains('::ffff:1.2.3.4'), false)
    assert.equal(list().contains('1.2.3.4'), false)
  })

  it('merges overlapping and adjacent ranges', () => {
    const l = list('1.0.0.0/24', '1.0.1.0/24', '1.0.0.128/25', '0.0.0.0/32', '255.255.255.255')
    for (const ip of ['1.0.0.0', '1.0.1.255', '0.0.0.0', '255.255.255.255']) assert.equal(l.contains(ip), true, ip)
    for (const ip of ['1.0.2.0', '0.0.0.1', '255.255.255.254']) assert.equal(l.contains(ip), false, ip)
  })

  it('matches a brute-force scan on random v4 lists', () => {
    for (let round = 0; round < 50; round++) {
      const texts = Array.from(
        { length: 20 },
        () =>
          `${((Math.random() * 2 ** 32) >>> 0) >>> 24}.${Math.floor(Math.random() * 4)}.0.0/${8 + Math.floor(Math.random() * 17)}`,
      )
      const l = list(...texts)
      for (let i = 0; i < 200; i++) {
        const ip = `${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 4)}.${Math.floor(Math.random() * 256)}.1`
        const want = l.entries.some(
          (c) => c.family === 4 && list(ip).entries[0]!.first >= c.first && list(ip).entries[0]!.first <= c.last,
        )
        assert.equal(l.contains(ip), want, `${ip} in ${texts.join(',')}`)
      }
    }
  })

  it('reports bad entries at file:line', () => {
    assert.throws(
      () => list('1.2.3.4', '# not dropped here', '1.2.3.4'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.equal(err.code, 'SMTPD_ERR_CONFIG_SYNTAX')
        assert.equal(err.message, 'config/relayclients:2: not an IP address, CIDR or prefix: "# not dropped here"')
        return true
      },
    )
  })
})
