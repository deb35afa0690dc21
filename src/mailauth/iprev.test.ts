import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scriptedDns } from '../dns/scripted.ts'
import { checkIprev, iprevAuthResult } from './iprev.ts'

const dns = scriptedDns({
  '1.2.0.192.in-addr.arpa': { PTR: ['elsewhere.example.', 'Mail.Example.org.'] },
  'mail.example.org': { A: ['192.0.2.1'], AAAA: ['2001:db8::25'] },
  'elsewhere.example': { A: ['198.51.100.7'] },
  '2.2.0.192.in-addr.arpa': { PTR: ['liar.example'] },
  'liar.example': { A: ['198.51.100.8'] },
  '3.2.0.192.in-addr.arpa': { PTR: ['slow.example'] },
  'slow.example': 'timeout',
  '4.2.0.192.in-addr.arpa': 'servfail',
  [`${'5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2'}.ip6.arpa`]: { PTR: ['mail.example.org'] },
})

describe('checkIprev (RFC 8601 §3)', () => {
  const cases = [
    { ip: '192.0.2.1', result: 'pass', names: ['mail.example.org'] },
    { ip: '::ffff:192.0.2.1', result: 'pass', names: ['mail.example.org'] },
    { ip: '2001:db8::25', result: 'pass', names: ['mail.example.org'] },
    { ip: '192.0.2.2', result: 'fail', names: ['liar.example'] },
    { ip: '192.0.2.3', result: 'temperror', names: ['slow.example'] },
    { ip: '192.0.2.4', result: 'temperror', names: [] },
    { ip: '192.0.2.9', result: 'permerror', names: [] },
  ] as const
  for (const c of cases)
    it(`${c.ip}: ${c.result}`, async () => {
      const r = await checkIprev(dns, c.ip)
      assert.deepEqual({ result: r.result, names: r.names }, { result: c.result, names: [...c.names] })
    })

  it('reports the address and the confirmed name', async () => {
    assert.deepEqual(iprevAuthResult(await checkIprev(dns, '192.0.2.1')), {
      method: 'iprev',
      result: 'pass',
      comment: 'mail.example.org',
      properties: [{ type: 'policy', name: 'iprev', value: '192.0.2.1' }],
    })
  })
})
