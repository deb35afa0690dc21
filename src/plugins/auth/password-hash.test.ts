import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { describe, it, mock } from 'node:test'
import { storedCramSecret, verifyPassword } from './password-hash.ts'

// Vectors: SHA-crypt from Drepper's spec (sha256crypt/sha512crypt test tables) and `openssl passwd -5/-6`;
// digests from `openssl dgst`; scrypt from RFC 7914 §12 (P="password", S="NaCl", N=1024, r=8, p=16).
const LONG = 'a very much longer text to encrypt.  This one even stretches over morethan one line.'
const vectors = [
  { name: 'flat_auth_pw cleartext', stored: 'secret pass', pw: 'secret pass' },
  { name: '{PLAIN}', stored: '{PLAIN}s3cret', pw: 's3cret' },
  { name: '{plain} lowercase scheme', stored: '{plain}s3cret', pw: 's3cret' },
  { name: '{CLEARTEXT} holding $5$', stored: '{CLEARTEXT}$5$x', pw: '$5$x' },
  { name: '$5$ spec vector', stored: '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5', pw: 'Hello world!' },
  {
    name: '$6$ spec vector',
    stored: '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    pw: 'Hello world!',
  },
  {
    name: '$5$ rounds=10000',
    stored: '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
    pw: 'Hello world!',
  },
  {
    name: '$6$ rounds=10000, salt cut to 16',
    stored:
      '$6$rounds=10000$saltstringsaltstring$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    pw: 'Hello world!',
  },
  {
    name: '$5$ rounds=10 clamps to 1000',
    stored: '$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC',
    pw: 'the minimum number is still observed',
  },
  {
    name: '$5$ rounds=77777 short salt',
    stored: '$5$rounds=77777$short$JiO1O3ZpDAxGJeaDIuqCoEFysAe1mZNJRs3pw0KQRd/',
    pw: 'we have a short salt string but not a short password',
  },
  {
    name: '$5$ key longer than digest',
    stored: '$5$rounds=1400$anotherlongsalts$Rx.j8H.h8HjEDGomFU8bDkXm3XIUnzyxf12oP84Bnq1',
    pw: LONG,
  },
  {
    name: '$6$ key longer than digest',
    stored:
      '$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiDwGqd8p4ur1',
    pw: LONG,
  },
  {
    name: '$6$ 130-byte key (two digest lengths)',
    stored: '$6$rounds=1000$x$uX48BhvLIiqtLJxgjmj0aCDE2ckCs850sh6d0uVdB59N8TkchCTMMv2ZVkr61saDIP7qRT.5kOqzq61pRJVBV/',
    pw: 'p'.repeat(130),
  },
  { name: '$5$ UTF-8 salt and key', stored: '$5$ütf8$9tiJoljLLxpIAZHru7UW17sSgkMDPO.N74MgqxyUxr8', pw: 'pässwörd' },
  {
    name: '{SHA256-CRYPT}',
    stored: '{SHA256-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
    pw: 'Hello world!',
  },
  {
    name: '{SHA512-CRYPT}',
    stored:
      '{SHA512-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    pw: 'Hello world!',
  },
  {
    name: '{CRYPT} with $5$',
    stored: '{CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
    pw: 'Hello world!',
  },
  { name: '{SHA}', stored: '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', pw: 'password' },
  { name: '{SHA.HEX}', stored: '{SHA.HEX}5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8', pw: 'password' },
  { name: '{SHA256}', stored: '{SHA256}XohImNooBHFR0OVvjcYpJ3NgPQ1qq73WKhHvch0VQtg=', pw: 'password' },
  {
    name: '{SHA256} hex without suffix',
    stored: '{SHA256}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8',
    pw: 'password',
  },
  {
    name: '{SHA512}',
    stored: '{SHA512}sQnzu7wkTrgkQZF+0G1hi5AI3Qmzvv0bXgc5THBqi7mAsdd4Xll27ASbRt9fEyavWi6m0QP9B8lThf+rDKy8hg==',
    pw: 'password',
  },
  { name: '{SSHA}', stored: '{SSHA}+LCX/SSC1EaDOvTSmv49xebfm5JOYUNsMTIzNA==', pw: 'password' },
  { name: '{SSHA256}', stored: '{SSHA256}uXWi0HNA5T6ZxOwTcHNhtFKbnhMceeAh019uPM5AfIBOYUNsMTIzNA==', pw: 'password' },
  {
    name: '{SSHA512}',
    stored: '{SSHA512}9d1rrpvxvipqMMPa+X+sCw2Pna721xj1w5MEbLt/d9Z31oiZqH9ubDazT3oYF+SRVAyDEbSLUPgEPKGPSlMs4k5hQ2wxMjM0',
    pw: 'password',
  },
  {
    name: '{SCRAM-SHA-256} RFC 7677 keys',
    stored:
      '{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    pw: 'pencil',
  },
  {
    name: '$scrypt$ RFC 7914 vector',
    stored:
      '$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA==',
    pw: 'password',
  },
  {
    name: '{SCRYPT} with N= and ab64',
    stored:
      '{SCRYPT}$scrypt$N=1024,r=8,p=16$TmFDbA==$/bq.HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA',
    pw: 'password',
  },
] as const

