import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatIPv6, normalizeIp, parseIp, reversedLabels, reverseName, unmapIPv4 } from './ip.ts'

describe('net/ip', () => {
  const normal = [
    { name: 'IPv4 stays', text: '192.0.2.1', want: '192.0.2.1' },
    { name: 'IPv4-mapped becomes IPv4', text: '::ffff:192.0.2.1', want: '192.0.2.1' },
    { name: 'IPv4-mapped in hex becomes IPv4', text: '::FFFF:c000:0201', want: '192.0.2.1' },
    { name: 'IPv6 is lowercased and compressed', text: '2001:DB8:0:0:0:0:0:1', want: '2001:db8::1' },
    { name: 'the longest zero run is compressed', text: '2001:0:0:1:0:0:0:1', want: '2001:0:0:1::1' },
    { name: 'a single zero group is not compressed', text: '2001:db8:0:1:1:1:1:1', want: '2001:db8:0:1:1:1:1:1' },
    { name: 'the zone is dropped', text: 'fe80::1%eth0', want: 'fe80::1' },
    { name: 'loopback', text: '::1', want: '::1' },
    { name: 'unspecified', text: '::', want: '::' },
    { name: 'octal-looking octets are refused', text: '010.0.0.1', want: undefined },
    { name: 'three octets are refused', text: '10.0.1', want: undefined },
    { name: 'a host name is refused', text: 'mx.example', want: undefined },
    { name: 'two :: are refused', text: '1::2::3', want: undefined },
  ] as const
  for (const c of normal) it(`normalizeIp: ${c.name}`, () => assert.equal(normalizeIp(c.text), c.want))

  it('formatIPv6 follows RFC 5952 (§5: IPv4-mapped in mixed notation)', () => {
    assert.equal(formatIPv6(0n), '::')
    assert.equal(formatIPv6(1n), '::1')
    assert.equal(formatIPv6(0x20010db8000000000001000000000001n), '2001:db8::1:0:0:1')
    assert.equal(formatIPv6(0x20010db8000100010001000100010001n), '2001:db8:1:1:1:1:1:1')
    assert.equal(formatIPv6(0xffffc0000201n), '::ffff:192.0.2.1')
  })

  const peers = [
    { name: 'IPv4-mapped becomes IPv4', text: '::ffff:192.0.2.1', want: '192.0.2.1' },
    { name: 'the prefix in any case', text: '::FFFF:192.0.2.1', want: '192.0.2.1' },
    { name: 'IPv4 stays', text: '192.0.2.1', want: '192.0.2.1' },
    { name: 'IPv6 stays as written', text: '2001:DB8::1', want: '2001:DB8::1' },
    { name: 'a link-local zone stays', text: 'fe80::1%eth0', want: 'fe80::1%eth0' },
    { name: 'a mapped prefix without an IPv4 address stays', text: '::ffff:1.2.3', want: '::ffff:1.2.3' },
  ] as const
  for (const c of peers) it(`unmapIPv4: ${c.name}`, () => assert.equal(unmapIPv4(c.text), c.want))

  const reversed = [
    { name: 'IPv4', text: '192.0.2.1', want: '1.2.0.192.in-addr.arpa' },
    { name: 'IPv4-mapped is an IPv4 lookup', text: '::ffff:127.0.0.2', want: '2.0.0.127.in-addr.arpa' },
    {
      name: 'IPv6 nibbles (RFC 3596 §2.5 example)',
      text: '4321:0:1:2:3:4:567:89ab',
      want: 'b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa',
    },
    {
      name: 'IPv6 loopback',
      text: '::1',
      want: '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa',
    },
    { name: 'not an address', text: 'example.com', want: undefined },
  ] as const
  for (const c of reversed) it(`reverseName: ${c.name}`, () => assert.equal(reverseName(c.text), c.want))

  it('reversedLabels gives the DNS list prefix without a suffix (RFC 5782 §2.1)', () => {
    assert.equal(reversedLabels('127.0.0.2'), '2.0.0.127')
    assert.equal(reversedLabels(parseIp('2001:db8::1') ?? assert.fail())?.length, 63)
  })
})
