import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { definePlugin } from '../../host/define-plugin.ts'
import { pass } from '../../host/verdict.ts'
import { openSession, startTestServer, withTestServer } from '../../testing/index.ts'
import { acceptRcpt, ask } from '../test-support.ts'
import qmailDeliverable from './qmail-deliverable.ts'

/** A stand-in for qmail-deliverabled: the status per address, as its HTTP protocol returns it. */
const statuses: Record<string, number | 'error' | 'hang'> = {
  'user@local.test': 0xf1,
  'alias@local.test': 0xf3,
  'nobody@local.test': 0x00,
  'list@local.test': 0x14,
  'broken@local.test': 'error',
  'slow@local.test': 'hang',
  'a+b@local.test': 0xf1,
}

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

describe('qmail_deliverable (against a stand-in qmail-deliverabled)', () => {
  let daemon: Server
  let port: number
  const asked: string[] = []
  before(async () => {
    daemon = createServer((req, res) => {
      asked.push(req.url ?? '')
      const m = /^\/qd1\/deliverable\?(.*)$/.exec(req.url ?? '')
      const status = m ? statuses[decodeURIComponent(m[1] ?? '')] : undefined
      if (status === 'hang') return
      if (status === undefined || status === 'error') {
        res.writeHead(status === 'error' ? 500 : 403).end()
        return
      }
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(String(status))
    })
    await new Promise<void>((r) => daemon.listen(0, '127.0.0.1', r))
    port = (daemon.address() as AddressInfo).port
  })
  after(() => new Promise<void>((r) => daemon.close(() => r())))

  it('refuses recipients the daemon does not know, accepts the others, and defers when it cannot tell', () =>
    withTestServer(
      { plugins: [qmailDeliverable({ server: `127.0.0.1:${port}`, timeout: 0.5 }), acceptRcpt()] },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@example.org>', 250)
        assert.match(await ask(c, 'RCPT TO:<User@Local.test>'), /^250 2\.1\.5 /)
        assert.match(await ask(c, 'RCPT TO:<alias@local.test>'), /^250 2\.1\.5 /)
        assert.match(await ask(c, 'RCPT TO:<a+b@local.test>'), /^250 2\.1\.5 /)
        assert.equal(await ask(c, 'RCPT TO:<nobody@local.test>'), '550 5.1.1 Sorry, no mailbox by that name. qd\r\n')
        assert.match(await ask(c, 'RCPT TO:<list@local.test>'), /^250 2\.1\.5 /)
        assert.equal(
          await ask(c, 'RCPT TO:<broken@local.test>'),
          '451 4.3.0 Cannot check the recipient now, try again later\r\n',
        )
        assert.equal(
          await ask(c, 'RCPT TO:<slow@local.test>'),
          '451 4.3.0 Cannot check the recipient now, try again later\r\n',
        )
        await c.send('RSET', 250)
        await c.send('MAIL FROM:<>', 250)
        assert.equal(
          await ask(c, 'RCPT TO:<list@local.test>'),
          '550 5.7.1 mailing lists do not accept null senders\r\n',
        )
        await c.quit()
        assert.ok(asked.includes('/qd1/deliverable?a%2Bb%40local.test'), asked.join(' '))
        assert.ok(asked.includes('/qd1/deliverable?user%40local.test'), 'addresses are asked in lower case')
      },
    ))

  it('on_error pass accepts when the daemon is down (qpsmtpd); relay clients are not checked', async () => {
    const down = createServer()
    await new Promise<void>((r) => down.listen(0, '127.0.0.1', r))
    const downPort = (down.address() as AddressInfo).port
    await new Promise<void>((r) => down.close(() => r()))
    await withTestServer(
      { plugins: [qmailDeliverable({ server: `127.0.0.1:${downPort}` }), acceptRcpt()] },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@example.org>', 250)
        assert.equal(
          await ask(c, 'RCPT TO:<user@local.test>'),
          '451 4.3.0 Cannot check the recipient now, try again later\r\n',
        )
        await c.quit()
      },
    )
    await withTestServer(
      { plugins: [qmailDeliverable({ server: `127.0.0.1:${downPort}`, on_error: 'pass' }), acceptRcpt()] },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@example.org>', 250)
        assert.match(await ask(c, 'RCPT TO:<user@local.test>'), /^250 /)
        await c.quit()
      },
    )
    const before = asked.length
    await withTestServer(
      { plugins: [relayEveryone(), qmailDeliverable({ server: `127.0.0.1:${port}` }), acceptRcpt()] },
      async (srv) => {
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@example.org>', 250)
        assert.match(await ask(c, 'RCPT TO:<nobody@local.test>'), /^250 /)
        await c.quit()
      },
    )
    assert.equal(asked.length, before)
  })

  it('server smtproutes:PORT asks the host smtproutes names, and skips domains it does not list', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qmail-deliverable-'))
    try {
      await writeFile(join(dir, 'plugins'), `qmail_deliverable server smtproutes:${port}\nrcpt_ok\n`)
      await writeFile(join(dir, 'rcpthosts'), 'local.test\nother.test\n')
      await writeFile(join(dir, 'smtproutes'), 'local.test:[127.0.0.1]:25\n')
      await withTestServer({ configDir: dir }, async (srv) => {
        const before = asked.length
        const c = await openSession(srv)
        await c.send('MAIL FROM:<s@example.org>', 250)
        assert.equal(await ask(c, 'RCPT TO:<nobody@local.test>'), '550 5.1.1 Sorry, no mailbox by that name. qd\r\n')
        assert.match(await ask(c, 'RCPT TO:<nobody@other.test>'), /^250 /)
        await c.quit()
        assert.equal(asked.length, before + 1)
      })
      await writeFile(join(dir, 'plugins'), 'qmail_deliverable server localhost\nrcpt_ok\n')
      await assert.rejects(startTestServer({ configDir: dir }), {
        message: `${join(dir, 'plugins')}:1: plugin rcpt/qmail-deliverable: server: expected host:port or smtproutes:[host:]port, got "localhost"`,
      })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
