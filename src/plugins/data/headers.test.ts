import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMail } from '../test-support.ts'
import headers from './headers.ts'

const rfcDate = (daysFromNow: number) =>
  new Date(Date.now() + daysFromNow * 86_400_000).toUTCString().replace('GMT', '+0000')
const message = (fields: string[]) => `${fields.join('\r\n')}\r\n\r\nbody\r\n`

describe('headers', () => {
  it('refuses missing required and repeated singular fields, and Dates outside the window', () =>
    withTestServer(
      { plugins: [headers({ require: ['From', 'Date'], past: 5, future: 1 }), acceptRcpt()] },
      async (srv) => {
        const c = await openSession(srv)
        const send = async (fields: string[]) =>
          (await sendMail(c, 's@example.org', ['u@local.test'], message(fields))).raw
        const from = 'From: a@example.org'
        const date = `Date: ${rfcDate(0)}`
        assert.equal(await send([date, 'Subject: x']), '554 5.6.0 We require a valid From header\r\n')
        assert.equal(await send(['From:  ', date]), '554 5.6.0 We require a valid From header\r\n')
        assert.equal(
          await send([from, date, 'Subject: one', 'subject: two', 'To: a@b.example', 'To: c@d.example']),
          '554 5.6.0 Only one To header allowed. See RFC 5322, Section 3.6; Only one Subject header allowed. See RFC 5322, Section 3.6\r\n',
        )
        assert.equal(await send([from]), '554 5.6.0 We require a valid Date header\r\n')
        assert.equal(
          await send([from, `Date: ${rfcDate(-10)}`]),
          '554 5.6.0 The Date header is too far in the past\r\n',
        )
        assert.equal(
          await send([from, `Date: ${rfcDate(3)}`]),
          '554 5.6.0 The Date header is too far in the future\r\n',
        )
        assert.match(await send([from, `Date: ${rfcDate(-4)}`, 'Subject: fine']), /^250 /)
        // A Date nobody can read is not judged (qpsmtpd: "skip, date not parseable").
        assert.match(await send([from, 'Date: the day after tomorrow']), /^250 /)
        await c.quit()
        assert.equal(srv.queued.length, 2)
      },
    ))

  it('defaults: From required, no Date window; reject_type temp answers 451; reject 0 only logs', async () => {
    await withTestServer({ plugins: [headers(), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      assert.match(
        (
          await sendMail(
            c,
            's@example.org',
            ['u@local.test'],
            message(['From: a@example.org', `Date: ${rfcDate(-400)}`]),
          )
        ).raw,
        /^250 /,
      )
      await c.quit()
    })
    await withTestServer({ plugins: [headers({ reject_type: 'temp' }), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      assert.equal(
        (await sendMail(c, 's@example.org', ['u@local.test'], message(['Subject: x']))).raw,
        '451 4.6.0 We require a valid From header\r\n',
      )
      await c.quit()
    })
    await withTestServer({ plugins: [headers({ reject: '0' }), acceptRcpt()] }, async (srv) => {
      const c = await openSession(srv)
      assert.match((await sendMail(c, 's@example.org', ['u@local.test'], message(['Subject: x']))).raw, /^250 /)
      await c.quit()
    })
  })

  it('loads from a plugins file with qpsmtpd arguments; a bad one stops the start at its line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'headers-'))
    try {
      await writeFile(join(dir, 'plugins'), 'headers require From,Subject past 5 reject_type temp\nrcpt_ok\n')
      await writeFile(join(dir, 'rcpthosts'), 'local.test\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const c = await openSession(srv)
        const r = await sendMail(c, 's@example.org', ['u@local.test'], message(['From: a@example.org']))
        assert.equal(r.raw, '451 4.6.0 We require a valid Subject header\r\n')
        await c.quit()
      })
      await writeFile(join(dir, 'plugins'), 'headers past soon\nrcpt_ok\n')
      await assert.rejects(startTestServer({ configDir: dir }), {
        message: `${join(dir, 'plugins')}:1: plugin headers: option "past": expected a number, got "soon"`,
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
