import assert from 'node:assert/strict'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EICAR, EICAR_NAME, writeEicarDatabase } from '../../../test/peers/clamd.ts'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMailSession, summaryLine } from '../test-support.ts'
import clamav, { translateClamavArgs } from './clamav.ts'

const CLEAN = plainMessage('Minutes of Tuesday.\r\n')
const INFECTED = plainMessage(`${EICAR}\r\n`)
const send = (srv: Parameters<typeof sendMailSession>[0], message: string) =>
  sendMailSession(srv, 'a@sender.test', ['b@local.test'], message)
const endFields = (text: string) => text.slice(text.indexOf('Message-ID: '), text.indexOf('\r\n\r\n') + 2)

describe("virus/clamav with Debian's clamscan and a signature database of our own", () => {
  let dir: string
  let db: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-clamav-'))
    db = join(dir, 'db')
    await writeEicarDatabase(db)
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it("qpsmtpd's name=value arguments in config/plugins; action=reject refuses EICAR", async () => {
    await writeFile(join(dir, 'plugins'), `virus/clamav clamscan_path=/usr/bin/clamscan database=${db} action=reject\n`)
    await writeFile(join(dir, 'me'), 'mx.test\n')
    await withTestServer({ configDir: dir, plugins: [acceptRcpt()] }, async (srv) => {
      assert.equal((await send(srv, INFECTED)).raw, `554 5.7.1 Virus found: ${EICAR_NAME}\r\n`)
      assert.equal((await send(srv, CLEAN)).code, 250)
      const text = srv.queued[0]?.text ?? ''
      assert.match(endFields(text), /\r\nX-Virus-Checked: Checked by ClamAV on mx\.test\r\n$/)
      assert.ok(text.endsWith('\r\nX-Virus-Checked: Checked by ClamAV on mx.test\r\n\r\nMinutes of Tuesday.\r\n'))
      assert.match(await summaryLine(srv, 2), /virus\/clamav:pass\(clean, \d+ ms\)/)
    })
  })

  it('add-header (the default) marks the virus; EICAR at the end of 3 MB on stdin is found', async () => {
    const big = plainMessage(
      `${'Nothing to see in this line of filler, move along please.\r\n'.repeat(50_000)}${EICAR}\r\n`,
    )
    await withTestServer(
      {
        plugins: [acceptRcpt(), clamav({ database: db, max_size: String(8 * 1024 * 1024) })],
        spoolMemoryThreshold: 65_536,
      },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).code, 250)
        assert.match(
          endFields(srv.queued[0]?.text ?? ''),
          new RegExp(`\\r\\nX-Virus-Found: Yes\\r\\nX-Virus-Details: ${EICAR_NAME.replaceAll('.', '\\.')}\\r\\n$`),
        )
        assert.equal((await send(srv, big)).code, 250)
        assert.match(srv.queued[1]?.text ?? '', /\r\nX-Virus-Found: Yes\r\n/)
      },
    )
  })

  it('max_size (bytes, 512 KB by default) skips larger messages', async () => {
    await withTestServer(
      { plugins: [acceptRcpt(), clamav({ database: db, action: 'reject', max_size: '1000' })] },
      async (srv) => {
        assert.equal((await send(srv, plainMessage(`${EICAR}\r\n${'padding line\r\n'.repeat(100)}`))).code, 250)
        assert.match(await summaryLine(srv), /virus\/clamav:skip\(too large \(\d+ > 1000 bytes\)\)/)
      },
    )
  })

  it('clamscan failing (a missing database: exit 2) defers, or passes with declined_on_fail; a scanner printing garbage defers', async () => {
    await withTestServer({ plugins: [acceptRcpt(), clamav({ database: join(dir, 'nope') })] }, async (srv) => {
      assert.equal((await send(srv, INFECTED)).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
      assert.match(await summaryLine(srv), /virus\/clamav:error\(refused: \/usr\/bin\/clamscan exited 2: /)
    })
    await withTestServer(
      { plugins: [acceptRcpt(), clamav({ database: join(dir, 'nope'), declined_on_fail: '1' })] },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).code, 250)
      },
    )
    const liar = join(dir, 'clamscan-liar')
    await writeFile(liar, '#!/bin/sh\ncat > /dev/null\necho "all good, trust me"\nexit 0\n')
    await chmod(liar, 0o755)
    await withTestServer({ plugins: [acceptRcpt(), clamav({ clamscan_path: liar })] }, async (srv) => {
      assert.equal((await send(srv, INFECTED)).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
      assert.match(
        await summaryLine(srv),
        /virus\/clamav:error\(malformed: \S+clamscan-liar reported clean without saying so: "all good, trust me/,
      )
    })
    const skimmer = join(dir, 'clamscan-skimmer')
    await writeFile(skimmer, '#!/bin/sh\nhead -c 100 > /dev/null\necho "stdin: OK"\nexit 0\n')
    await chmod(skimmer, 0o755)
    await withTestServer({ plugins: [acceptRcpt(), clamav({ clamscan_path: skimmer })] }, async (srv) => {
      const big = plainMessage('A long message the scanner stops reading.\r\n'.repeat(7000))
      assert.equal((await send(srv, big)).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
      assert.match(
        await summaryLine(srv),
        /virus\/clamav:error\(closed: \S+clamscan-skimmer said clean without reading the whole message/,
      )
    })
  })
})

describe('translateClamavArgs', () => {
  it("reads qpsmtpd's forms", () => {
    assert.deepEqual(translateClamavArgs(['/usr/bin/clamdscan', 'action=reject', 'back_compat', 'max_size=1048576']), [
      'clamscan_path',
      '/usr/bin/clamdscan',
      'action',
      'reject',
      'back_compat',
      '1',
      'max_size',
      '1048576',
    ])
  })
})
