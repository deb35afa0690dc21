/**
 * Queue backends receive the message and the envelope as plugins edited them, not as the client
 * sent them: queue/maildir (exact stored bytes) and queue/smtp-forward to a real private Postfix
 * (test/peers/postfix.ts), also when the session to Postfix was opened at RCPT time with the
 * client's sender (check_rcpt). The plugin stands in for a milter or a scanner in dataPost.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { definePlugin, type PluginChoice } from '../../src/host/define-plugin.ts'
import { pass } from '../../src/host/verdict.ts'
import maildir from '../../src/plugins/queue/maildir/index.ts'
import smtpForward from '../../src/plugins/queue/outbound/smtp-forward.ts'
import { receivedPattern, sendMailSession } from '../../src/plugins/test-support.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../src/testing/index.ts'
import { type Postfix, startPostfix } from '../peers/postfix.ts'

// Date and Message-ID present, so that Postfix adds none of its own.
const CONTENT =
  'Subject: hello\r\nFrom: <sender@src.test>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n' +
  'Message-ID: <edited@src.test>\r\n\r\noriginal body\r\n'
/** What every queue must receive after the Received field (LF line ends, as both stores write). */
const EDITED_TAIL =
  'Subject: [filtered] hello\nFrom: <sender@src.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n' +
  'Message-ID: <edited@src.test>\nX-Filter: ran\n\nnew body\n.leading dot\n'

/** A content filter in dataPost: edits headers, replaces the body, and edits the envelope. */
const filter = (envelope: { remove?: string; add?: string; sender?: string }) =>
  definePlugin({
    name: 'test/content-filter',
    options: {},
    setup: () => ({
      hooks: {
        dataPost: async (ctx, msg) => {
          msg.headers.change('Subject', 0, '[filtered] hello')
          msg.headers.add('X-Filter', 'ran')
          await msg.replaceBody('new body\n.leading dot\n')
          if (envelope.remove !== undefined) ctx.transaction.removeRecipient(envelope.remove)
          if (envelope.add !== undefined) ctx.transaction.addRecipient(envelope.add)
          if (envelope.sender !== undefined) ctx.transaction.setSender(envelope.sender)
          return pass()
        },
      },
    }),
  })()

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const queuedId = (raw: string): string => /^250 2\.0\.0 Queued as (\w+)/.exec(raw)?.[1] ?? assert.fail(raw)
const serve = (plugins: PluginChoice[], run: (srv: TestServer) => Promise<void>) =>
  withTestServer({ plugins: [acceptAllRecipients(), ...plugins], memoryQueue: false }, run)

describe('queue/maildir stores the edited message for the edited recipients', () => {
  let base: string
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'qtsmtpd-edited-maildir-'))
  })
  after(() => rm(base, { recursive: true, force: true }))

  it('one file per remaining or added recipient, exact bytes, the new sender as Return-Path', async () => {
    const plugins = [
      filter({ remove: 'gone@x.test', add: 'added@y.test', sender: 'bounce@src.test' }),
      maildir({ path: base, subdir: '%d/%l' }),
    ]
    await serve(plugins, async (srv) => {
      const r = await sendMailSession(srv, 'sender@src.test', ['a@x.test', 'gone@x.test'], CONTENT)
      const id = queuedId(r.raw)
      assert.deepEqual((await readdir(join(base, 'x.test'))).sort(), ['a'], 'nothing for the removed recipient')
      // The Received field names no single recipient: the client gave two.
      const received = receivedPattern({ helo: 'client.test', me: 'mx.test', id }).replaceAll('\\r\\n', '\\n')
      for (const [dir, rcpt] of [
        ['x.test/a', 'a@x.test'],
        ['y.test/added', 'added@y.test'],
      ] as const) {
        const files = await readdir(join(base, dir, 'new'))
        assert.equal(files.length, 1, dir)
        const stored = (await readFile(join(base, dir, 'new', files[0] as string))).toString('latin1')
        const want = `^Return-Path: <bounce@src\\.test>\\nDelivered-To: ${escapeRe(rcpt)}\\n${received}${escapeRe(EDITED_TAIL)}$`
        assert.match(stored, new RegExp(want))
      }
      assert.deepEqual(await readdir(srv.spoolDir), [], 'no spool file left, old body or new')
    })
  })
})

describe('queue/smtp-forward hands the edited message and envelope to Postfix', () => {
  let pf: Postfix
  before(async () => {
    // temp@dest.test gets 450 at RCPT: if it still reached Postfix, the whole message would be deferred.
    pf = await startPostfix({
      main: {
        myhostname: 'relay.test',
        smtpd_recipient_restrictions: 'check_recipient_access texthash:{conf}/access, permit_mynetworks, reject',
      },
      files: { access: 'temp@dest.test 450 4.2.0 try later\n' },
      smtpd: [{}],
      maildir: ['u1@dest.test', 'u2@dest.test', 'temp@dest.test'],
    })
  })
  after(() => pf?.stop())

  /**
   * The stored message from our Received field on, with the envelope Postfix recorded: the
   * message from `sender`, found by its Return-Path (file names do not give the order of arrival).
   */
  const delivered = async (user: string, count: number, sender: string) => {
    const all = await pf.mailbox(user, count)
    const m = all.find((x) => x.startsWith(`Return-Path: <${sender}>\n`)) ?? ''
    return {
      returnPath: /^Return-Path: (.*)\n/.exec(m)?.[1],
      tail: m
        .slice(m.search(/^Received: from client\.test .*\n(?:\t.*\n)*/m))
        .replace(/^Received: .*\n(?:\t.*\n)*/, ''),
    }
  }

  it('a removed recipient is not sent, an added one is, with the new body and sender', async () => {
    const plugins = [
      filter({ remove: 'temp@dest.test', add: 'u2@dest.test', sender: 'bounce@src.test' }),
      smtpForward({ host: '127.0.0.1', port: pf.port, tls: 'none' }),
    ]
    await serve(plugins, async (srv) => {
      const r = await sendMailSession(srv, 'sender@src.test', ['u1@dest.test', 'temp@dest.test'], CONTENT)
      assert.match(r.raw, /^250 2\.0\.0 Queued as \w+ \(next hop: Ok: queued as \w+\)/)
    })
    for (const user of ['u1', 'u2']) {
      const got = await delivered(user, 1, 'bounce@src.test')
      assert.equal(got.returnPath, '<bounce@src.test>', user)
      assert.equal(got.tail, EDITED_TAIL, user)
    }
    assert.deepEqual(pf.messages('temp'), [])
  })

  it('check_rcpt: the session opened at RCPT with the old sender is not used for the new one', async () => {
    const before = pf.messages('u1').length
    const plugins: PluginChoice[] = [
      smtpForward({ host: '127.0.0.1', port: pf.port, tls: 'none', check_rcpt: true }),
      acceptAllRecipients(),
      filter({ sender: 'changed@src.test' }),
    ]
    await withTestServer({ plugins, memoryQueue: false }, async (srv) => {
      const r = await sendMailSession(srv, 'sender@src.test', ['u1@dest.test'], CONTENT)
      assert.equal(/^\d+/.exec(r.raw)?.[0], '250', r.raw)
    })
    const got = await delivered('u1', before + 1, 'changed@src.test')
    assert.equal(got.returnPath, '<changed@src.test>')
    assert.equal(got.tail, EDITED_TAIL)
  })
})
