import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { uriNames } from './uri-hosts.ts'

describe('uriNames', () => {
  const cases = [
    {
      name: 'a URL: its registrable domain',
      text: 'see https://www.Shop.Example.co.uk/a?b=c now',
      domains: ['example.co.uk'],
      ips: [],
    },
    {
      name: 'a bare www name and an address',
      text: 'visit www.cheap.com or mail sales@pills.net.',
      domains: ['cheap.com', 'pills.net'],
      ips: [],
    },
    {
      name: 'private suffixes too (blogspot)',
      text: 'http://spammer.blogspot.com/',
      domains: ['blogspot.com', 'spammer.blogspot.com'],
      ips: [],
    },
    {
      name: 'URL IPs in any notation, reversed',
      text: 'http://0xc0.0.2.1/ http://3221225986/x http://192.0.2.3:8080/',
      domains: [],
      ips: ['1.2.0.192', '2.2.0.192', '3.2.0.192'],
    },
    {
      name: 'HTML entities undone',
      text: '<a href="&#104;ttp&#x3a;//evil.example/">x</a>',
      domains: ['evil.example'],
      ips: [],
    },
    {
      name: 'not hosts: plain IPs, unknown suffixes, bare words',
      text: 'version 1.2.3.4 of foo.internal, e.g. done',
      domains: [],
      ips: [],
    },
    { name: 'IDN URL hosts as A-labels', text: 'http://bücher.example/', domains: ['xn--bcher-kva.example'], ips: [] },
  ]
  for (const c of cases)
    it(c.name, () => {
      const got = uriNames([c.text], 50)
      assert.deepEqual([...got.domains].sort(), [...c.domains].sort())
      assert.deepEqual(got.reversedIps, c.ips)
    })

  it('stops at the limit', () => {
    const text = Array.from({ length: 100 }, (_, i) => `http://d${i}.example/`).join(' ')
    assert.equal(uriNames([text], 20).domains.length, 20)
  })

  it('is linear on hostile text (a long dotted run, a long scheme-like run)', () => {
    const big = `${'a.'.repeat(200_000)} ${'a'.repeat(400_000)}:// ${'x'.repeat(400_000)}`
    const got = uriNames([big], 50)
    assert.deepEqual(got.domains, [])
  })
})
