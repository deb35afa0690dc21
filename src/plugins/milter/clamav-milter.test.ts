/**
 * milter with Debian's clamav-milter (scanning through a private clamd with an EICAR database
 * of our own) through real SMTP sessions: EICAR is refused (OnInfected Reject) or quarantined
 * (OnInfected Quarantine, Debian's default: refused by default, kept in the quarantine queue with
 * `quarantine hold`); clean mail gets clamav-milter's X-Virus-* fields; a 10 MB message streams
 * through and is stored byte for byte; clamd gone is clamav-milter's tempfail (OnFail Defer),
 * clamav-milter gone is our failure policy. Nothing is lost: 4xx, 5xx, or stored.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type ClamavMilter, startClamavMilter } from '../../../test/peers/clamav-milter.ts'
import { EICAR } from '../../../test/peers/clamd.ts'
import type { PluginChoice } from '../../host/define-plugin.ts'
import { acceptAllRecipients, type TestServer, withTestServer } from '../../testing/index.ts'
import quarantineQueue from '../queue/quarantine.ts'
import { sendMailSession } from '../test-support.ts'
import milter from './index.ts'

const clean = 'From: <s@sender.test>\r\nSubject: clean\r\n\r\nNothing to see.\r\n'
const infected = `From: <s@sender.test>\r\nSubject: eicar\r\n\r\n${EICAR}\r\n`
const send = (srv: TestServer, content: string) => sendMailSession(srv, 's@sender.test', ['u@local.test'], content)

const serve = (plugins: PluginChoice[], run: (srv: TestServer) => Promise<void>) =>
  withTestServer({ plugins: [...plugins, acceptAllRecipients()] }, run)

describe('milter with clamav-milter, OnInfected Reject', () => {
  let clamav: ClamavMilter
  before(async () => {
    clamav = await startClamavMilter({ onInfected: 'Reject' })
  })
  after(() => clamav.close())

  it("EICAR is refused with clamav-milter's reply; clean mail is stored with its X-Virus fields", async () => {
    await serve([milter({ name: 'clamav', socket: clamav.socket })], async (srv) => {
      const refused = await send(srv, infected)
      assert.match(refused.raw, /^550 5\.7\.1 .*\r\n$/)
      const ok = await send(srv, clean)
      assert.equal(ok.code, 250)
      assert.equal(srv.queued.length, 1)
      assert.match(
        srv.queued[0]?.text ?? '',
        /\r\nSubject: clean\r\nX-Virus-Scanned: clamav-milter [^\r\n]+\r\nX-Virus-Status: Clean\r\n\r\nNothing to see\.\r\n$/,
      )
    })
  })

  it('a 10 MB message streams through the milter and is stored byte for byte', async () => {
    const line = `${'0123456789abcdef'.repeat(4)}\r\n`
    const body = line.repeat(Math.ceil(10_000_000 / line.length))
    await serve([milter({ name: 'clamav', socket: clamav.socket })], async (srv) => {
      const reply = await send(srv, `Subject: big\r\n\r\n${body}`)
      assert.equal(reply.code, 250)
      const stored = srv.queued[0]?.data as Buffer
      const storedBody = stored.subarray(stored.indexOf('\r\n\r\n') + 4)
      const hash = (b: string | Buffer) => createHash('sha256').update(b).digest('hex')
      assert.equal(hash(storedBody), hash(body))
    })
  })

  it('clamd stopped: clamav-milter tempfails (OnFail Defer), the client gets a 4xx', async () => {
    await clamav.clamd.stop()
    try {
      await serve([milter({ name: 'clamav', socket: clamav.socket })], async (srv) => {
        const reply = await send(srv, clean)
        assert.match(reply.raw, /^4\d\d /)
        assert.equal(srv.queued.length, 0)
      })
    } finally {
      await clamav.clamd.start()
    }
  })

  it('clamav-milter stopped: our default_action (tempfail: 421 at the greeting)', async () => {
    await clamav.stop()
    try {
      await serve([milter({ name: 'clamav', socket: clamav.socket })], async (srv) => {
        const c = await srv.connect()
        await c.expect('421 4.7.1 Service unavailable - try again later')
      })
    } finally {
      await clamav.start()
    }
  })
})

describe("milter with clamav-milter, OnInfected Quarantine (Debian's default)", () => {
  let clamav: ClamavMilter
  let dir: string
  before(async () => {
    clamav = await startClamavMilter({ onInfected: 'Quarantine' })
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-clamav-quarantine-'))
  })
  after(async () => {
    await clamav.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('by default EICAR is refused (554 5.7.1 Message quarantined)', async () => {
    await serve([milter({ name: 'clamav', socket: clamav.socket })], async (srv) => {
      assert.equal((await send(srv, infected)).raw, '554 5.7.1 Message quarantined\r\n')
      assert.equal(srv.queued.length, 0)
    })
  })

  it("quarantine hold: EICAR is kept in the quarantine queue with clamav-milter's reason; clean mail is delivered", async () => {
    await serve(
      [
        quarantineQueue({ dir, marked_only: true }),
        milter({ name: 'clamav', socket: clamav.socket, quarantine: 'hold' }),
      ],
      async (srv) => {
        assert.match((await send(srv, infected)).raw, /^250 2\.0\.0 Quarantined as /)
        assert.equal((await send(srv, clean)).code, 250)
        assert.equal(srv.queued.length, 1)
        const [day] = await readdir(dir)
        const [file] = await readdir(join(dir, day as string))
        const stored = await readFile(join(dir, day as string, file as string), 'utf8')
        assert.match(
          stored,
          /^X-Envelope-From: <s@sender\.test>\r\nX-Envelope-To: <u@local\.test>\r\nX-Quarantine-Reason: milter clamav: .+\r\n/,
        )
        assert.ok(stored.includes(EICAR))
      },
    )
  })
})
