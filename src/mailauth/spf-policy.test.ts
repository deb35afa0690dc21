import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SpfCheck } from './spf.ts'
import { type SpfLevel, spfDecision } from './spf-policy.ts'

const check = (result: SpfCheck['result'], explanation?: string): SpfCheck => ({
  result,
  identity: 'mailfrom',
  domain: 'example.org',
  comment: 'mx.test: why',
  explanation,
  receivedSpf: `${result}`,
  lookups: undefined,
})

// qpsmtpd 0.94 sender_permitted_from mail_handler, level by level: P pass, D defer (450/451), R reject (550).
const table: Record<SpfCheck['result'], string> = {
  //          levels 0123456
  pass: '       PPPPPPP',
  fail: '       PPDRRRR',
  softfail: '   PPPDRRR',
  neutral: '    PPPPPRR',
  none: '       PPPPPPR',
  permerror: '  PPPPDDR',
  temperror: '  PPDDDDD',
}

describe('sender_permitted_from reject levels (qpsmtpd mail_handler)', () => {
  for (const [result, row] of Object.entries(table) as [SpfCheck['result'], string][]) {
    it(`${result}: ${row.trim()}`, () => {
      const got = ([0, 1, 2, 3, 4, 5, 6] as SpfLevel[])
        .map((level) => ({ pass: 'P', defer: 'D', reject: 'R' })[spfDecision(level, check(result)).kind])
        .join('')
      assert.equal(got, row.trim())
    })
  }

  it('replies: RFC 7372 codes, temperror always 4xx, the domain explanation for a fail, made printable', () => {
    assert.deepEqual(spfDecision(3, check('fail', 'see http://x.example/why\r\nInjected: 1')), {
      kind: 'reject',
      code: 550,
      enhanced: '5.7.23',
      text: 'SPF - forgery: see http://x.example/why Injected: 1',
    })
    assert.deepEqual(spfDecision(6, check('temperror')), {
      kind: 'defer',
      code: 451,
      enhanced: '4.7.24',
      text: 'SPF - temperror: mx.test: why',
    })
    assert.equal(spfDecision(6, check('permerror')).kind, 'reject')
  })
})
