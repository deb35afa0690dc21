/**
 * milter's configuration through real sessions: macros as Postfix's milter_*_macros settings
 * and TLS macros, and lines of config/plugins (qpsmtpd's `milter NAME PORT`, `milter:2` on a
 * Unix socket) in one chain.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { milterReply as r, startFakeMilter } from '../../../test/peers/fake-milter.ts'
import { acceptAllRecipients, withTestServer } from '../../testing/index.ts'
import { cont, sendMessage, session, withMilter } from './test-support.ts'

describe('milter: macros as configured', () => {
  it("connect_macros, daemon_name and macro_defaults, as Postfix's milter_* settings", async () => {
    await withMilter(
      cont,
      async (srv, fake) => {
        const c = await session(srv)
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        assert.deepEqual(conn.macros('C'), {
          '{daemon_name}': 'inbound',
          '{client_addr}': '127.0.0.1',
          '{client_name}': 'unknown',
          '{client_connections}': '0',
        })
        assert.deepEqual(conn.macros('H'), { '{client_resolve}': 'FAIL' })
      },
      {
        options: {
          connect_macros: '{daemon_name},{client_addr},{client_name},{client_connections},{unset}',
          helo_macros: '{client_resolve},{tls_version}',
          daemon_name: 'inbound',
          macro_defaults: '{client_connections}=0',
        },
      },
    )
  })
})

describe('milter: from config/plugins', () => {
  it("qpsmtpd's `milter NAME PORT`, then `milter:2` on a Unix socket relative to the base directory, both in the chain", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-milter-config-'))
    const first = await startFakeMilter({
      reply: (c) => (c.letter === 'E' ? [r.addHeader('X-First', 'yes'), r.continue()] : cont()),
    })
    const second = await startFakeMilter(
      { reply: (c) => (c.letter === 'E' ? [r.addHeader('X-Second', 'yes'), r.continue()] : cont()) },
      { unixPath: join(dir, 'second.sock') },
    )
    try {
      await mkdir(join(dir, 'config'))
      await writeFile(
        join(dir, 'config', 'plugins'),
        `milter first ${first.port}\nmilter:2 second unix:second.sock default_action accept\n`,
      )
      await withTestServer({ configDir: join(dir, 'config'), plugins: [acceptAllRecipients()] }, async (srv) => {
        assert.equal((await sendMessage(srv)).code, 250)
        assert.match(srv.queued[0]?.text ?? '', /\r\nX-First: yes\r\nX-Second: yes\r\n\r\n/)
      })
    } finally {
      await first.close()
      await second.close()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('milter: TLS macros', () => {
  it('{tls_version} and {cipher} at HELO after STARTTLS', async () => {
    await withMilter(
      cont,
      async (srv, fake) => {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.startTls()
        await c.send('EHLO client.test', 250)
        await c.quit()
        const conn = await fake.connected()
        await conn.closed
        const helo = conn.received.filter((x) => x.letter === 'D' && x.data.toString('latin1', 0, 1) === 'H')
        assert.equal(conn.letters().filter((l) => l === 'H').length, 2)
        assert.equal(helo.length, 1, 'before STARTTLS the HELO macros have no value: no macro packet')
        const after = helo[0]?.strings ?? []
        assert.equal(after[0], 'H{tls_version}')
        assert.match(after[1] ?? '', /^TLSv1\.[23]$/)
        assert.equal(after[2], '{cipher}')
        assert.match(after[3] ?? '', /^TLS_|^ECDHE/)
      },
      { server: { tls: true } },
    )
  })
})
