/**
 * milter with Debian's rspamd in milter mode (a proxy worker with `milter = yes`, scanning
 * itself, offline) through real SMTP sessions: GTUBE is refused with rspamd's reply; the
 * rewrite_subject action changes Subject (SMFIR_CHGHEADER) and milter_headers adds its fields,
 * X-Rspamd-Queue-Id being our queue id (the `i` macro); rspamd stopped is our failure policy.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type Rspamd, startRspamd } from '../../../test/peers/rspamd.ts'
import { GTUBE } from '../../../test/peers/spamd.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import { sendMailSession } from '../test-support.ts'
import milter from './index.ts'

const message = (body: string) =>
  `From: <s@sender.test>\r\nTo: <u@local.test>\r\nSubject: hello\r\nDate: Fri, 4 Dec 2026 10:00:00 +0000\r\nMessage-ID: <r1@sender.test>\r\n\r\n${body}\r\n`
const send = (srv: TestServer, body: string) => sendMailSession(srv, 's@sender.test', ['u@local.test'], message(body))

describe('milter with rspamd in milter mode', () => {
  let rspamd: Rspamd
  before(async () => {
    rspamd = await startRspamd({
      milter: true,
      localFiles: {
        // Every message scores at least -100: the rewrite_subject action for all but GTUBE.
        'actions.conf': 'rewrite_subject = -100;\nsubject = "[SPAM] %s";\n',
        'milter_headers.conf':
          'use = ["x-spamd-result", "x-spam-status", "x-rspamd-queue-id"];\nskip_local = false;\nskip_authenticated = false;\n',
      },
    })
  })
  after(() => rspamd.close())

  const serve = (run: (srv: TestServer) => Promise<void>, options: Record<string, string> = {}) =>
    withTestServer(
      {
        plugins: [milter({ name: 'rspamd', socket: rspamd.milterSocket as string, ...options }), acceptAllRecipients()],
      },
      run,
    )

  it("GTUBE is refused with rspamd's reply", async () => {
    await serve(async (srv) => {
      assert.equal((await send(srv, GTUBE)).raw, '554 5.7.1 Gtube pattern\r\n')
      assert.equal(srv.queued.length, 0)
    })
  })

  it('the Subject rewritten and milter_headers fields added, with our queue id from the i macro', async () => {
    await serve(async (srv) => {
      assert.equal((await send(srv, 'A normal message.')).code, 250)
      const q = srv.queued[0]
      const text = q?.text ?? ''
      // rspamd adds its fields in no fixed order.
      assert.match(text, /\r\nSubject: \[SPAM\] hello\r\n/)
      assert.match(text, /\r\nX-Spam-Status: Yes, score=-?\d+\.\d\d\r\n/)
      assert.match(text, /\r\nX-Spamd-Result: default: False \[-?\d+\.\d\d \/ 15\.00\];\r\n\t[A-Z_]+\(/)
      assert.ok(text.includes(`\r\nX-Rspamd-Queue-Id: ${q?.id}\r\n`))
      assert.ok(text.endsWith('\r\n\r\nA normal message.\r\n'))
    })
  })

  it('rspamd stopped: default_action reject answers 554 5.5.0 at the greeting', async () => {
    await rspamd.stop()
    try {
      await serve(
        async (srv) => {
          const c = await srv.connect()
          await c.expect('554 5.5.0 Service unavailable')
        },
        { default_action: 'reject' },
      )
    } finally {
      await rspamd.start()
    }
  })
})
