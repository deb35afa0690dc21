/**
 * DMARC policy cases, end to end through checkDmarc (what the dmarc plugin runs) with each
 * case's zone answered by scriptedDns through our DNS layer's interface: the policy-level cases
 * of mailauth's DMARC suites (RFC 9989 discovery, the tree walk, psd, np/sp, t=y, record
 * syntax) and RFC 9989 appendix B's examples, written here as data. Prints the pass count.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ScriptedName, scriptedDns } from '../../src/dns/scripted.ts'
import { checkDmarc, type DmarcCheck } from '../../src/mailauth/dmarc.ts'

interface DmarcCase {
  readonly name: string
  readonly zone: Readonly<Record<string, ScriptedName>>
  readonly from: string | readonly string[]
  readonly spf?: readonly string[]
  readonly dkim?: readonly string[]
  readonly want: Partial<Pick<DmarcCheck, 'result' | 'policy' | 'disposition'>> & { readonly orgDomain?: string }
}

const reject = { TXT: ['v=DMARC1; p=reject'] }

const cases: readonly DmarcCase[] = [
  {
    name: 'identical domains pass strict DKIM alignment',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject; adkim=s'] } },
    from: 'a@example.com',
    dkim: ['example.com'],
    want: { result: 'pass', policy: 'reject' },
  },
  {
    name: 'relaxed alignment through the organisational domain record',
    zone: { '_dmarc.example.com': reject, 'news.example.com': { A: ['192.0.2.1'] } },
    from: 'a@news.example.com',
    dkim: ['example.com'],
    want: { result: 'pass', orgDomain: 'example.com' },
  },
  { name: 'no record: none', zone: {}, from: 'a@example.com', want: { result: 'none' } },
  {
    name: 'two DMARC records at the author domain are discarded (§4.10 step 2)',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject', 'v=DMARC1; p=none'] } },
    from: 'a@example.com',
    want: { result: 'none' },
  },
  {
    name: 'non-DMARC TXT records at the author domain: the walk goes on to the org record',
    zone: {
      '_dmarc.sub.example.com': { TXT: ['some other text'] },
      'sub.example.com': { A: ['192.0.2.1'] },
      '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject; sp=quarantine'] },
    },
    from: 'a@sub.example.com',
    want: { result: 'fail', policy: 'quarantine' },
  },
  {
    name: 'a record split into character-strings is joined',
    zone: { '_dmarc.example.com': { TXT: [['v=DMARC1; ', 'p=reject']] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'reject' },
  },
  {
    name: 'pct does not change the result (historic in RFC 9989 §A.6)',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject; pct=0'] } },
    from: 'a@example.com',
    dkim: ['example.com'],
    want: { result: 'pass' },
  },
  {
    name: 'B.4.2: a deep author name has example.com as its organisational domain',
    zone: { '_dmarc.example.com': reject, 'a.b.c.d.e.f.g.h.example.com': { A: ['192.0.2.1'] } },
    from: 'x@a.b.c.d.e.f.g.h.example.com',
    dkim: ['example.com'],
    want: { result: 'pass', orgDomain: 'example.com' },
  },
  {
    name: 'psd=n at an intermediate label makes it the organisational domain',
    zone: {
      '_dmarc.dept.example.com': { TXT: ['v=DMARC1; p=reject; psd=n'] },
      '_dmarc.example.com': reject,
      'x.dept.example.com': { A: ['192.0.2.1'] },
    },
    from: 'a@x.dept.example.com',
    dkim: ['example.com'],
    want: { result: 'fail', orgDomain: 'dept.example.com' },
  },
  {
    name: 'np applies to a subdomain that does not exist',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=none; sp=quarantine; np=reject'] } },
    from: 'a@ghost.example.com',
    want: { result: 'fail', policy: 'reject', disposition: 'reject' },
  },
  {
    name: 'sp, not np, applies to a subdomain that exists',
    zone: {
      '_dmarc.example.com': { TXT: ['v=DMARC1; p=none; sp=quarantine; np=reject'] },
      'real.example.com': { A: ['192.0.2.1'] },
    },
    from: 'a@real.example.com',
    want: { result: 'fail', policy: 'quarantine' },
  },
  {
    name: 'a subdomain with any record (NODATA for A) exists',
    zone: {
      '_dmarc.example.com': { TXT: ['v=DMARC1; p=none; sp=quarantine; np=reject'] },
      'mx-only.example.com': { MX: [{ exchange: 'mx.example.com', priority: 10 }] },
    },
    from: 'a@mx-only.example.com',
    want: { result: 'fail', policy: 'quarantine' },
  },
  {
    name: 'B.4.3: psd=y ends the walk; the organisational domain is one label below it',
    zone: { '_dmarc.example': { TXT: ['v=DMARC1; p=reject; psd=y'] }, 'foo.bar.example': { A: ['192.0.2.1'] } },
    from: 'a@foo.bar.example',
    dkim: ['bar.example'],
    want: { result: 'pass', orgDomain: 'bar.example' },
  },
  {
    name: 't=y: reject becomes quarantine',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject; t=y'] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'quarantine' },
  },
  {
    name: 't=y: quarantine becomes none',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=quarantine; t=y'] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'none', disposition: 'none' },
  },
  {
    name: 'no p but a valid rua: processed as p=none',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; rua=mailto:d@example.com'] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'none' },
  },
  {
    name: 'no p and no rua: no DMARC processing',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; adkim=s'] } },
    from: 'a@example.com',
    want: { result: 'none' },
  },
  {
    name: 'the version value is case-sensitive (v=dmarc1 is no record)',
    zone: { '_dmarc.example.com': { TXT: ['v=dmarc1; p=reject'] } },
    from: 'a@example.com',
    want: { result: 'none' },
  },
  {
    name: 'v=DMARC1x is no record',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1x; p=reject'] } },
    from: 'a@example.com',
    want: { result: 'none' },
  },
  {
    name: 'white space around "=" in the version tag',
    zone: { '_dmarc.example.com': { TXT: ['v = DMARC1; p=reject'] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'reject' },
  },
  {
    name: 'policy values are case-insensitive (p=Reject)',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=Reject'] } },
    from: 'a@example.com',
    want: { result: 'fail', policy: 'reject' },
  },
  {
    name: 'adkim=S is strict: a parent-domain signature does not align',
    zone: { '_dmarc.example.com': { TXT: ['v=DMARC1; p=reject; adkim=S'] }, 'sub.example.com': { A: ['192.0.2.1'] } },
    from: 'a@sub.example.com',
    dkim: ['example.com'],
    want: { result: 'fail' },
  },
  {
    name: 'an SPF pass of a sibling subdomain aligns (relaxed)',
    zone: { '_dmarc.example.com': reject },
    from: 'a@example.com',
    spf: ['bounces.example.com'],
    want: { result: 'pass' },
  },
  {
    name: 'a DNS failure at the author domain: temperror',
    zone: { '_dmarc.example.com': 'servfail' },
    from: 'a@example.com',
    want: { result: 'temperror' },
  },
  {
    name: 'two From fields: DMARC cannot be applied (RFC 9989 §5.3.1)',
    zone: { '_dmarc.example.com': reject },
    from: ['a@example.com', 'b@example.com'],
    want: { result: 'permerror' },
  },
  {
    name: 'one From field with two author domains: cannot be applied',
    zone: { '_dmarc.example.com': reject },
    from: 'a@example.com, b@example.net',
    want: { result: 'permerror' },
  },
  {
    name: 'several mailboxes of one domain are fine',
    zone: { '_dmarc.example.com': reject },
    from: 'a@example.com, "B" <b@example.com>',
    dkim: ['example.com'],
    want: { result: 'pass' },
  },
]

describe('DMARC policy cases (RFC 9989, mailauth and appendix B)', () => {
  it('every case gives the expected result', async () => {
    const failed: string[] = []
    for (const c of cases) {
      const r = await checkDmarc({
        dns: scriptedDns(c.zone),
        from: ([] as string[]).concat(c.from),
        spfPass: [...(c.spf ?? [])],
        dkimPass: (c.dkim ?? []).map((domain) => ({ domain })),
        random: () => 0,
      })
      const got = { result: r.result, policy: r.policy, disposition: r.disposition, orgDomain: r.record?.orgDomain }
      const mismatch = Object.entries(c.want).filter(([k, v]) => got[k as keyof typeof got] !== v)
      if (mismatch.length > 0) failed.push(`${c.name}: want ${JSON.stringify(c.want)}, got ${JSON.stringify(got)}`)
    }
    console.log(`dmarc policy cases: ${cases.length - failed.length}/${cases.length} cases pass`)
    assert.deepEqual(failed, [])
  })
})
