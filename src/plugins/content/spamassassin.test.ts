import assert from 'node:assert/strict'
import { type AddressInfo, createServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { GTUBE, type Spamd, startSpamd } from '../../../test/peers/spamd.ts'
import { Karma } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMail, sendMailSession, summaryLine } from '../test-support.ts'
import spamassassin, { SpamAssassinScore, type SpamAssassinVerdict } from './spamassassin.ts'

const relayEveryone = definePlugin({
  name: 'test/relay-everyone',
  options: {},
  setup: () => ({
    hooks: {
      connect: (ctx) => {
        ctx.connection.relayClient = true
        return pass()
      },
    },
  }),
})

const HAM = plainMessage('Shall we meet for lunch at noon on Friday? The usual place.\r\n')
const SPAM = plainMessage(`${GTUBE}\r\n`)

/** Records what the plugin left for later plugins (score, karma). */
function observer() {
  const seen: { score: SpamAssassinVerdict | undefined; karma: number }[] = []
  const plugin = definePlugin({
    name: 'test/observe',
    options: {},
    setup: () => ({
      hooks: {
        dataPost: (ctx) => {
          seen.push({ score: ctx.get(SpamAssassinScore), karma: ctx.get(Karma) })
          return pass()
        },
      },
    }),
  })
  return { seen, plugin }
}

