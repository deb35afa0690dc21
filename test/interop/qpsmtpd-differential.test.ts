/**
 * The same sessions sent to qpsmtpd 0.94 (Debian's qpsmtpd-prefork) and to qtsmtpd with the
 * same plugins, config files and loopback DNS server (unbound); clients connect from several
 * loopback addresses so that one is listed. Every reply code must be the same, or the
 * difference must be one of DIFFERENCES, each documented in the plugin's page.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { objectConfigSource } from '../../src/config/config-source.ts'
import { createDnsService } from '../../src/dns/index.ts'
import { startTestServer, type TestServer } from '../../src/testing/index.ts'
import { type Qpsmtpd, qpsmtpdUnavailable, startQpsmtpd } from '../peers/qpsmtpd.ts'
import { startUnbound, type Unbound } from '../peers/unbound.ts'

const CLEAN = '127.0.0.3'
const LISTED = '127.0.0.2'

const RECORDS = [
  '2.0.0.127.in-addr.arpa. 300 IN PTR listed.client.test.',
  '3.0.0.127.in-addr.arpa. 300 IN PTR clean.client.test.',
  'listed.client.test. 300 IN A 127.0.0.2',
  'clean.client.test. 300 IN A 127.0.0.3',
  '2.0.0.127.bl.test. 300 IN A 127.0.0.2',
  '2.0.0.127.bl.test. 300 IN TXT "listed in bl.test"',
  'spammer.test.rhs.test. 300 IN A 127.0.0.2',
  'spammer.test.rhs.test. 300 IN TXT "is a spam domain"',
  'good.test. 300 IN MX 10 mx.good.test.',
  'mx.good.test. 300 IN A 192.0.2.25',
  'spammer.test. 300 IN MX 10 mx.good.test.',
  'nomx.test. 300 IN A 192.0.2.26',
  'nullmx.test. 300 IN MX 0 .',
  'spam-site.zz.uri.test. 300 IN A 127.0.0.2',
]

/** The plugins both servers run, in qpsmtpd's syntax; the queue line differs. */
const PLUGINS = [
  'fcrdns',
  'dnsbl',
  'rhsbl',
  'helo policy rfc',
  'badmailfrom',
  'resolvable_fromhost',
  'rcpt_ok',
  'uribl',
]
const FILES: Record<string, string> = {
  me: 'mx.test\n',
  rcpthosts: 'mx.test\n',
  dnsbl_zones: 'bl.test\n',
  rhsbl_zones: 'rhs.test\n',
  badmailfrom: '@bad.test\n',
  badhelo: 'aol.com\n',
  uribl_zones: 'uri.test 2 deny\n',
}

interface Session {
  readonly name: string
  readonly from: string
  /** Commands after the greeting; `DATA` is followed by `body` (a short message by default). */
  readonly commands: readonly string[]
  readonly body?: string
}

const mail = (helo: string, from: string, rcpt = 'u@mx.test') => [
  `EHLO ${helo}`,
  `MAIL FROM:<${from}>`,
  `RCPT TO:<${rcpt}>`,
]

const SESSIONS: readonly Session[] = [
  {
    name: 'clean client, good sender, message',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'a@good.test'), 'DATA', 'QUIT'],
  },
  {
    name: 'a URL in a URI blocklist',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'a@good.test'), 'DATA', 'QUIT'],
    body: 'Subject: offer\r\n\r\nbuy at http://www.spam-site.zz/now\r\n',
  },
  { name: 'listed client', from: LISTED, commands: ['EHLO listed.client.test', 'QUIT'] },
  { name: 'HELO not a FQDN', from: CLEAN, commands: ['EHLO workstation', 'QUIT'] },
  { name: 'HELO name does not exist', from: CLEAN, commands: ['EHLO nosuchhost.client.test', 'QUIT'] },
  { name: 'HELO in badhelo', from: CLEAN, commands: ['EHLO aol.com', 'QUIT'] },
  { name: 'HELO forged literal', from: CLEAN, commands: ['EHLO [127.0.0.9]', 'QUIT'] },
  { name: 'HELO our own literal', from: CLEAN, commands: ['EHLO [127.0.0.3]', 'QUIT'] },
  { name: 'badmailfrom', from: CLEAN, commands: [...mail('clean.client.test', 'x@bad.test'), 'QUIT'] },
  {
    name: 'rhsbl listed sender domain',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'x@spammer.test'), 'QUIT'],
  },
  {
    name: 'sender domain does not exist',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'x@nosuch.test'), 'QUIT'],
  },
  {
    name: 'sender domain without MX, with A',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'x@nomx.test'), 'QUIT'],
  },
  {
    name: 'sender domain with null MX',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'x@nullmx.test'), 'QUIT'],
  },
  {
    name: 'sender domain whose DNS refuses',
    from: CLEAN,
    commands: [...mail('clean.client.test', 'x@refused.test'), 'QUIT'],
  },
  {
    name: 'null sender, relaying refused',
    from: CLEAN,
    commands: [...mail('clean.client.test', '', 'u@elsewhere.test'), 'QUIT'],
  },
]

