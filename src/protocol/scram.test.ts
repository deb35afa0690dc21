import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  authMessage,
  deriveScramKeys,
  formatScramSecret,
  parseClientFinal,
  parseClientFirst,
  parseScramSecret,
  saslPrep,
  serverFinal,
  serverFirst,
  verifyClientProof,
} from './scram.ts'

// RFC 7677 §3: user "user", password "pencil".
const rfc = {
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
}
const buf = (s: string) => Buffer.from(s)

describe('SCRAM-SHA-256 (RFC 7677 §3 example)', () => {
  it('checks the client proof and signs as the RFC server does', async () => {
    const first = parseClientFirst(buf(rfc.clientFirst))
    assert.deepEqual(first, {
      binding: { flag: 'n' },
      authzid: '',
      gs2Header: 'n,,',
      bare: 'n=user,r=rOprNGfwEbeRWgbNEkqO',
      user: 'user',
      nonce: 'rOprNGfwEbeRWgbNEkqO',
    })
    const keys = await deriveScramKeys('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096)
    assert.equal(serverFirst('rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0', keys.salt, 4096), rfc.serverFirst)
    const final = parseClientFinal(buf(rfc.clientFinal))
    assert.ok(final)
    assert.equal(final.channelBinding.toString(), 'n,,')
    const message = authMessage(first as NonNullable<typeof first>, rfc.serverFirst, final)
    assert.equal(verifyClientProof(keys, message, final.proof), true)
    assert.equal(serverFinal(keys, message), rfc.serverFinal)
    const wrong = await deriveScramKeys('pencil2', keys.salt, 4096)
    assert.equal(verifyClientProof(wrong, message, final.proof), false)
  })

  it('stored forms: Dovecot (doveadm pw, gsasl --mkpasswd) and RFC 5803 round-trip', async () => {
    const keys = await deriveScramKeys('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'), 4096)
    const text = formatScramSecret(keys)
    assert.match(text, /^\{SCRAM-SHA-256\}4096,W22ZaJ0SNY7soEsUEjb6gQ==,[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$/)
    assert.deepEqual(parseScramSecret(text), keys)
    const [, , stored, server] = text.split(',')
    assert.deepEqual(parseScramSecret(`SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$${stored}:${server}`), keys)
    assert.deepEqual(parseScramSecret(`${text},c2FsdGVk`), keys, "gsasl's salted password is ignored")
    for (const bad of [
      '{SCRAM-SHA-256}0,W22ZaJ0SNY7soEsUEjb6gQ==,AA==,AA==',
      `{SCRAM-SHA-256}4096,,${stored},${server}`,
      `{SCRAM-SHA-256}99999999,W22ZaJ0SNY7soEsUEjb6gQ==,${stored},${server}`,
      `{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,${stored},AAAA`,
      '{SCRAM-SHA-1}4096,W22ZaJ0SNY7soEsUEjb6gQ==,AAAA,AAAA',
    ])
      assert.equal(parseScramSecret(bad), undefined, bad)
  })
})

describe('SCRAM message parsers', () => {
  const cases: { name: string; text: string; want: unknown }[] = [
    { name: 'escaped name and authzid', text: 'n,a=a=3Db,n=u=2Cx,r=abc', want: { user: 'u,x', authzid: 'a=b' } },
    { name: 'y flag', text: 'y,,n=u,r=abc', want: { binding: { flag: 'y' } } },
    { name: 'tls-exporter', text: 'p=tls-exporter,,n=u,r=abc', want: { gs2Header: 'p=tls-exporter,,' } },
    { name: 'extension after r', text: 'n,,n=u,r=abc,x=1', want: { nonce: 'abc' } },
    { name: 'mandatory extension', text: 'n,,m=ext,n=u,r=abc', want: undefined },
    { name: 'bad escape', text: 'n,,n=u=41,r=abc', want: undefined },
    { name: 'empty user', text: 'n,,n=,r=abc', want: undefined },
    { name: 'empty authzid', text: 'n,a=,n=u,r=abc', want: undefined },
    { name: 'comma in nonce place', text: 'n,,n=u,r=', want: undefined },
    { name: 'unknown flag', text: 'x,,n=u,r=abc', want: undefined },
    { name: 'control character', text: 'n,,n=u\u0001,r=abc', want: undefined },
  ]
  for (const c of cases)
    it(`client-first: ${c.name}`, () => {
      const got = parseClientFirst(buf(c.text))
      if (c.want === undefined) assert.equal(got, undefined)
      else for (const [k, v] of Object.entries(c.want as object)) assert.deepEqual(got?.[k as keyof typeof got], v, k)
    })

  it('client-final: proof last and 32 bytes, canonical base64', () => {
    const p = Buffer.alloc(32, 7).toString('base64')
    assert.ok(parseClientFinal(buf(`c=biws,r=abc,p=${p}`)))
    assert.ok(parseClientFinal(buf(`c=biws,r=abc,x=y,p=${p}`)))
    assert.equal(parseClientFinal(buf(`c=biws,r=abc,p=${Buffer.alloc(20).toString('base64')}`)), undefined)
    assert.equal(parseClientFinal(buf(`c=biws,r=abc,p=${p},x=1`)), undefined)
    assert.equal(parseClientFinal(buf(`c=b!ws,r=abc,p=${p}`)), undefined)
    assert.equal(parseClientFinal(buf(`r=abc,c=biws,p=${p}`)), undefined)
  })

  it('saslPrep maps non-ASCII spaces and soft hyphens, then NFKC', () => {
    assert.equal(saslPrep('I\u00adX'), 'IX')
    assert.equal(saslPrep('a\u00a0b'), 'a b')
    assert.equal(saslPrep('\u2168'), 'IX')
    assert.equal(saslPrep('pa\u0308ss'), 'päss')
    assert.equal(saslPrep('plain ascii'), 'plain ascii')
  })
})
