import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scriptedDns } from './scripted.ts'

describe('dns/scripted: a resolver for plugin tests', () => {
  const dns = scriptedDns({
    'example.com': { MX: [{ exchange: 'mx.example.com', priority: 10 }], TXT: ['v=spf1 -all', ['a', 'b']] },
    'mx.example.com': { A: ['192.0.2.25'], ttl: 60 },
    'www.example.com': { CNAME: 'mx.example.com' },
    'loop.test': { CNAME: 'loop.test' },
    'slow.test': 'timeout',
    'broken.test': 'servfail',
    'Upper.Test': { A: ['192.0.2.7'] },
  })

  it('answers the scripted records', async () => {
    assert.deepEqual(await dns.query('example.com', 'MX'), {
      kind: 'records',
      records: [{ exchange: 'mx.example.com', priority: 10 }],
      ttl: 300,
      name: 'example.com',
    })
    assert.deepEqual(await dns.query('example.com', 'TXT'), {
      kind: 'records',
      records: [['v=spf1 -all'], ['a', 'b']],
      ttl: 300,
      name: 'example.com',
    })
  })

  it('follows CNAMEs, and a loop is a failure', async () => {
    assert.deepEqual(await dns.query('www.example.com', 'A'), {
      kind: 'records',
      records: ['192.0.2.25'],
      ttl: 60,
      name: 'mx.example.com',
    })
    assert.equal((await dns.query('www.example.com', 'CNAME')).kind, 'records')
    assert.equal((await dns.query('loop.test', 'A')).kind, 'servfail')
  })

  it('tells NXDOMAIN, NODATA, SERVFAIL and timeout apart', async () => {
    assert.equal((await dns.query('unknown.test', 'A')).kind, 'nxdomain')
    assert.equal((await dns.query('example.com', 'AAAA')).kind, 'nodata')
    assert.equal((await dns.query('broken.test', 'A')).kind, 'servfail')
    assert.equal((await dns.query('slow.test', 'A')).kind, 'timeout')
  })

  it('ignores case and a trailing dot', async () => {
    assert.equal((await dns.query('upper.test.', 'A')).kind, 'records')
  })

  it('records the questions asked, and can be changed while running', async () => {
    const d = scriptedDns({})
    await d.query('a.test', 'A')
    d.set('a.test', { A: ['192.0.2.1'] })
    assert.equal((await d.query('a.test', 'A')).kind, 'records')
    assert.deepEqual(d.calls, [
      { name: 'a.test', type: 'A' },
      { name: 'a.test', type: 'A' },
    ])
    assert.equal(d.stats().answers.nxdomain, 1)
  })

  it('a delayed answer ends with the caller signal, rejected with its reason', async () => {
    const d = scriptedDns({ 'slow.test': { A: ['192.0.2.1'], delayMs: 60_000 } })
    const controller = new AbortController()
    const pending = d.query('slow.test', 'A', { signal: controller.signal })
    const reason = new Error('hook timed out')
    controller.abort(reason)
    await assert.rejects(pending, (e) => e === reason)
    assert.equal(d.stats().aborted, 1)
  })
})