/** Reply codes that differ on purpose: qpsmtpd's, ours, and where the plugin's page says why. */
const DIFFERENCES: Readonly<Record<string, { qpsmtpd: string; qtsmtpd: string; doc: string }>> = {
  'listed client': { qpsmtpd: '550', qtsmtpd: '554', doc: 'docs/plugins/dnsbl.md: 554 at connect (RFC 5321 §3.1)' },
  'a URL in a URI blocklist': {
    qpsmtpd: '220 250 250 250 354 552 221',
    qtsmtpd: '220 250 250 250 354 554 221',
    doc: 'docs/plugins/uribl.md: 554 after DATA, not "storage exceeded" (RFC 5321 §4.2.2)',
  },
  'sender domain with null MX': {
    qpsmtpd: '220 250 450 503 221',
    qtsmtpd: '220 250 550 503 221',
    doc: 'docs/plugins/resolvable_fromhost.md: RFC 7505 §4.2',
  },
  'sender domain whose DNS refuses': {
    qpsmtpd: '220 250 450 503 221',
    qtsmtpd: '220 250 451 503 221',
    doc: 'docs/plugins/resolvable_fromhost.md: a DNS failure is 451 4.4.3',
  },
}

/** One session from `from`: the reply code of the greeting and of each command, until the server closes. */
function converse(port: number, s: Session): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress: s.from })
    const codes: string[] = []
    const queue = [...s.commands]
    let buffered = ''
    let inData = false
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`${s.name}: no reply in time after ${codes.join(' ')}`))
    }, 60_000)
    const done = () => {
      clearTimeout(timer)
      resolve(codes.join(' '))
    }
    socket.on('data', (d) => {
      buffered += d.toString('latin1')
      for (;;) {
        const eol = buffered.indexOf('\r\n')
        if (eol < 0) break
        const line = buffered.slice(0, eol)
        buffered = buffered.slice(eol + 2)
        if (line[3] === '-') continue
        const code = line.slice(0, 3)
        codes.push(code)
        if (code === '354' && !inData) {
          inData = true
          socket.write(`${s.body ?? 'Subject: differential\r\n\r\nhello\r\n'}.\r\n`)
          continue
        }
        inData = false
        const next = queue.shift()
        if (next === undefined || code === '221') socket.end()
        else socket.write(`${next}\r\n`)
      }
    })
    socket.on('close', done)
    socket.on('error', (e) => {
      if (codes.length > 0) done()
      else reject(e)
    })
  })
}

const unavailable = qpsmtpdUnavailable()

describe('qpsmtpd 0.94 and qtsmtpd, same sessions, same plugins, same DNS', { skip: unavailable ?? false }, () => {
  let unbound: Unbound
  let qpsmtpd: Qpsmtpd
  let qtsmtpd: TestServer
  const results = new Map<string, { qpsmtpd: string; qtsmtpd: string }>()
  let configDir = ''

  before(async () => {
    unbound = await startUnbound({
      zones: {
        'test.': 'static',
        '127.in-addr.arpa.': 'static',
        'refused.test.': 'refuse',
      },
      records: RECORDS,
    })
    qpsmtpd = await startQpsmtpd({
      config: { ...FILES, plugins: `${[...PLUGINS, 'discard'].join('\n')}\n` },
      dns: { address: unbound.address, port: unbound.port },
    })
    configDir = mkdtempSync(join(tmpdir(), 'qtsmtpd-differential-'))
    for (const [name, text] of Object.entries(FILES)) writeFileSync(join(configDir, name), text)
    writeFileSync(join(configDir, 'plugins'), `${[...PLUGINS, 'queue/discard'].join('\n')}\n`)
    const dns = createDnsService(objectConfigSource({ dns_servers: [`${unbound.address}:${unbound.port}`] }))
    qtsmtpd = await startTestServer({ configDir, dns, memoryQueue: false })
    for (const s of SESSIONS)
      results.set(s.name, { qpsmtpd: await converse(qpsmtpd.port, s), qtsmtpd: await converse(qtsmtpd.port, s) })
  })
  after(async () => {
    await qtsmtpd?.close()
    await qpsmtpd?.stop()
    await unbound?.stop()
    if (configDir !== '') rmSync(configDir, { recursive: true, force: true })
  })

  for (const s of SESSIONS)
    it(s.name, () => {
      const got = results.get(s.name)
      assert.ok(got !== undefined)
      const expected = DIFFERENCES[s.name]
      if (expected === undefined) assert.equal(got.qtsmtpd, got.qpsmtpd, `qpsmtpd: ${got.qpsmtpd}`)
      else {
        assert.equal(got.qpsmtpd, expected.qpsmtpd, `qpsmtpd (${expected.doc})`)
        assert.equal(got.qtsmtpd, expected.qtsmtpd, `qtsmtpd (${expected.doc})`)
      }
    })
})
