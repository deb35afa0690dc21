import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { type Rspamd, startRspamd } from '../../../test/peers/rspamd.ts'
import { GTUBE } from '../../../test/peers/spamd.ts'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMail, sendMailSession, summaryLine } from '../test-support.ts'
import rspamd from './rspamd.ts'

const HAM = plainMessage('Shall we meet for lunch at noon on Friday? The usual place.\r\n')
const SPAM = plainMessage(`${GTUBE}\r\n`)
/** Every action but the one named is out of reach: the ham message gets that action. */
const only = (action: string) =>
  ['reject', 'add header', 'rewrite subject', 'greylist', 'soft reject']
    .map((a) => `"${a}" = ${a === action ? -100 : 1000};`)
    .join(' ')

describe('rspamd against Debian rspamd 3.4 (offline, private config)', () => {
  let server: Rspamd
  before(async () => {
    server = await startRspamd({
      localFiles: {
        'settings.conf': `
addheader { id = "addheader"; apply { actions { ${only('add header')} } } }
rewrite { id = "rewrite"; apply { actions { ${only('rewrite subject')} } } }
lenient { id = "lenient"; apply { actions { ${only('none')} } } }
greylist { id = "greylist"; apply { actions { ${only('greylist')} } } }
strict_user { rcpt = "strict@local.test"; apply { actions { ${only('reject')} } } }
`,
        'actions.conf': 'subject = "[SPAM] %s";\n',
        // soft reject comes from modules (ratelimit, greylist), not from a score: a prefilter stands in.
        'rspamd.lua': `rspamd_config:register_symbol({
  name = 'QTSMTPD_TEST_SOFT', type = 'prefilter', priority = 10,
  callback = function(task)
    local rcpts = task:get_recipients('smtp')
    if rcpts and rcpts[1] and rcpts[1].addr == 'busy@local.test' then
      task:set_pre_result('soft reject', 'Mailbox busy, try again later')
    end
  end,
})
`,
        'milter_headers.conf':
          'use = ["x-spamd-bar", "remove-spam-flag"];\nskip_local = false;\nskip_authenticated = false;\n',
      },
    })
  })
  after(() => server.close())

  const plugin = (options: Record<string, string> = {}) =>
    rspamd({ host: '127.0.0.1', port: String(server.port), ...options })

  it("GTUBE is refused with rspamd's message; ham passes with rspamd's own header edits, the rest byte for byte", async () => {
    const forged = plainMessage('Shall we meet for lunch at noon on Friday?\r\n', { 'X-Spam': 'Yes' })
    // The forged flag scores (SPAM_FLAG): the lenient settings keep that from becoming an action.
    await withTestServer({ plugins: [acceptRcpt(), plugin({ settings_id: 'lenient' })] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], SPAM)).raw, '554 5.7.1 Gtube pattern\r\n')
      assert.equal((await sendMail(c, 'a@sender.test', ['b@local.test'], forged)).code, 250)
      await c.quit()
      const text = srv.queued[0]?.text ?? ''
      assert.doesNotMatch(text, /^X-Spam: Yes/m, 'remove-spam-flag removed the sender-supplied flag')
      assert.match(text, /\r\nX-Spamd-Bar: [^\r\n]*\r\n\r\n/, "milter_headers' field appended")
      assert.doesNotMatch(text, /X-Rspamd-Score/, 'no X-Rspamd-* fields for no action (add_headers sometimes)')
      assert.ok(text.endsWith('\r\n\r\nShall we meet for lunch at noon on Friday?\r\n'))
      const summary = await summaryLine(srv)
      assert.match(summary, /content\/rspamd:fail\(reject, 15 \/ 15, skipped by rspamd, \d+ ms\)/)
      assert.match(summary, /content\/rspamd:pass\(no action, -?\d+(?:\.\d+)? \/ 1000, \d+ ms\)/)
    })
  })

  it('each action maps to its SMTP outcome (Settings-ID selects rspamd settings per instance)', async () => {
    const cases = [
      {
        id: 'addheader',
        code: 250,
        stored: /^(?=[\s\S]*\r\nX-Rspamd-Score: -?\d+\.\d\d \/ -?\d+\.\d\d\r\nX-Rspamd-Bar: )/,
      },
      { id: 'rewrite', code: 250, stored: /\r\nSubject: \[SPAM\] lunch\r\n/ },
      { id: 'greylist', code: 451, raw: '451 4.7.1 Greylisted, try again later\r\n' },
    ] as const
    for (const c of cases)
      await withTestServer({ plugins: [acceptRcpt(), plugin({ settings_id: c.id })] }, async (srv) => {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], HAM)
        assert.equal(r.code, c.code, `${c.id}: ${r.raw}`)
        if ('raw' in c) assert.equal(r.raw, c.raw)
        if ('stored' in c) assert.match(srv.queued[0]?.text ?? '', c.stored, c.id)
      })
    await withTestServer(
      { plugins: [acceptRcpt(), plugin({ settings_id: 'addheader', add_headers: 'never' })] },
      async (srv) => {
        assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], HAM)).code, 250)
        assert.doesNotMatch(srv.queued[0]?.text ?? '', /X-Rspamd-/)
      },
    )
    await withTestServer({ plugins: [acceptRcpt(), plugin({ reject: 'no' })] }, async (srv) => {
      assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], SPAM)).code, 250)
      assert.match(srv.queued[0]?.text ?? '', /\r\nX-Rspamd-Report: GTUBE\r\n/)
    })
  })

  it("per-user settings: the one recipient is sent as Deliver-To and Rcpt, and rspamd's rule for it applies; soft reject with rspamd's text", async () => {
    await withTestServer({ plugins: [acceptRcpt(), plugin()] }, async (srv) => {
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      assert.equal(
        (await sendMail(c, 'a@sender.test', ['strict@local.test'], HAM)).raw,
        '554 5.7.1 Detected as spam\r\n',
      )
      assert.equal((await sendMail(c, 'a@sender.test', ['bob@local.test'], HAM)).code, 250)
      assert.equal(
        (await sendMail(c, 'a@sender.test', ['busy@local.test'], HAM)).raw,
        '451 4.7.1 Mailbox busy, try again later\r\n',
        "soft reject, with rspamd's message",
      )
      await c.quit()
    })
  })

  it('max_size skips larger messages', async () => {
    await withTestServer({ plugins: [acceptRcpt(), plugin({ max_size: '1' })] }, async (srv) => {
      const big = plainMessage(`${GTUBE}\r\n${'x'.repeat(2000)}\r\n`)
      assert.equal((await sendMailSession(srv, 'a@sender.test', ['b@local.test'], big)).code, 250)
      assert.match(await summaryLine(srv), /content\/rspamd:skip\(too large \(\d+ > 1024 bytes\)\)/)
    })
  })

  it('rspamd stopped: 451 or, with on_error pass, accepted unscanned; paused: 451 at the deadline; stopped mid-scan: 451', async () => {
    await server.stop()
    try {
      for (const [policy, code] of [
        ['defer', 451],
        ['pass', 250],
      ] as const)
        await withTestServer({ plugins: [acceptRcpt(), plugin({ on_error: policy })] }, async (srv) => {
          const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], SPAM)
          assert.equal(r.code, code)
          if (code === 451) assert.equal(r.raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
          assert.match(await summaryLine(srv), /content\/rspamd:error\(unreachable: /)
        })
    } finally {
      await server.start()
    }
    await withTestServer({ plugins: [acceptRcpt(), plugin({ timeout: '1' })] }, async (srv) => {
      server.pause()
      try {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], HAM)
        assert.equal(r.raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
        assert.match(await summaryLine(srv), /content\/rspamd:error\(timeout: /)
      } finally {
        server.resume()
      }
    })
    await withTestServer({ plugins: [acceptRcpt(), plugin()] }, async (srv) => {
      server.pause()
      const c = await srv.connect()
      await c.expect(220)
      await c.send('EHLO client.test', 250)
      const reply = sendMail(c, 'a@sender.test', ['b@local.test'], HAM)
      await new Promise((r) => setTimeout(r, 300))
      // A graceful stop would let rspamd finish this scan; a crash does not.
      await server.kill()
      assert.equal((await reply).raw, '451 4.3.0 spam scanner unavailable, try again later\r\n')
      assert.equal(srv.queued.length, 0)
      await server.start()
    })
  })
})

