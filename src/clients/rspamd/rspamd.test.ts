import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { type Rspamd, startRspamd } from '../../../test/peers/rspamd.ts'
import { GTUBE } from '../../../test/peers/spamd.ts'
import type { ScannerError } from '../exchange.ts'
import { parseCheckReply, RspamdClient } from './rspamd.ts'

const message = (body: string, subject = 'lunch') =>
  Buffer.from(
    'Received: from client.test (client.test [192.0.2.7])\r\n\tby mx.test (qtsmtpd) with ESMTP id 1\r\n' +
      `From: Alice <alice@sender.test>\r\nTo: bob@local.test\r\nSubject: ${subject}\r\n` +
      'Date: Fri, 04 Dec 2026 18:00:00 +0000\r\nMessage-ID: <20261204180000.1@sender.test>\r\n\r\n' +
      body,
  )
const envelope = { ip: '192.0.2.7', helo: 'client.test', from: 'alice@sender.test', rcpt: ['bob@local.test'] }
const check = (
  client: RspamdClient,
  m: Buffer,
  env: Parameters<RspamdClient['check']>[2] = envelope,
  timeoutMs = 30_000,
) => client.check(Readable.from([m]), m.length, env, { timeoutMs })

describe('rspamd client (/checkv2) against Debian rspamd, offline', () => {
  let rspamd: Rspamd
  let client: RspamdClient
  before(async () => {
    rspamd = await startRspamd({
      localFiles: {
        'settings.conf': `strict { id = "strict"; apply { actions { reject = -100; } } }
strict_user { rcpt = "strict@local.test"; apply { actions { reject = -100; } } }
strict_login { user = "strictuser"; apply { actions { reject = -100; } } }
`,
        'milter_headers.conf': 'use = ["x-spamd-bar"];\nskip_local = false;\nskip_authenticated = false;\n',
      },
    })
    client = new RspamdClient({ server: { url: rspamd.url } })
  })
  after(async () => {
    await client.close()
    await rspamd.close()
  })

  it('GTUBE: reject, with the SMTP message rspamd proposes', async () => {
    const r = await check(client, message(`${GTUBE}\r\n`))
    assert.equal(r.action, 'reject')
    assert.ok(r.symbols.includes('GTUBE'), r.symbols.join(','))
    assert.equal(r.smtpMessage, 'Gtube pattern')
  })

  it('ham: no action, and the milter header edits of milter_headers', async () => {
    const r = await check(client, message('Shall we meet for lunch at noon on Friday?\r\n'))
    assert.equal(r.action, 'no action')
    assert.ok(r.score < r.requiredScore)
    assert.equal(r.requiredScore, 15)
    assert.ok(
      r.addHeaders.some((h) => h.name === 'X-Spamd-Bar'),
      JSON.stringify(r.addHeaders),
    )
  })

  it('per-user settings: a Settings-ID, a recipient and an SMTP AUTH user select stricter actions', async () => {
    const ham = message('Shall we meet for lunch at noon on Friday?\r\n')
    assert.equal((await check(client, ham, { ...envelope, settingsId: 'strict' })).action, 'reject')
    assert.equal(
      (await check(client, ham, { ...envelope, rcpt: ['strict@local.test'], deliverTo: 'strict@local.test' })).action,
      'reject',
    )
    assert.equal((await check(client, ham, { ...envelope, user: 'strictuser' })).action, 'reject')
    assert.equal((await check(client, ham, { ...envelope, user: 'alice' })).action, 'no action')
  })

  it('rspamd stopped: unreachable; back again: answers', async () => {
    await rspamd.stop()
    try {
      await assert.rejects(check(client, message('x\r\n'), envelope, 5000), (e: ScannerError) => {
        assert.equal(e.failure, 'unreachable', e.message)
        return true
      })
    } finally {
      await rspamd.start()
    }
    assert.equal((await check(client, message('x\r\n'))).action, 'no action')
  })
})

describe('rspamd client against broken daemons', () => {
  let server: Server
  let client: RspamdClient
  let answer: (res: import('node:http').ServerResponse) => void = () => {}
  before(async () => {
    server = createServer((req, res) => {
      req.resume()
      req.on('end', () => answer(res))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    client = new RspamdClient({ server: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` } })
  })
  after(async () => {
    await client.close()
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  })

  const cases: [string, (res: import('node:http').ServerResponse) => void, ScannerError['failure']][] = [
    ['never answers', () => {}, 'timeout'],
    ['garbage', (res) => res.end('<html>nope</html>'), 'malformed'],
    ['unknown action', (res) => res.end('{"action":"delete everything","score":1,"required_score":15}'), 'malformed'],
    ['HTTP 500', (res) => res.writeHead(500).end('{"error":"oops"}'), 'refused'],
    [
      'oversized',
      (res) => res.end(`{"action":"no action","score":1,"required_score":15,"x":"${'a'.repeat(300_000)}"}`),
      'oversized',
    ],
    [
      'CR LF in a subject',
      (res) => res.end('{"action":"rewrite subject","score":9,"required_score":15,"subject":"a\\r\\nBcc: x"}'),
      'malformed',
    ],
  ]
  for (const [label, respond, failure] of cases)
    it(`${label}: ${failure}`, async () => {
      answer = respond
      await assert.rejects(check(client, message('x\r\n'), envelope, 500), (e: ScannerError) => {
        assert.equal(e.failure, failure, e.message)
        return true
      })
    })
})

describe('parseCheckReply', () => {
  it('reads the milter header edits in their three shapes', () => {
    const r = parseCheckReply(
      JSON.stringify({
        action: 'add header',
        score: 7,
        required_score: 15,
        milter: {
          add_headers: {
            'X-A': 'one',
            'X-B': { value: 'two', order: 0 },
            'X-C': [{ value: 'c1', order: -1 }, 'c2\r\n\tfolded'],
          },
          remove_headers: { 'X-Spam': 0, 'X-Old': [1, -1] },
        },
      }),
    )
    assert.deepEqual(r.addHeaders, [
      { name: 'X-A', value: 'one', order: undefined },
      { name: 'X-B', value: 'two', order: 0 },
      { name: 'X-C', value: 'c1', order: undefined },
      { name: 'X-C', value: 'c2\tfolded', order: undefined },
    ])
    assert.deepEqual(r.removeHeaders, [
      { name: 'X-Spam', index: 0 },
      { name: 'X-Old', index: 1 },
      { name: 'X-Old', index: -1 },
    ])
  })
})