describe('verifyPassword', () => {
  for (const v of vectors) {
    it(`${v.name}: right password`, async () => assert.equal(await verifyPassword(v.stored, v.pw), true))
    it(`${v.name}: wrong password`, async () => {
      assert.equal(await verifyPassword(v.stored, `${v.pw}x`), false)
      assert.equal(await verifyPassword(v.stored, v.pw.slice(0, -1) || 'y'), false)
    })
  }

  const never = [
    { name: 'empty stored', stored: '', pw: '' },
    { name: 'empty given', stored: '{PLAIN}', pw: '' },
    { name: 'empty {PLAIN}', stored: '{PLAIN}', pw: 'x' },
    { name: 'unknown scheme is not cleartext', stored: '{MD4}abc', pw: '{MD4}abc' },
    { name: 'unsupported crypt is not cleartext', stored: '$1$salt$abc', pw: '$1$salt$abc' },
    { name: 'bcrypt', stored: '$2y$10$abcdefghijklmnopqrstuu', pw: '$2y$10$abcdefghijklmnopqrstuu' },
    {
      name: 'hash as password',
      stored: '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
      pw: '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
    },
    {
      name: 'truncated $5$ hash',
      stored: '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc',
      pw: 'Hello world!',
    },
    { name: '$5$ without hash', stored: '$5$saltstring', pw: 'Hello world!' },
    {
      name: '$5$ bad hash alphabet',
      stored: '$5$saltstring$5B8vYYiY-CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
      pw: 'Hello world!',
    },
    {
      name: 'rounds above the cap',
      stored: '$5$rounds=999999999$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5',
      pw: 'x',
    },
    {
      name: '{SHA256-CRYPT} holding $6$',
      stored:
        '{SHA256-CRYPT}$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
      pw: 'Hello world!',
    },
    { name: '{SHA} bad base64', stored: '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g', pw: 'password' },
    { name: '{SHA} wrong length', stored: '{SHA256}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', pw: 'password' },
    { name: '{SHA.XYZ}', stored: '{SHA.XYZ}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', pw: 'password' },
    { name: '{SSHA} without salt', stored: '{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', pw: 'password' },
    {
      name: 'scrypt N not a power of two',
      stored: '$scrypt$N=1000,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI',
      pw: 'password',
    },
    {
      name: 'scrypt memory above cap',
      stored: '$scrypt$ln=20,r=32,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI',
      pw: 'password',
    },
    { name: 'scrypt garbage', stored: '$scrypt$ln=99999999,r=0,p=0$$', pw: 'password' },
    { name: 'constructor as scheme', stored: '{constructor}x', pw: 'x' },
    { name: '__proto__ as scheme', stored: '{__proto__}x', pw: 'x' },
  ] as const
  for (const c of never) it(`false: ${c.name}`, async () => assert.equal(await verifyPassword(c.stored, c.pw), false))

  it('never throws on malformed stored values', async () => {
    const prefixes = [
      '',
      '{SHA}',
      '{SSHA512}',
      '{SHA256-CRYPT}',
      '{SCRYPT}',
      '$5$',
      '$6$rounds=',
      '$scrypt$',
      '{CRYPT}$6$',
    ]
    for (let i = 0; i < 300; i++) {
      const junk = crypto.randomBytes(i % 40).toString(i % 2 ? 'latin1' : 'base64')
      const stored = `${prefixes[i % prefixes.length]}${junk}`
      assert.equal(typeof (await verifyPassword(stored, junk)), 'boolean')
    }
  })

  it('compares with crypto.timingSafeEqual for every scheme', async () => {
    const spy = mock.method(crypto, 'timingSafeEqual')
    try {
      for (const v of vectors) {
        const before = spy.mock.callCount()
        assert.equal(await verifyPassword(v.stored, v.pw), true)
        assert.equal(spy.mock.callCount(), before + 1, v.name)
      }
      const before = spy.mock.callCount()
      await verifyPassword('short', 'a much longer given password')
      assert.equal(spy.mock.callCount(), before + 1, 'cleartext of different lengths still compares')
    } finally {
      spy.mock.restore()
    }
  })

  it('yields to the event loop during long SHA-crypt', async () => {
    let ticks = 0
    const timer = setInterval(() => ticks++, 0)
    try {
      await verifyPassword('$5$rounds=40000$s$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5', 'x')
    } finally {
      clearInterval(timer)
    }
    assert.ok(ticks > 0)
  })
})

describe('storedCramSecret', () => {
  const cases = [
    { stored: 'secret', want: 'secret' },
    { stored: '{PLAIN}secret', want: 'secret' },
    { stored: '{CLEAR}secret', want: 'secret' },
    { stored: '{PLAIN}', want: undefined },
    { stored: '', want: undefined },
    { stored: '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=', want: undefined },
    { stored: '$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5', want: undefined },
    { stored: '{UNKNOWN}x', want: undefined },
  ] as const
  for (const c of cases) it(JSON.stringify(c.stored), () => assert.equal(storedCramSecret(c.stored), c.want))
})