describe('rspamd against a broken daemon', () => {
  let fake: Server
  let answer: (res: import('node:http').ServerResponse) => void = () => {}
  before(async () => {
    fake = createServer((req, res) => {
      req.resume()
      req.on('end', () => answer(res))
    })
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r))
  })
  after(async () => {
    fake.closeAllConnections()
    await new Promise<void>((r) => fake.close(() => r()))
  })

  it('garbage, an oversized reply and header edits with CR LF end in on_error, logged, nothing stored', async () => {
    const port = String((fake.address() as AddressInfo).port)
    for (const [label, respond] of [
      ['garbage', (res) => res.end('<html>Bad Gateway</html>')],
      [
        'oversized',
        (res) => res.end(`{"action":"no action","score":0,"required_score":15,"pad":"${'a'.repeat(400_000)}"}`),
      ],
      [
        'header injection',
        (res) =>
          res.end(
            '{"action":"no action","score":0,"required_score":15,"milter":{"add_headers":{"X-A":"v\\r\\nBcc: victim@example.org"}}}',
          ),
      ],
    ] as const satisfies readonly (readonly [string, (res: import('node:http').ServerResponse) => void])[]) {
      answer = respond
      await withTestServer({ plugins: [acceptRcpt(), rspamd({ host: '127.0.0.1', port })] }, async (srv) => {
        const r = await sendMailSession(srv, 'a@sender.test', ['b@local.test'], HAM)
        assert.equal(r.code, 451, `${label}: ${r.raw}`)
        assert.equal(srv.queued.length, 0)
        assert.ok(
          srv.logs.some((e) => e.level === 4 && /^spam scanner failed: (malformed|oversized): /.test(e.message)),
          label,
        )
      })
    }
  })
})
