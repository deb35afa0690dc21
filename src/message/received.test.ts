import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildReceived, type ReceivedInfo, rfc5322Date, sanitizeHostText, withProtocol } from './received.ts'

const date = new Date('2026-11-25T16:43:40Z')
const base: ReceivedInfo = {
  helo: 'helo.example',
  remoteIp: '192.0.2.1',
  remoteHost: 'client.example',
  me: 'mx.example',
  protocol: 'ESMTP',
  authenticated: false,
  smtputf8: false,
  queueId: '1a2b3c',
  date,
}

describe('buildReceived', () => {
  it('renders the RFC 5321 §4.4 stamp', () => {
    const v = buildReceived({
      ...base,
      tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
      recipient: 'u@example.com',
    })
    assert.equal(
      v,
      'from helo.example (client.example [192.0.2.1])\r\n' +
        '\tby mx.example (qtsmtpd) with ESMTPS id 1a2b3c\r\n' +
        '\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384)\r\n' +
        `\tfor <u@example.com>; ${rfc5322Date(date)}`,
    )
  })

  it('without rDNS, recipient or TLS; IPv6 and IPv4-mapped literals', () => {
    const { remoteHost: _, ...noRdns } = base
    assert.equal(
      buildReceived({ ...noRdns, remoteIp: '2001:db8::1' }),
      `from helo.example (unknown [IPv6:2001:db8::1])\r\n\tby mx.example (qtsmtpd) with ESMTP id 1a2b3c; ${rfc5322Date(date)}`,
    )
    assert.match(buildReceived({ ...base, remoteIp: '::ffff:192.0.2.7' }), /\(client\.example \[192\.0\.2\.7\]\)/)
    const { helo: __, ...noHelo } = base
    assert.match(buildReceived(noHelo), /^from unknown \(/)
  })

  const hostile = [
    { label: 'comment spoof', helo: 'a) by trusted.example (x' },
    { label: 'CRLF injection', helo: 'a\r\nX-Injected: yes' },
    { label: 'bare LF', helo: 'a\nb' },
    { label: 'NUL', helo: 'a\0b' },
    { label: 'semicolon date spoof', helo: 'a; Mon, 1 Jan 2001 00:00:00 +0000' },
    { label: 'non-ASCII', helo: 'grüße.example' },
    { label: '300 characters', helo: 'x'.repeat(300) },
    { label: 'tab and angle brackets', helo: 'a\t<b>' },
  ] as const
  for (const c of hostile) {
    it(`neutralises a hostile HELO and rDNS: ${c.label}`, () => {
      const v = buildReceived({ ...base, helo: c.helo, remoteHost: c.helo })
      const m = /^from (\S+) \((\S+) \[192\.0\.2\.1\]\)\r\n\tby mx\.example \(qtsmtpd\) with ESMTP id 1a2b3c; /.exec(v)
      assert.ok(m, JSON.stringify(v))
      for (const part of [m[1]!, m[2]!]) {
        assert.match(part, /^[A-Za-z0-9.:\-_[\]]{1,255}$/)
      }
      assert.equal(v.split('\r\n').length, 2, 'no extra lines')
      assert.equal((v.match(/\(/g) ?? []).length, 2, 'only our comments')
      assert.equal((v.match(/;/g) ?? []).length, 1, 'one date separator')
      assert.doesNotMatch(v, /[\0\n](?!\t)/)
    })
  }

  it('caps HELO at 255 characters, one replacement per character', () => {
    assert.equal(sanitizeHostText('x'.repeat(300)).length, 255)
    assert.equal(sanitizeHostText('a) b'), 'a__b')
    assert.equal(sanitizeHostText('ü☃'), '__')
    assert.equal(sanitizeHostText('[IPv6:2001:db8::1]'), '[IPv6:2001:db8::1]')
  })

  it('neutralises control characters in the recipient and TLS strings', () => {
    const v = buildReceived({
      ...base,
      recipient: 'a\r\nX-Evil: 1>@example.com',
      tls: { version: 'TLSv1.3)\r\nX: y', cipher: 'C (x)' },
    })
    assert.equal(v.split('\r\n').length, 4)
    for (const line of v.split('\r\n').slice(1)) assert.match(line, /^\t/)
    assert.match(v, /\(version=TLSv1\.3___X__y cipher=C__x_\)/)
    assert.match(v, /for <a__X-Evil: 1_@example\.com>;/)
  })
})

describe('withProtocol (RFC 3848, RFC 6531 §3.7.4.2)', () => {
  const tls = { version: 'TLSv1.3', cipher: 'X' }
  const table = [
    { protocol: 'SMTP', tls: false, auth: false, utf8: false, want: 'SMTP' },
    { protocol: 'ESMTP', tls: false, auth: false, utf8: false, want: 'ESMTP' },
    { protocol: 'ESMTP', tls: false, auth: true, utf8: false, want: 'ESMTPA' },
    { protocol: 'ESMTP', tls: true, auth: false, utf8: false, want: 'ESMTPS' },
    { protocol: 'ESMTP', tls: true, auth: true, utf8: false, want: 'ESMTPSA' },
    { protocol: 'ESMTP', tls: false, auth: false, utf8: true, want: 'UTF8SMTP' },
    { protocol: 'ESMTP', tls: false, auth: true, utf8: true, want: 'UTF8SMTPA' },
    { protocol: 'ESMTP', tls: true, auth: false, utf8: true, want: 'UTF8SMTPS' },
    { protocol: 'ESMTP', tls: true, auth: true, utf8: true, want: 'UTF8SMTPSA' },
    { protocol: 'SMTP', tls: true, auth: false, utf8: false, want: 'ESMTPS' }, // HELO over implicit TLS
  ] as const
  for (const c of table) {
    it(`${c.protocol} tls=${c.tls} auth=${c.auth} utf8=${c.utf8} → ${c.want}`, () => {
      const info = { protocol: c.protocol, authenticated: c.auth, smtputf8: c.utf8, ...(c.tls ? { tls } : {}) }
      assert.equal(withProtocol(info), c.want)
      assert.match(buildReceived({ ...base, ...info }), new RegExp(` with ${c.want} id `))
    })
  }
})

describe('rfc5322Date', () => {
  const cases = [
    { offset: 0, want: 'Wed, 25 Nov 2026 16:43:40 +0000' },
    { offset: 60, want: 'Wed, 25 Nov 2026 17:43:40 +0100' },
    { offset: -330, want: 'Wed, 25 Nov 2026 11:13:40 -0530' },
    { offset: 480, want: 'Thu, 26 Nov 2026 00:43:40 +0800' },
  ] as const
  for (const c of cases) {
    it(c.want, () => {
      assert.equal(rfc5322Date(date, c.offset), c.want)
      assert.equal(Date.parse(c.want), date.getTime())
    })
  }
  it('defaults to the local zone and round-trips', () => {
    assert.equal(Date.parse(rfc5322Date(date)), date.getTime())
  })
})
