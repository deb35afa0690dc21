/**
 * milter with Debian's spamass-milter (and a private spamd with local rules only) through real
 * SMTP sessions: GTUBE is refused at end of message (`-r 5`); redirected to a spam trap (`-b`:
 * the milter removes the recipients and adds the trap, SMFIR_DELRCPT and SMFIR_ADDRCPT) with
 * SpamAssassin's X-Spam-* fields, folded as spamd folds them; clean mail is stored with
 * X-Spam-Status: No. spamass-milter gone: our failure policy, here default_action accept.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type SpamassMilter, startSpamassMilter } from '../../../test/peers/spamass-milter.ts'
import { GTUBE } from '../../../test/peers/spamd.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import { sendMailSession } from '../test-support.ts'
import milter from './index.ts'

const message = (body: string) =>
  `From: <s@sender.test>\r\nTo: <u@local.test>\r\nSubject: test\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <sa-1@sender.test>\r\n\r\n${body}\r\n`
const send = (srv: TestServer, body: string, to = ['u@local.test', 'v@local.test']) =>
  sendMailSession(srv, 's@sender.test', to, message(body))

async function withSpamass(args: string[], run: (srv: TestServer, sa: SpamassMilter) => Promise<void>, options = {}) {
  const sa = await startSpamassMilter(args)
  try {
    await withTestServer(
      { plugins: [milter({ name: 'spamassassin', socket: sa.socket, ...options }), acceptAllRecipients()] },
      (srv) => run(srv, sa),
    )
  } finally {
    await sa.close()
  }
}

describe('milter with spamass-milter', () => {
  it('-r 5: GTUBE is refused at end of message; clean mail gets X-Spam-Status: No', async () => {
    await withSpamass(['-r', '5'], async (srv) => {
      const refused = await send(srv, GTUBE)
      assert.match(refused.raw, /^5\d\d 5\.7\.1 Blocked by SpamAssassin\r\n$/)
      assert.equal((await send(srv, 'Hello, a normal message.')).code, 250)
      assert.equal(srv.queued.length, 1)
      assert.match(
        srv.queued[0]?.text ?? '',
        /\r\nX-Spam-Status: No, score=-?\d+\.\d required=5\.0 tests=[\s\S]*?\r\nX-Spam-Checker-Version: SpamAssassin 4[^\r\n]*\r\n\r\nHello/,
      )
    })
  })

  it('-b trap: GTUBE goes to the trap only (its recipients removed, the trap added), flagged', async () => {
    await withSpamass(['-b', 'trap@local.test'], async (srv) => {
      assert.equal((await send(srv, GTUBE)).code, 250)
      assert.equal((await send(srv, 'Hello, a normal message.')).code, 250)
      const [spam, ham] = srv.queued
      assert.deepEqual(spam?.to, ['trap@local.test'])
      assert.deepEqual(ham?.to, ['u@local.test', 'v@local.test'])
      assert.match(
        spam?.text ?? '',
        /\r\nX-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=\d+\.\d required=5\.0 tests=[\s\S]*?GTUBE/,
      )
      assert.match(
        spam?.text ?? '',
        /\r\nX-Spam-Report: [\s\S]*\r\n\t\* 1000 GTUBE BODY: Generic Test for Unsolicited Bulk Email\r\n/,
      )
    })
  })

  it('spamass-milter stopped, default_action accept: mail flows unfiltered, the failure is logged', async () => {
    await withSpamass(
      [],
      async (srv, sa) => {
        await sa.stop()
        assert.equal((await send(srv, GTUBE)).code, 250)
        assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Spam/)
        assert.ok(
          srv.logs.some((l) =>
            /milter spamassassin: connect to milter spamassassin .*default_action accept/.test(l.message),
          ),
        )
      },
      { default_action: 'accept' },
    )
  })
})
