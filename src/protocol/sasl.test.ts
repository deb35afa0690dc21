import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it, mock } from 'node:test'
import {
  cramChallenge,
  cramDigest,
  cramVerify,
  decodeBase64Strict,
  maskCredentials,
  parseCramResponse,
  parseLoginField,
  parsePlain,
} from './sasl.ts'

const b = (s: string) => Buffer.from(s, 'utf8')

describe('decodeBase64Strict', () => {
  const cases = [
    { name: 'lone = is empty (RFC 4954 §4)', in: '=', want: '' },
    { name: 'empty line is empty', in: '', want: '' },
    { name: '4n', in: 'dGVzdA==', want: 'test' },
    { name: '4n, one pad', in: 'YWI=', want: 'ab' },
    { name: '4n, no pad', in: 'YWJj', want: 'abc' },
    { name: 'PLAIN blob', in: 'AHVzZXIAcGFzcw==', want: '\0user\0pass' },
    { name: '4n+1', in: 'YWJjZ', want: undefined },
    { name: '4n+2 (pad missing)', in: 'YW', want: undefined },
    { name: '4n+3 (pad missing)', in: 'YWI', want: undefined },
    { name: '4n+1 with pad', in: 'YWJj=', want: undefined },
    { name: 'too much padding', in: 'YQ===', want: undefined },
    { name: 'pad only', in: '====', want: undefined },
    { name: '==', in: '==', want: undefined },
    { name: 'pad in the middle', in: 'YQ==YWJj', want: undefined },
    { name: 'non-canonical pad bits (==)', in: 'YR==', want: undefined },
    { name: 'non-canonical pad bits (=)', in: 'YWJ=', want: undefined },
    { name: 'whitespace', in: 'dGVz dA==', want: undefined },
    { name: 'trailing CR', in: 'dGVzdA==\r', want: undefined },
    { name: 'url-safe alphabet', in: 'a-_b', want: undefined },
    { name: 'bang', in: '!!!!', want: undefined },
    { name: 'non-ASCII', in: 'dGVzé===', want: undefined },
    { name: 'cancel *', in: '*', want: undefined },
  ] as const
  for (const c of cases) {
    it(c.name, () => assert.equal(decodeBase64Strict(c.in)?.toString('utf8'), c.want))
  }

  it('round-trips random bytes of every length 0..64', () => {
    for (let n = 0; n <= 64; n++) {
      const buf = crypto.randomBytes(n)
      assert.deepEqual(decodeBase64Strict(buf.toString('base64')), buf)
    }
  })
})

describe('parsePlain', () => {
  const long = (n: number) => 'x'.repeat(n)
  const cases = [
    { name: 'no authzid', in: '\0user\0pass', want: { authzid: '', authcid: 'user', password: 'pass' } },
    { name: 'with authzid', in: 'admin\0user\0pass', want: { authzid: 'admin', authcid: 'user', password: 'pass' } },
    {
      name: 'UTF-8 and spaces',
      in: '\0jörg@example.com\0pass word ✓',
      want: { authzid: '', authcid: 'jörg@example.com', password: 'pass word ✓' },
    },
    { name: 'authcid 255 bytes', in: `\0${long(255)}\0p`, want: { authzid: '', authcid: long(255), password: 'p' } },
    {
      name: 'password 1024 bytes',
      in: `\0u\0${long(1024)}`,
      want: { authzid: '', authcid: 'u', password: long(1024) },
    },
    { name: 'authcid 256 bytes', in: `\0${long(256)}\0p`, want: undefined },
    { name: 'password 1025 bytes', in: `\0u\0${long(1025)}`, want: undefined },
    { name: 'one NUL', in: 'user\0pass', want: undefined },
    { name: 'no NUL', in: 'userpass', want: undefined },
    { name: 'three NULs', in: '\0user\0pass\0', want: undefined },
    { name: 'NUL in password', in: '\0user\0pa\0ss', want: undefined },
    { name: 'empty authcid', in: 'admin\0\0pass', want: undefined },
    { name: 'empty password', in: '\0user\0', want: undefined },
    { name: 'empty everything', in: '\0\0', want: undefined },
    { name: 'CR in password', in: '\0user\0pa\rss', want: undefined },
    { name: 'LF in password', in: '\0user\0pa\nss', want: undefined },
    { name: 'LF in authcid', in: '\0us\ner\0pass', want: undefined },
    { name: 'CRLF in authzid', in: 'a\r\nb\0user\0pass', want: undefined },
    { name: 'ESC in authcid', in: '\0us\x1ber\0pass', want: undefined },
  ] as const
  for (const c of cases) it(c.name, () => assert.deepEqual(parsePlain(b(c.in)), c.want))

  it('rejects invalid UTF-8 in any field', () => {
    for (const bad of [
      [0xff, 0, 0x75, 0, 0x70],
      [0, 0xc3, 0, 0x70],
      [0, 0x75, 0, 0xed, 0xa0, 0x80],
    ]) {
      assert.equal(parsePlain(Buffer.from(bad)), undefined)
    }
  })
})