/** The stored message without the X-Spam-* fields on top and our Received field. */
const afterSpamFields = (text: string) => text.replace(/^(?:X-Spam-[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)+/, '')

describe('spamassassin against Debian spamd (--local, private config)', () => {
  let spamd: Spamd
  before(async () => {
    spamd = await startSpamd()
  })
  after(() => spamd.close())

  it('GTUBE is refused with reject 12; ham is scored, its X-Spam-* fields added on top, the rest byte for byte', async () => {
    const o = observer()
    await withTestServer(
      { plugins: [acceptRcpt(), spamassassin({ spamd_socket: `127.0.0.1:${spamd.port}`, reject: '12' }), o.plugin()] },
      async (srv) => {
        const refused = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], SPAM)
        assert.equal(refused.raw, '554 5.7.1 spam score exceeded threshold\r\n')
        assert.equal(srv.queued.length, 0)
        assert.match(
          await summaryLine(srv),
          /content\/spamassassin:fail\(Spam, \d{3,4}(?:\.\d)? \/ 5, autolearn=disabled, \d+ ms, >= 12\)/,
        )

        const ok = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], HAM)
        assert.equal(ok.code, 250)
        const text = srv.queued[0]?.text ?? ''
        assert.match(text, /^X-Spam-Checker-Version: SpamAssassin 4\.\d+\.\d+ \(\d{4}-\d\d-\d\d\) on \S+\r\n/)
        assert.match(text, /\r\nX-Spam-Level: \*{0,4}\r\n/)
        assert.match(text, /\r\nX-Spam-Status: No, score=-?\d+\.\d required=5\.0 tests=/)
        assert.doesNotMatch(text, /X-Spam-Flag/)
        assert.ok(afterSpamFields(text).startsWith('Received: from client.test'), afterSpamFields(text).slice(0, 80))
        assert.ok(afterSpamFields(text).endsWith(HAM), 'the message below the new fields is as sent')
        const seen = o.seen.at(-1)
        assert.equal(seen?.score?.isSpam, false)
        assert.equal(seen?.score?.required, 5)
        assert.ok((seen?.score?.tests.length ?? 0) > 0)
        assert.match(
          await summaryLine(srv, 2),
          /content\/spamassassin:pass\(Ham, -?\d+(?:\.\d+)? \/ 5, autolearn=disabled, \d+ ms\)/,
        )
      },
    )
  })

  it('without reject, spam is tolerated: X-Spam-Flag, the Subject munged, karma -1', async () => {
    const o = observer()
    await withTestServer(
      {
        plugins: [acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, munge_subject_threshold: '8' }), o.plugin()],
      },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], SPAM)).code, 250)
        const text = srv.queued[0]?.text ?? ''
        assert.match(text, /\r\nX-Spam-Flag: YES\r\n/)
        assert.match(text, /\r\nSubject: \*\*\* SPAM \*\*\* lunch\r\n/)
        assert.equal(o.seen[0]?.karma, -1)
        assert.equal(o.seen[0]?.score?.isSpam, true)
        assert.match(await summaryLine(srv), /content\/spamassassin:fail\(Spam, .* \(tolerated\)\)/)
      },
    )
  })

  it("the sender's own X-Spam-* fields are renamed (default), dropped, or kept", async () => {
    const forged = plainMessage('hello there, lunch?\r\n', {
      'X-Spam-Status': 'No, score=-100 forged',
      'X-Spam-Flag': 'NO',
    })
    const cases = [
      { leave: 'rename', want: /X-Old-Spam-Status: No, score=-100 forged\r\n/, gone: true },
      { leave: 'drop', want: undefined, gone: true },
      { leave: 'keep', want: /\r\nX-Spam-Status: No, score=-100 forged\r\n/, gone: false },
    ] as const
    for (const c of cases)
      await withTestServer(
        { plugins: [acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, leave_old_headers: c.leave })] },
        async (srv) => {
          assert.equal((await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], forged)).code, 250)
          const text = srv.queued[0]?.text ?? ''
          if (c.want !== undefined) assert.match(text, c.want, c.leave)
          assert.equal(/\r\nX-Spam-Status: No, score=-100 forged/.test(text), !c.gone, c.leave)
          assert.equal(
            (text.match(/^X-Spam-Status: No, score=-?\d+\.\d required/gm) ?? []).length,
            1,
            `${c.leave}: spamd's own`,
          )
        },
      )
  })

  it('per-user preferences: spamd_user vpopmail sends the one recipient; several recipients get X-Spam-User', async () => {
    await spamd.userPrefs('strict@local.test', 'required_score -5\n')
    await withTestServer(
      { plugins: [acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, spamd_user: 'vpopmail', reject: '50' })] },
      async (srv) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        assert.equal((await sendMail(c, 'alice@sender.test', ['strict@local.test'], HAM)).code, 250)
        assert.equal((await sendMail(c, 'alice@sender.test', ['bob@local.test'], HAM)).code, 250)
        assert.equal((await sendMail(c, 'alice@sender.test', ['strict@local.test', 'bob@local.test'], HAM)).code, 250)
        await c.quit()
        const [strict, bob, both] = srv.queued.map((m) => m.text)
        assert.match(strict ?? '', /X-Spam-Status: Yes, score=-?\d+\.\d required=-5\.0/)
        assert.match(bob ?? '', /X-Spam-Status: No, score=-?\d+\.\d required=5\.0/)
        assert.match(both ?? '', /^X-Spam-User: vpopmail, 2 recipients\r\n/)
        assert.match(both ?? '', /X-Spam-Status: No, score=-?\d+\.\d required=5\.0/)
      },
    )
  })

  it('headers none adds nothing and still refuses; size_limit and relay clients skip the scan', async () => {
    await withTestServer(
      {
        plugins: [
          acceptRcpt(),
          spamassassin({ spamd_socket: spamd.socket, headers: 'none', reject: '10', size_limit: '2000' }),
        ],
      },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], HAM)).code, 250)
        assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Spam-/)
        const refused = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], SPAM)
        assert.equal(refused.code, 554)
        const big = plainMessage(`${GTUBE}\r\n${'filler line to pass the size limit\r\n'.repeat(80)}`)
        assert.equal((await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], big)).code, 250)
        assert.match(await summaryLine(srv, 3), /content\/spamassassin:skip\(too large \(\d+ > 2000 bytes\)\)/)
      },
    )
    await withTestServer(
      { plugins: [relayEveryone(), acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, reject: '10' })] },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], SPAM)).code, 250)
        assert.match(await summaryLine(srv), /content\/spamassassin:skip\(immune\)/)
      },
    )
  })

  it('a large message is streamed to spamd whole: spamd counts every byte of it', async () => {
    // SpamAssassin's body rules read the first 50 KB of a part (body_part_scan_size): GTUBE goes first.
    const body = `${GTUBE}\r\n${'The quarterly report is attached below, please review the numbers.\r\n'.repeat(6000)}`
    await withTestServer(
      {
        plugins: [acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, reject: '2000', size_limit: '1000000' })],
        spoolMemoryThreshold: 65_536,
      },
      async (srv) => {
        const r = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], plainMessage(body))
        assert.equal(r.code, 250)
        const sent =
          Buffer.byteLength('X-Envelope-From: <alice@sender.test>\r\n') +
          Buffer.byteLength(afterSpamFields(srv.queued[0]?.text ?? ''))
        assert.ok(sent > 400_000)
        // spamd logs its result line after it has answered: wait for it.
        const sizes = async () => [...(await spamd.log()).matchAll(/[ ,]size=(\d+),/g)].map((m) => Number(m[1]))
        for (let i = 0; i < 100 && !(await sizes()).some((n) => n > 400_000); i++)
          await new Promise((r) => setTimeout(r, 50))
        assert.deepEqual(
          (await sizes()).filter((n) => n > 400_000),
          [sent],
        )
        assert.match(srv.queued[0]?.text ?? '', /X-Spam-Flag: YES/)
      },
    )
  })
})

