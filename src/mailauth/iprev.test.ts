import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { iprevAuthResult } from './iprev.ts'

describe('iprevAuthResult (RFC 8601 §3)', () => {
  it('reports the address and the confirmed name', () => {
    assert.deepEqual(iprevAuthResult({ result: 'pass', ip: '192.0.2.1', names: ['mail.example.org'] }), {
      method: 'iprev',
      result: 'pass',
      comment: 'mail.example.org',
      properties: [{ type: 'policy', name: 'iprev', value: '192.0.2.1' }],
    })
  })

  it('no comment without names', () => {
    assert.equal(iprevAuthResult({ result: 'permerror', ip: '192.0.2.9', names: [] }).comment, undefined)
  })
})
