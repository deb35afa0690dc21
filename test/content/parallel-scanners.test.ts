/**
 * The spam and virus scans of one message run side by side (both plugins declare `concurrent`),
 * against the real daemons: while clamd is stopped with SIGSTOP, spamd has already scored the
 * message, which it could not have done if the plugins ran one after the other. The message,
 * the reply and the summary line are what they would be in turn.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import spamassassin from '../../src/plugins/content/spamassassin.ts'
import { acceptRcpt, plainMessage, sendMail, summaryLine } from '../../src/plugins/test-support.ts'
import clamdscan from '../../src/plugins/virus/clamdscan.ts'
import { withTestServer } from '../../src/testing/index.ts'
import { type Clamd, EICAR, EICAR_NAME, startClamd } from '../peers/clamd.ts'
import { GTUBE, type Spamd, startSpamd } from '../peers/spamd.ts'

describe('spamassassin and virus/clamdscan scan the same message at the same time', () => {
  let spamd: Spamd
  let clamd: Clamd
  before(async () => {
    ;[spamd, clamd] = await Promise.all([startSpamd(), startClamd()])
  })
  after(() => Promise.all([spamd.close(), clamd.close()]))

  const plugins = () => [
    acceptRcpt(),
    clamdscan({ clamd_socket: clamd.socket }),
    spamassassin({ spamd_socket: spamd.socket, reject: '12' }),
  ]

  it('spamd scores the message while clamd has not answered yet; the summary shows both with their times', async () => {
    const spamdResults = async () => ((await spamd.log()).match(/ result: /g) ?? []).length
    await withTestServer({ plugins: plugins() }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const before = await spamdResults()
      clamd.pause()
      let reply: Promise<{ code: number; raw: string }>
      try {
        reply = sendMail(c, 'a@sender.test', ['b@local.test'], plainMessage('Minutes of Tuesday attached.\r\n'))
        for (let i = 0; i < 400 && (await spamdResults()) === before; i++) await new Promise((r) => setTimeout(r, 25))
        assert.equal(await spamdResults(), before + 1, 'spamd answered while clamd was stopped')
      } finally {
        clamd.resume()
      }
      assert.equal((await reply).code, 250)
      await c.quit()
      const text = srv.queued[0]?.text ?? ''
      // Configuration order: clamdscan's fields were prepended first, spamassassin's above them.
      assert.match(
        text,
        /^X-Spam-Checker-Version: [^\r\n]*\r\n(?:[^\r\n]*\r\n)*?X-Virus-Checked: by ClamAV [^\r\n]+\r\nX-Virus-Found: No\r\nReceived: /,
      )
      assert.match(
        await summaryLine(srv),
        /results=\[virus\/clamdscan:pass\(clean, \d+ ms\) content\/spamassassin:pass\(Ham, [^)]*, \d+ ms\)\] plugin_time=\[[^\]]*virus\/clamdscan:\d+\.\dms content\/spamassassin:\d+\.\dms /,
      )
    })
  })

  it('a message with a virus and GTUBE gets the refusal of the plugin listed first', async () => {
    await withTestServer({ plugins: plugins() }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const r = await sendMail(c, 'a@sender.test', ['b@local.test'], plainMessage(`${GTUBE}\r\n${EICAR}\r\n`))
      assert.equal(r.raw, `554 5.7.1 Virus found: ${EICAR_NAME}\r\n`)
      await c.quit()
      assert.match(await summaryLine(srv), /results=\[virus\/clamdscan:fail\(virus [^)]*\)\] /)
    })
  })
})
