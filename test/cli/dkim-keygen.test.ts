/**
 * `qtsmtpd dkim-keygen`: the key lands where the dkim plugin reads it, and the record printed is
 * the one a verifier needs: a message signed with the new key verifies against it.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { dkimVerify } from 'mailauth/lib/dkim/verify.js'
import { relaxedBodyHash } from '../../src/mailauth/dkim/canonical.ts'
import { readKeyring } from '../../src/mailauth/dkim/keys.ts'
import { dkimSignature } from '../../src/mailauth/dkim/sign.ts'
import { HeaderBlock } from '../../src/message/headers.ts'
import { bin } from '../daemon/harness.ts'

const run = promisify(execFile)
const keygen = (...args: string[]) =>
  run(bin, ['dkim-keygen', ...args]).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  )

describe('qtsmtpd dkim-keygen', () => {
  let dir: string
  after(() => rm(dir, { recursive: true, force: true }))

  for (const type of ['rsa', 'ed25519'] as const) {
    it(`${type}: writes the key, prints the record, and mail signed with it verifies against the record`, async () => {
      dir ??= await mkdtemp(join(tmpdir(), 'qtsmtpd-keygen-'))
      const { code, out } = await keygen(
        '--config',
        dir,
        ...(type === 'ed25519' ? ['--ed25519'] : []),
        'example.org',
        type,
      )
      assert.equal(code, 0)
      const keyDir = join(dir, 'dkim/example.org', type === 'ed25519' ? 'ed25519' : '')
      assert.equal((await stat(join(keyDir, 'private'))).mode & 0o777, 0o600)
      const line = out.split('\n').find((l) => l.startsWith(`${type}._domainkey.example.org. IN TXT `)) ?? ''
      const record = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('')
      assert.match(record, new RegExp(`^v=DKIM1; k=${type}; p=`))

      const key = (await readKeyring(join(dir, 'dkim'))).keysFor('example.org').find((k) => k.selector === type)
      assert.ok(key)
      const { headers, body } = HeaderBlock.parse(Buffer.from('From: a@example.org\r\nSubject: hi\r\n\r\nHello\r\n'))
      headers.prepend('DKIM-Signature', dkimSignature(headers.fields, await relaxedBodyHash([body]), key))
      const message = Buffer.concat([headers.toBuffer(), Buffer.from('\r\n'), body])
      const resolver = async (name: string) => {
        if (name === `${type}._domainkey.example.org`) return [[record]]
        throw Object.assign(new Error('no such name'), { code: 'ENOTFOUND' })
      }
      const verified = await dkimVerify(message, { resolver })
      assert.deepEqual(
        verified.results.map((r) => r.status.result),
        ['pass'],
      )
    })
  }

  it('bad arguments exit 1 with the usage; an existing key is not replaced', async () => {
    const none = await keygen('example.org')
    assert.equal(none.code, 1)
    assert.match(none.err, /^qtsmtpd: dkim-keygen: expected DOMAIN and SELECTOR\nUsage: qtsmtpd dkim-keygen/)
    dir ??= await mkdtemp(join(tmpdir(), 'qtsmtpd-keygen-'))
    await keygen('--config', dir, 'example.net', 's1')
    const again = await keygen('--config', dir, 'example.net', 's2')
    assert.equal(again.code, 1)
    assert.match(again.err, /^qtsmtpd: dkim-keygen: .*example\.net\/private exists: remove it first/)
    const arcEd = await keygen('--config', dir, '--arc', '--ed25519', 'example.net', 's3')
    assert.match(arcEd.err, /ARC seals with RSA keys only/)
  })
})