describe('parseLoginField', () => {
  const cases = [
    { name: 'plain', in: b('user@example.com'), want: 'user@example.com' },
    { name: 'UTF-8', in: b('pässword'), want: 'pässword' },
    { name: '1024 bytes', in: b('y'.repeat(1024)), want: 'y'.repeat(1024) },
    { name: '1025 bytes', in: b('y'.repeat(1025)), want: undefined },
    { name: 'empty', in: b(''), want: undefined },
    { name: 'NUL', in: b('a\0b'), want: undefined },
    { name: 'CR', in: b('a\rb'), want: undefined },
    { name: 'tab', in: b('a\tb'), want: undefined },
    { name: 'DEL', in: b('a\x7f'), want: undefined },
    { name: 'C1', in: b('a\u0085'), want: undefined },
    { name: 'invalid UTF-8', in: Buffer.from([0x61, 0xc0, 0xaf]), want: undefined },
  ] as const
  for (const c of cases) it(c.name, () => assert.equal(parseLoginField(c.in), c.want))
})

describe('CRAM-MD5', () => {
  it('challenge is <random.timestamp@host> and differs each time', () => {
    const c1 = cramChallenge('mx.example.com')
    const c2 = cramChallenge('mx.example.com')
    assert.match(c1, /^<[0-9a-f]{32}\.\d+@mx\.example\.com>$/)
    assert.notEqual(c1, c2)
  })

  it('challenge uses crypto.randomBytes (CSPRNG)', () => {
    const spy = mock.method(crypto, 'randomBytes')
    try {
      cramChallenge('mx.example.com')
      assert.equal(spy.mock.callCount(), 1)
    } finally {
      spy.mock.restore()
    }
  })

  it('challenge refuses a hostname that would break it', () => {
    for (const h of ['', 'a b', 'a>b', 'a\r\nb', 'a@b']) assert.throws(() => cramChallenge(h), RangeError)
  })

  it('digest matches the RFC 2195 example', () => {
    const challenge = '<1896.697170952@postoffice.reston.mci.net>'
    assert.equal(cramDigest('tanstaaftanstaaf', challenge), 'b913a602c7eda7a495b4e6e7334d3890')
    assert.equal(cramVerify('tanstaaftanstaaf', challenge, 'b913a602c7eda7a495b4e6e7334d3890'), true)
    assert.equal(cramVerify('tanstaaftanstaaX', challenge, 'b913a602c7eda7a495b4e6e7334d3890'), false)
    assert.equal(cramVerify('tanstaaftanstaaf', challenge, 'b913a602c7eda7a495b4e6e7334d389'), false)
  })

  it('verify compares with timingSafeEqual', () => {
    const spy = mock.method(crypto, 'timingSafeEqual')
    try {
      cramVerify('s', '<c@h>', cramDigest('s', '<c@h>'))
      assert.equal(spy.mock.callCount(), 1)
    } finally {
      spy.mock.restore()
    }
  })

  const cases = [
    {
      name: 'RFC 2195 example',
      in: 'tim b913a602c7eda7a495b4e6e7334d3890',
      want: { user: 'tim', digest: 'b913a602c7eda7a495b4e6e7334d3890' },
    },
    {
      name: 'user with space',
      in: 'tim smith b913a602c7eda7a495b4e6e7334d3890',
      want: { user: 'tim smith', digest: 'b913a602c7eda7a495b4e6e7334d3890' },
    },
    { name: 'uppercase hex', in: 'tim B913A602C7EDA7A495B4E6E7334D3890', want: undefined },
    { name: 'short digest', in: 'tim b913a602c7eda7a495b4e6e7334d389', want: undefined },
    { name: 'long digest', in: 'tim b913a602c7eda7a495b4e6e7334d38900', want: undefined },
    { name: 'no user', in: ' b913a602c7eda7a495b4e6e7334d3890', want: undefined },
    { name: 'no space', in: 'b913a602c7eda7a495b4e6e7334d3890', want: undefined },
    { name: 'trailing space', in: 'tim b913a602c7eda7a495b4e6e7334d3890 ', want: undefined },
    { name: 'LF in user', in: 'ti\nm b913a602c7eda7a495b4e6e7334d3890', want: undefined },
    { name: 'NUL in user', in: 'ti\0m b913a602c7eda7a495b4e6e7334d3890', want: undefined },
    { name: 'empty', in: '', want: undefined },
  ] as const
  for (const c of cases) it(`parse: ${c.name}`, () => assert.deepEqual(parseCramResponse(b(c.in)), c.want))
})

describe('maskCredentials', () => {
  const cases = [
    { in: 'AUTH PLAIN AHVzZXIAcGFzcw==', want: 'AUTH PLAIN ****' },
    { in: 'auth login dXNlcg==', want: 'auth login ****' },
    { in: 'AUTH PLAIN =', want: 'AUTH PLAIN ****' },
    { in: 'AUTH  PLAIN\tAHVz extra', want: 'AUTH PLAIN ****' },
    { in: 'AUTH LOGIN', want: 'AUTH LOGIN' },
    { in: 'AUTH CRAM-MD5', want: 'AUTH CRAM-MD5' },
    { in: 'MAIL FROM:<a@b>', want: 'MAIL FROM:<a@b>' },
  ] as const
  for (const c of cases) it(c.in, () => assert.equal(maskCredentials(c.in), c.want))
})
