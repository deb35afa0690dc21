import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openSession, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import bogusBounce from './bogus-bounce.ts'

const MSG = 'Subject: Delivery failure\r\n\r\nbody\r\n'

describe('bogus_bounce', () => {
  it('deny: a bounce to two recipients, or with a Return-Path, is refused; a good bounce and normal mail pass', () =>
    withTestServer({ plugins: [bogusBounce({ action: 'deny' }), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      assert.equal(
        (await sendMail(c, '', ['a@local.test', 'b@local.test'], MSG)).raw,
        '554 5.7.1 fail, this bounce message does not have 1 recipient\r\n',
      )
      assert.equal(
        (await sendMail(c, '', ['a@local.test'], `Return-Path: <x@example.org>\r\n${MSG}`)).raw,
        '554 5.7.1 a bounce return path must be empty (RFC 3834)\r\n',
      )
      assert.match((await sendMail(c, '', ['a@local.test'], `Return-Path: <>\r\n${MSG}`)).raw, /^250 /)
      assert.match((await sendMail(c, 's@example.org', ['a@local.test', 'b@local.test'], MSG)).raw, /^250 /)
      await c.quit()
    }))

  it('from a plugins file: the bare action (denysoft: 451), and log by default', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bogus-bounce-'))
    try {
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      for (const [line, want] of [
        ['bogus_bounce denysoft', '451 4.7.1 fail, this bounce message does not have 1 recipient\r\n'],
        ['bogus_bounce', /^250 /],
        ['bogus_bounce log', /^250 /],
        ['bogus_bounce reject 1 reject_type temp', '451 4.7.1 fail, this bounce message does not have 1 recipient\r\n'],
      ] as const) {
        await writeFile(join(dir, 'plugins'), `${line}\nrcpt_ok\n`)
        await withTestServer({ configDir: dir }, async (srv) => {
          const c = await openSession(srv)
          const r = (await sendMail(c, '', ['a@local.test', 'b@local.test'], MSG)).raw
          if (typeof want === 'string') assert.equal(r, want, line)
          else assert.match(r, want, line)
          await c.quit()
        })
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