describe('spamassassin when spamd fails', () => {
  let spamd: Spamd
  before(async () => {
    spamd = await startSpamd()
  })
  after(() => spamd.close())

  it('spamd down: 451 4.3.0 (on_error defer), or accepted unscanned with on_error pass', async () => {
    await spamd.stop()
    try {
      for (const policy of ['defer', 'pass'] as const)
        await withTestServer(
          { plugins: [acceptRcpt(), spamassassin({ spamd_socket: spamd.socket, on_error: policy, reject: '5' })] },
          async (srv) => {
            const r = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], SPAM)
            if (policy === 'defer') {
              assert.equal(r.raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
              assert.equal(srv.queued.length, 0)
            } else {
              assert.equal(r.code, 250)
              assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Spam-/)
            }
            assert.match(await summaryLine(srv), /content\/spamassassin:error\(unreachable: .* \((deferred|passed)\)\)/)
            assert.ok(srv.logs.some((e) => e.level === 4 && /spam scanner failed: unreachable/.test(e.message)))
          },
        )
    } finally {
      await spamd.start()
    }
  })

  it("a daemon's garbage or oversized reply: 451, logged, nothing stored", async () => {
    for (const [label, answer] of [
      ['garbage', 'HTTP/1.0 400 Bad Request\r\n\r\n'],
      [
        'oversized',
        `SPAMD/1.1 0 EX_OK\r\nSpam: True ; 9 / 5\r\nContent-length: 2000000\r\n\r\n${'X-Spam-A: b\r\n'.repeat(150_000)}`,
      ],
    ] as const) {
      const fake = createServer({ allowHalfOpen: true }, (s) => {
        s.on('error', () => {})
        s.resume()
        s.end(answer)
      })
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
      const port = (fake.address() as AddressInfo).port
      try {
        await withTestServer(
          { plugins: [acceptRcpt(), spamassassin({ spamd_socket: `127.0.0.1:${port}` })] },
          async (srv) => {
            const r = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], HAM)
            assert.equal(r.raw, '451 4.3.0 spam scanner unavailable, try again later\r\n', label)
            assert.equal(srv.queued.length, 0)
            const failure = label === 'garbage' ? 'malformed' : 'oversized'
            assert.ok(
              srv.logs.some((e) => e.message.startsWith(`spam scanner failed: ${failure}`)),
              label,
            )
          },
        )
      } finally {
        fake.close()
      }
    }
  })

  it('spamd that accepts and never answers: 451 at the deadline; stopped in the middle of a scan: 451', async () => {
    await withTestServer(
      { plugins: [acceptRcpt(), spamassassin({ spamd_socket: `127.0.0.1:${spamd.port}`, timeout: '1' })] },
      async (srv) => {
        spamd.pause()
        try {
          const r = await sendMailSession(srv, 'alice@sender.test', ['bob@local.test'], HAM)
          assert.equal(r.raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
          assert.match(await summaryLine(srv), /content\/spamassassin:error\(timeout: /)
        } finally {
          spamd.resume()
        }
      },
    )
    await withTestServer(
      { plugins: [acceptRcpt(), spamassassin({ spamd_socket: `127.0.0.1:${spamd.port}`, timeout: '30' })] },
      async (srv) => {
        spamd.pause()
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        const reply = sendMail(c, 'alice@sender.test', ['bob@local.test'], HAM)
        // The scan is under way (spamd has the connection); now spamd goes away.
        await new Promise((r) => setTimeout(r, 300))
        await spamd.stop()
        assert.equal((await reply).raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
        assert.equal(srv.queued.length, 0)
        await spamd.start()
      },
    )
  })
})
