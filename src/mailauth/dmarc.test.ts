import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scriptedDns } from '../dns/scripted.ts'
import { checkDmarc, dmarcAuthResult } from './dmarc.ts'

const dns = scriptedDns({
  '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:d@example.org'] },
  'example.org': { A: ['192.0.2.1'] },
  'news.example.org': { A: ['192.0.2.2'] },
  '_dmarc.strict.example': { TXT: ['v=DMARC1; p=reject; aspf=s; adkim=s'] },
  '_dmarc.sampled.example': { TXT: ['v=DMARC1; p=reject; pct=50'] },
  '_dmarc.testing.example': { TXT: ['v=DMARC1; p=reject; t=y'] },
  '_dmarc.down.example': 'servfail',
  'down.example': 'servfail',
})

const check = (from: string | string[], spfPass: string[] = [], dkimPass: string[] = [], random = () => 0.99) =>
  checkDmarc({
    dns,
    from: ([] as string[]).concat(from),
    spfPass,
    dkimPass: dkimPass.map((domain) => ({ domain })),
    random,
  })

describe('checkDmarc', () => {
  it('p=reject, nothing aligned: fail with disposition reject', async () => {
    const r = await check('Alice <a@example.org>', ['elsewhere.example'])
    assert.equal(r.result, 'fail')
    assert.equal(r.disposition, 'reject')
    assert.equal(r.record?.rua, 'mailto:d@example.org')
    assert.deepEqual(dmarcAuthResult(r), {
      method: 'dmarc',
      result: 'fail',
      comment: 'p=REJECT sp=QUARANTINE dis=REJECT',
      properties: [
        { type: 'header', name: 'from', value: 'example.org' },
        { type: 'policy', name: 'dmarc', value: 'reject' },
      ],
    })
  })

  it('relaxed alignment: an SPF pass of a subdomain or a DKIM pass of the parent aligns', async () => {
    assert.equal((await check('a@example.org', ['bounce.example.org'])).result, 'pass')
    const viaDkim = await check('a@news.example.org', [], ['example.org'])
    assert.equal(viaDkim.result, 'pass')
    assert.equal(viaDkim.disposition, 'none')
    assert.equal(viaDkim.alignment.dkim, 'example.org')
  })

  it('strict alignment needs the exact domain', async () => {
    assert.equal((await check('a@strict.example', ['mail.strict.example'])).result, 'fail')
    assert.equal((await check('a@strict.example', ['strict.example'])).result, 'pass')
  })

  it('sp for an existing subdomain, np for one that does not exist (RFC 9989)', async () => {
    assert.equal((await check('a@news.example.org')).policy, 'quarantine')
    assert.equal((await check('a@ghost.example.org')).policy, 'reject')
  })

  it('pct: a failing message outside the sample gets the next weaker policy (RFC 7489 §6.6.4)', async () => {
    assert.equal((await check('a@sampled.example', [], [], () => 0.2)).disposition, 'reject')
    assert.equal((await check('a@sampled.example', [], [], () => 0.7)).disposition, 'quarantine')
    assert.equal((await check('a@testing.example')).disposition, 'quarantine')
  })

  it('no record: none; DNS failure: temperror; several From fields: permerror', async () => {
    assert.equal((await check('a@nowhere.example')).result, 'none')
    assert.equal((await check('a@down.example')).result, 'temperror')
    const two = await check(['a@example.org', 'b@example.org'])
    assert.equal(two.result, 'permerror')
    assert.equal(two.reason, 'multiple-from-fields')
    assert.equal((await check('undisclosed-recipients:;')).result, 'permerror')
  })
})
