import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { HeaderBlock } from '../message/headers.ts'
import type { AuthResult } from './auth-results.ts'
import { authservIdOf, formatAuthResults, formatResinfo, removeForgedAuthResults } from './auth-results-header.ts'

const spfPass: AuthResult = {
  method: 'spf',
  result: 'pass',
  properties: [{ type: 'smtp', name: 'mailfrom', value: 'alice@example.org' }],
}

describe('Authentication-Results formatting (RFC 8601 §2.2)', () => {
  const cases: { name: string; result: AuthResult; want: string }[] = [
    {
      name: 'a mailbox property is written unquoted',
      result: spfPass,
      want: 'spf=pass smtp.mailfrom=alice@example.org',
    },
    {
      name: 'comment, reason and several properties',
      result: {
        method: 'dkim',
        result: 'fail',
        comment: 'body hash did not verify',
        reason: 'bad "signature"',
        properties: [
          { type: 'header', name: 'd', value: 'example.org' },
          { type: 'header', name: 's', value: 'sel-1' },
          { type: 'header', name: 'b', value: 'abcd+/01' },
        ],
      },
      want:
        'dkim=fail (body hash did not verify) reason="bad \\"signature\\"" header.d=example.org header.s=sel-1 ' +
        'header.b="abcd+/01"',
    },
    {
      name: 'control characters are dropped, parentheses in comments escaped',
      result: { method: 'dmarc', result: 'none', comment: 'p=NONE (test)\r\nX-Injected: 1', properties: [] },
      want: 'dmarc=none (p=NONE \\(test\\) X-Injected: 1)',
    },
    {
      name: 'a value with spaces is quoted',
      result: { method: 'auth', result: 'pass', properties: [{ type: 'smtp', name: 'auth', value: 'Jo Doe' }] },
      want: 'auth=pass smtp.auth="Jo Doe"',
    },
  ]
  for (const c of cases) it(c.name, () => assert.equal(formatResinfo(c.result), c.want))

  it('methods in a fixed order, dkim results in the order added, none without results', () => {
    const results: AuthResult[] = [
      { method: 'dmarc', result: 'pass', properties: [{ type: 'header', name: 'from', value: 'example.org' }] },
      { method: 'dkim', result: 'pass', properties: [{ type: 'header', name: 'd', value: 'a.example' }] },
      spfPass,
      { method: 'dkim', result: 'fail', properties: [{ type: 'header', name: 'd', value: 'b.example' }] },
      { method: 'iprev', result: 'pass', properties: [{ type: 'policy', name: 'iprev', value: '192.0.2.1' }] },
    ]
    assert.equal(
      formatAuthResults('mx.example.net', results),
      'mx.example.net; iprev=pass policy.iprev=192.0.2.1; spf=pass smtp.mailfrom=alice@example.org; ' +
        'dkim=pass header.d=a.example; dkim=fail header.d=b.example; dmarc=pass header.from=example.org',
    )
    assert.equal(formatAuthResults('mx.example.net', []), 'mx.example.net; none')
  })

  it('reads the authserv-id after comments, quoted or not', () => {
    assert.equal(authservIdOf('mx.example.net; spf=pass'), 'mx.example.net')
    assert.equal(authservIdOf(' (forged (nested)) MX.Example.Net 1; none'), 'MX.Example.Net')
    assert.equal(authservIdOf('"mx.example.net"; none'), 'mx.example.net')
    assert.equal(authservIdOf('(unterminated mx.example.net; none'), undefined)
    assert.equal(authservIdOf(''), undefined)
  })

  it('removes only the fields that claim our authserv-id, keeping every other byte', () => {
    const { headers } = HeaderBlock.parse(
      Buffer.from(
        'Authentication-Results: mx.example.net; spf=pass\r\n' +
          'Authentication-Results: mx.google.com;\r\n dkim=pass header.d=a.example\r\n' +
          'authentication-results: (x) MX.EXAMPLE.NET.; dmarc=pass\r\n' +
          'Subject: s\r\n\r\n',
      ),
    )
    assert.equal(removeForgedAuthResults(headers, ['mx.example.net']), 2)
    assert.equal(
      headers.toBuffer().toString(),
      'Authentication-Results: mx.google.com;\r\n dkim=pass header.d=a.example\r\nSubject: s\r\n',
    )
  })
})
