import assert from 'node:assert/strict'
import { endianness } from 'node:os'
import { describe, it } from 'node:test'
import { ScannerError } from '../exchange.ts'
import { p0fQuery, parseP0fResponse } from './p0f.ts'
import { p0fAnswerBytes } from './p0f-test-support.ts'

const LE = endianness() === 'LE'

describe('p0f 3 API: the query', () => {
  const magic = LE ? '01463050' : '50304601'
  const cases = [
    { name: 'IPv4', ip: '192.0.2.7', hex: `${magic}04c0000207${'00'.repeat(12)}` },
    { name: 'IPv4-mapped IPv6 is asked as IPv4', ip: '::ffff:192.0.2.7', hex: `${magic}04c0000207${'00'.repeat(12)}` },
    { name: 'IPv6', ip: '2001:db8::1', hex: `${magic}0620010db8${'00'.repeat(11)}01` },
  ]
  for (const c of cases)
    it(c.name, () => {
      assert.equal(p0fQuery(c.ip)?.toString('hex'), c.hex)
      assert.equal(p0fQuery(c.ip)?.length, 21)
    })
  it('text that is not an address gives no query', () => assert.equal(p0fQuery('unknown'), undefined))
})

describe('p0f 3 API: the answer', () => {
  it('a match: names, distance, uptime, match quality; unknown fields absent', () => {
    const r = parseP0fResponse(
      p0fAnswerBytes({
        distance: 11,
        uptimeMinutes: 1500,
        quality: 0x02,
        strings: ['Windows', '7 or 8', '', '', 'DSL', 'English'],
      }),
    )
    assert.deepEqual(r, {
      status: 'ok',
      answer: {
        firstSeen: 1_700_000_000,
        lastSeen: 1_700_000_100,
        totalConnections: 3,
        uptimeMinutes: 1500,
        distance: 11,
        badSoftware: 'none',
        fuzzy: false,
        generic: true,
        osName: 'Windows',
        osFlavor: '7 or 8',
        linkType: 'DSL',
        language: 'English',
      },
    })
  })
  it('no match', () => assert.deepEqual(parseP0fResponse(p0fAnswerBytes({ status: 0x20 })), { status: 'nomatch' }))

  const failures = [
    { name: 'a wrong magic', bytes: p0fAnswerBytes({ magic: 0x41414141 }), failure: 'malformed' },
    { name: 'a refused query', bytes: p0fAnswerBytes({ status: 0 }), failure: 'refused' },
    { name: 'an unknown status', bytes: p0fAnswerBytes({ status: 0x30 }), failure: 'malformed' },
    { name: 'a short answer', bytes: p0fAnswerBytes().subarray(0, 100), failure: 'malformed' },
    {
      name: 'a control character in a name',
      bytes: p0fAnswerBytes({ strings: ['Linux\r\nBcc: x'] }),
      failure: 'malformed',
    },
  ] as const
  for (const f of failures)
    it(`${f.name} is a ${f.failure} answer`, () =>
      assert.throws(
        () => parseP0fResponse(f.bytes),
        (e: unknown) => e instanceof ScannerError && e.failure === f.failure,
      ))
})
