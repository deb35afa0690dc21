import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decide, formatRecord, ipInteger, parseRecord, tripletKey } from './triplet.ts'

const periods = { black: 3000, grey: 12_000, white: 3_110_400 }
const t0 = 1_700_000_000

describe('greylisting triplets', () => {
  it('keys as qpsmtpd writes them: the address as an integer, then sender and recipient', () => {
    const a = (local: string, domain: string) => ({ local, domain, utf8: false })
    const all = { remote_ip: true, sender: true, recipient: true }
    assert.equal(tripletKey(all, '192.0.2.1', a('x', 's.test'), a('u', 'r.test')), '3221225985:x@s.test:u@r.test')
    assert.equal(tripletKey(all, '::ffff:192.0.2.1', null, a('u', 'r.test')), '3221225985::u@r.test')
    assert.equal(ipInteger('2001:db8::1'), '42540766411282592856903984951653826561')
    assert.equal(
      tripletKey({ remote_ip: false, sender: true, recipient: false }, 'junk', a('a b', 'x'), undefined),
      '"a b"@x',
    )
    assert.equal(tripletKey(all, 'junk', null, undefined), undefined)
  })

  it('reads qpsmtpd records and nothing else', () => {
    assert.deepEqual(parseRecord('1700000000:1:2:3'), { ts: t0, isNew: 1, black: 2, white: 3 })
    assert.equal(formatRecord({ ts: t0, isNew: 1, black: 2, white: 3 }), '1700000000:1:2:3')
    for (const bad of ['', '1:2:3', '1700000000:1:2:x', '-1:1:0:0', '1700000000:1:2:3:4', 'nope'])
      assert.equal(parseRecord(bad), undefined, bad)
  })

  const cases = [
    { name: 'unknown', record: undefined, at: t0, outcome: 'new', next: `${t0}:1:0:0`, ttl: 12_000 },
    { name: 'too soon', record: `${t0}:1:0:0`, at: t0 + 60, outcome: 'black', next: `${t0}:1:1:0`, ttl: 11_940 },
    { name: 'in grey', record: `${t0}:1:4:0`, at: t0 + 3000, outcome: 'promoted', next: `${t0 + 3000}:1:4:1` },
    { name: 'grey over', record: `${t0}:1:4:0`, at: t0 + 12_000, outcome: 'new', next: `${t0 + 12_000}:1:0:0` },
    { name: 'white, fresh', record: `${t0}:1:4:2`, at: t0 + 600, outcome: 'white', next: undefined },
    { name: 'white, refreshed', record: `${t0}:1:4:2`, at: t0 + 7200, outcome: 'white', next: `${t0 + 7200}:1:4:3` },
    { name: 'white over', record: `${t0}:1:0:9`, at: t0 + 3_110_400, outcome: 'new', next: `${t0 + 3_110_400}:1:0:0` },
    { name: 'clock ahead', record: `${t0 + 5}:1:0:2`, at: t0, outcome: 'white', next: undefined },
  ] as const
  for (const c of cases) {
    it(`decides: ${c.name}`, () => {
      const d = decide(parseRecord(c.record), c.at, periods, 3600)
      assert.equal(d.outcome, c.outcome)
      assert.equal(d.next === undefined ? undefined : formatRecord(d.next), c.next)
      if ('ttl' in c) assert.equal(d.ttl, c.ttl)
    })
  }
})
