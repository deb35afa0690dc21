/**
 * DKIM vectors from mailauth and dkimpy (test/conformance/dkim/, with their licences): signed
 * messages, each verified end to end through verifyDkim (what the dkim plugin runs) with its
 * keys answered through our DNS layer's interface (scriptedDns). Each vector is checked as
 * signed (its expected results) and twice changed (body, From: every signature fails).
 * Messages are given CRLF line endings, as SMTP delivers them.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { scriptedDns } from '../../src/dns/scripted.ts'
import { verifyDkim } from '../../src/mailauth/dkim/verify.ts'

const rfc8463Keys = {
  'brisbane._domainkey.football.example.com': 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=',
  // RFC 6376 appendix C's 1024-bit key (dkimpy's test.txt, mailauth's dns.json).
  'test._domainkey.football.example.com':
    'v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB',
}

interface Vector {
  readonly file: string
  readonly keys: Readonly<Record<string, string>>
  /** Each signature's result, in header order. */
  readonly want: readonly string[]
  /** Where the body starts to differ when changed (a word of the body). */
  readonly bodyWord: string
}

const vectors: readonly Vector[] = [
  { file: 'mailauth-rfc8463.eml', keys: rfc8463Keys, want: ['pass', 'pass'], bodyWord: 'hungry' },
  { file: 'dkimpy-rfc6376.signed.msg', keys: rfc8463Keys, want: ['pass', 'pass'], bodyWord: 'hungry' },
  { file: 'dkimpy-rfc6376.signed.rsa.msg', keys: rfc8463Keys, want: ['pass'], bodyWord: 'hungry' },
  {
    file: 'dkimpy-test2.message',
    keys: {
      '20120113._domainkey.gmail.com':
        'k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1Kd87/UeJjenpabgbFwh+eBCsSTrqmwIYYvywlbhbqoo2DymndFkbjOVIPIldNs/m40KF+yzMn1skyoxcTUGCQs8g3FgD2Ap3ZB5DekAo5wMmk4wimDO+U8QzI3SD07y2+07wlNWwIt8svnxgdxGkVbbhzY8i+RQ9DpSVpPbF7ykQxtKXkv/ahW3KjViiAH+ghvvIhkx4xYSIc9oSwVmAl5OctMEeWUwg8Istjqz8BZeTWbf41fbNhte7Y+YqZOwq1Sd0DbvYAD9NOZK9vlfuac0598HY+vtSBczUiKERHv1yRbcaQtZFh5wtiRrN04BLUTD21MycBX5jYchHjPY/wIDAQAB',
    },
    want: ['pass'],
    bodyWord: 'DKIM',
  },
  {
    file: 'dkimpy-ed25519test2.msg',
    keys: { 'sed._domainkey.test.ex': 'v=DKIM1; k=ed25519; p=sPs07Vu29FpHT/80UXUcYHFOHifD4o2ZlP2+XUh9g6E=' },
    want: ['pass'],
    bodyWord: 'content',
  },
]

const read = (file: string) => readFileSync(join(import.meta.dirname, 'dkim', file), 'latin1').replace(/\r?\n/g, '\r\n')

async function results(text: string, keys: Readonly<Record<string, string>>): Promise<string[]> {
  const dns = scriptedDns(Object.fromEntries(Object.entries(keys).map(([name, txt]) => [name, { TXT: [txt] }])))
  const v = await verifyDkim(Readable.from([Buffer.from(text, 'latin1')]), {
    dns,
    maxSignatures: 5,
    maxSignedFields: 500,
  })
  return v.signatures.map((s) => s.result)
}

function changedBody(text: string, word: string): string {
  const at = text.indexOf('\r\n\r\n')
  return text.slice(0, at) + text.slice(at).replace(word, `${word}!`)
}

describe('DKIM vectors (mailauth, dkimpy)', () => {
  it('each verifies as published, and fails when its body or From is changed', async () => {
    const failed: string[] = []
    let total = 0
    for (const v of vectors) {
      const text = read(v.file)
      const cases: [string, string, readonly string[]][] = [
        ['as signed', text, v.want],
        ['body changed', changedBody(text, v.bodyWord), v.want.map(() => 'fail')],
        ['From changed', text.replace(/^From: /m, 'From: Mallory '), v.want.map(() => 'fail')],
      ]
      for (const [name, content, want] of cases) {
        total++
        const got = await results(content, v.keys)
        if (JSON.stringify(got) !== JSON.stringify(want)) failed.push(`${v.file}, ${name}: want ${want}, got ${got}`)
      }
    }
    console.log(`dkim vectors (mailauth, dkimpy): ${total - failed.length}/${total} cases pass`)
    assert.deepEqual(failed, [])
  })
})
