import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scriptedDns } from '../dns/scripted.ts'
import { mailauthResolver } from './dns-adapter.ts'

const dns = scriptedDns({
  'example.org': {
    A: ['192.0.2.1'],
    TXT: [['v=spf1 ', 'a -all'], 'other'],
    MX: [{ exchange: 'mx.example.org', priority: 10 }],
  },
  'slow.example': 'timeout',
  'broken.example': 'servfail',
  'late.example': { A: ['192.0.2.9'], delayMs: 60_000 },
})

const codeOf = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p
    return 'resolved'
  } catch (e) {
    return (e as { code: string }).code
  }
}

describe('mailauthResolver', () => {
  const resolve = mailauthResolver(dns)

  it('answers as node:dns does: addresses, TXT as lists of strings, MX objects', async () => {
    assert.deepEqual(await resolve('example.org', 'A'), ['192.0.2.1'])
    assert.deepEqual(await resolve('example.org', 'TXT'), [['v=spf1 ', 'a -all'], ['other']])
    assert.deepEqual(await resolve('example.org', 'MX'), [{ exchange: 'mx.example.org', priority: 10 }])
  })

  it('throws node:dns codes, so mailauth tells a void lookup from a temporary failure', async () => {
    assert.equal(await codeOf(resolve('nowhere.example', 'TXT')), 'ENOTFOUND')
    assert.equal(await codeOf(resolve('example.org', 'AAAA')), 'ENODATA')
    assert.equal(await codeOf(resolve('slow.example', 'TXT')), 'ETIMEOUT')
    assert.equal(await codeOf(resolve('broken.example', 'TXT')), 'ESERVFAIL')
    assert.equal(await codeOf(resolve('example.org', 'SPF')), 'ENOTIMP')
  })

  it("the hook's signal ends a lookup under way and refuses the next ones", async () => {
    const controller = new AbortController()
    const bound = mailauthResolver(dns, { signal: controller.signal })
    const pending = codeOf(bound('late.example', 'A'))
    controller.abort(new Error('hook timed out'))
    assert.equal(await pending, 'ECANCELLED')
    assert.equal(await codeOf(bound('example.org', 'A')), 'ECANCELLED')
  })
})
