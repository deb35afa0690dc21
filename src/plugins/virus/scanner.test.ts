/**
 * qpsmtpd's vendor scanner plugins (presets of virus/scanner) against a stand-in for each vendor
 * program (test/peers/fake-scanner, installed under the vendor's name), and virus/sophie against
 * a stand-in Sophie daemon: the vendors' scanners are not in Debian.
 */
import assert from 'node:assert/strict'
import { access, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { EICAR } from '../../../test/peers/clamd.ts'
import {
  type FakeScanners,
  type FakeSophie,
  installFakeScanners,
  startFakeSophie,
} from '../../../test/peers/fake-scanners.ts'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMailSession, summaryLine } from '../test-support.ts'
import {
  aveclientScanner,
  bitdefenderScanner,
  hbedvScanner,
  kavscannerScanner,
  sophieScanner,
  uvscanScanner,
  virusScanner,
} from './presets.ts'

const multipart = (payload: string) =>
  plainMessage(
    [
      '--b1',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--b1',
      'Content-Type: application/octet-stream',
      '',
      payload,
      '--b1--',
      '',
    ].join('\r\n'),
    { 'MIME-Version': '1.0', 'Content-Type': 'multipart/mixed; boundary="b1"' },
  )
const INFECTED = multipart(EICAR)
const CLEAN = multipart('Minutes of Tuesday.')
const send = (srv: Parameters<typeof sendMailSession>[0], message: string, to = ['b@local.test']) =>
  sendMailSession(srv, 'a@sender.test', to, message)
/** The header fields above our Received field, and those at the end of the section. */
const topFields = (text: string) => text.slice(0, text.indexOf('Received: '))
const endFields = (text: string) => text.slice(text.indexOf('Message-ID: '), text.indexOf('\r\n\r\n') + 2)

describe('vendor scanner presets against stand-in programs', () => {
  let fake: FakeScanners
  let sophie: FakeSophie
  before(async () => {
    fake = await installFakeScanners()
    sophie = await startFakeSophie(fake.dir)
  })
  after(async () => {
    await sophie.close()
    await fake.close()
  })

  it('aveclient: its command line, EICAR refused, clean mail checked; the message file is the message and is removed', async () => {
    await withTestServer(
      {
        plugins: [
          acceptRcpt(),
          aveclientScanner({ avclient_bin: fake.path('aveclient'), avdaemon_sock: '/run/aveserver' }),
        ],
      },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: EICAR-Test-File\r\n')
        const [call] = await fake.calls()
        const file = /-s (\S+)$/.exec(call ?? '')?.[1] ?? ''
        assert.equal(call, `aveclient -p /run/aveserver -s ${file}`)
        assert.match(file, /^\/.*\/scan-\d+-[0-9a-f]{16}\.eml$/)
        await assert.rejects(access(file), 'the message file is gone after the scan')
        assert.match((await fake.last()).toString(), /^Received: from client\.test [\s\S]*\r\n\r\n--b1\r\n/)
        assert.ok((await fake.last()).toString().endsWith(INFECTED))
        assert.equal((await send(srv, CLEAN)).code, 250)
        assert.match(endFields(srv.queued[0]?.text ?? ''), /\r\nX-Virus-Checked: Checked by Kaspersky on mx\.test\r\n$/)
      },
    )
  })

  it('bitdefender reads its output whatever the exit code; skips messages that are not multipart; deny_viruses no marks', async () => {
    await withTestServer(
      { plugins: [acceptRcpt(), bitdefenderScanner({ bitdefender_location: fake.path('bdc'), deny_viruses: 'no' })] },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).code, 250)
        assert.match(
          endFields(srv.queued[0]?.text ?? ''),
          /\r\nX-Virus-Found: Yes\r\nX-Virus-Details: EICAR-Test-File \(not a virus\)\r\n$/,
        )
        assert.equal((await send(srv, plainMessage(`${EICAR}\r\n`))).code, 250)
        assert.match(await summaryLine(srv, 2), /virus\/bitdefender:skip\(not multipart\)/)
        assert.match((await fake.calls()).at(-1) ?? '', /^bdc --mail --all --arc \S+$/)
      },
    )
    await withTestServer(
      { plugins: [acceptRcpt(), bitdefenderScanner({ bitdefender_location: fake.path('bdc') })] },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: EICAR-Test-File (not a virus)\r\n')
      },
    )
  })

  it('hbedv: X-H+BEDV fields on top; config/hbedv_deny decides which viruses are refused', async () => {
    const plugin = () => hbedvScanner({ hbedvscanner: fake.path('antivir') })
    await withTestServer(
      { plugins: [acceptRcpt(), plugin()], config: { hbedv_deny: ['Worm\\/Sober\\..*'] } },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).code, 250, 'Eicar is not in hbedv_deny: marked')
        assert.equal(
          topFields(srv.queued[0]?.text ?? ''),
          'X-H+BEDV-Virus-Checked: Checked\r\nX-H+BEDV-Virus-Details: Eicar-Test-Signature\r\nX-H+BEDV-Virus-Found: Yes\r\n',
        )
        assert.equal((await send(srv, CLEAN)).code, 250)
        assert.equal(topFields(srv.queued[1]?.text ?? ''), 'X-H+BEDV-Virus-Checked: Checked\r\n')
        assert.match(
          (await fake.calls()).at(-1) ?? '',
          /^antivir --archive-max-recursion=50 --alltypes -z -noboot -nombr -rs \S+$/,
        )
      },
    )
    for (const deny of [['eicar-.*'], []])
      await withTestServer({ plugins: [acceptRcpt(), plugin()], config: { hbedv_deny: deny } }, async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: Eicar-Test-Signature\r\n', deny.join())
      })
  })

  it('kavscanner marks viruses and sends a copy to bcc_virusadmin', async () => {
    await withTestServer(
      {
        plugins: [
          acceptRcpt(),
          kavscannerScanner({ kavscanner_bin: fake.path('kavscanner'), bcc_virusadmin: 'virusadmin@local.test' }),
        ],
      },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).code, 250)
        const m = srv.queued[0]
        assert.deepEqual(m?.to, ['b@local.test', 'virusadmin@local.test'])
        assert.match(
          endFields(m?.text ?? ''),
          /\r\nX-Virus-Found: Yes\r\nX-Virus-Details: EICAR-Test-File\r\nX-Virus-Checked: Checked by mx\.test\r\n$/,
        )
        assert.match((await fake.calls()).at(-1) ?? '', /^kavscanner -Y -P -B -MP -MD -\* \S+$/)
      },
    )
  })

  it('uvscan: exit 13 refuses, a password-protected archive is refused, max_size skips', async () => {
    await withTestServer(
      { plugins: [acceptRcpt(), uvscanScanner({ uvscan_location: fake.path('uvscan') })] },
      async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: the EICAR test file NOT a virus.\r\n')
        assert.equal(
          (await send(srv, multipart('PASSWORD-PLEASE'))).raw,
          '554 5.7.1 We do not accept password-protected zip files!\r\n',
        )
        assert.equal(
          (await send(srv, multipart(`${EICAR}\r\n${'x'.repeat(70).concat('\r\n').repeat(4000)}`))).code,
          250,
        )
        assert.match(await summaryLine(srv, 3), /virus\/uvscan:skip\(too large \(\d+ > 250880 bytes\)\)/)
        assert.match((await fake.calls()).at(-1) ?? '', /^uvscan --mime --unzip --secure --noboot \S+$/)
      },
    )
  })

  it('sophie: the file name on its socket, readable by the daemon as the spool directory allows', async () => {
    await withTestServer({ plugins: [acceptRcpt(), sophieScanner({ sophie_socket: sophie.socket })] }, async (srv) => {
      assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: EICAR-Test-File\r\n')
      assert.equal((await send(srv, CLEAN)).code, 250)
      assert.match(endFields(srv.queued[0]?.text ?? ''), /\r\nX-Virus-Checked: Checked by SOPHIE on mx\.test\r\n$/)
      assert.equal(sophie.asked.length, 2)
      const { stat } = await import('node:fs/promises')
      const dirMode = (await stat(srv.spoolDir)).mode
      const want = 0o600 | (dirMode & 0o010 ? 0o040 : 0) | (dirMode & 0o001 ? 0o004 : 0)
      assert.deepEqual(new Set(sophie.asked.map((a) => a.mode)), new Set([want]))
      sophie.answer = () => 'what is a virus?\n'
      assert.equal((await send(srv, CLEAN)).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
      sophie.answer = () => undefined
      const plugin = sophieScanner({ sophie_socket: sophie.socket, timeout: '0.5' })
      await withTestServer({ plugins: [acceptRcpt(), plugin] }, async (srv2) => {
        assert.equal((await send(srv2, CLEAN)).raw, '451 4.3.0 virus scanner unavailable, try again later\r\n')
        assert.match(await summaryLine(srv2), /virus\/sophie:error\(timeout: /)
      })
      sophie.answer = (m) => (m.includes('EICAR-STANDARD') ? '1:EICAR-Test-File\n' : '0\n')
    })
  })

  it('a scanner that hangs, crashes, prints garbage, fails or is missing: on_error (451, or pass), logged, nothing lost', async () => {
    const cases = [
      ['HANG-PLEASE', { timeout: '0.5' }, /error\(timeout: \S+antivir ran past 500 ms and was killed/],
      ['CRASH-PLEASE', {}, /error\(closed: \S+antivir was killed by SIGSEGV/],
      ['GARBAGE-PLEASE', {}, /error\(malformed: \S+antivir reported a virus but named none: "Q29m/],
      ['ERROR-PLEASE', {}, /error\(refused: \S+antivir exited 214: "License key not found"/],
    ] as const
    for (const [trigger, options, result] of cases)
      for (const policy of ['defer', 'pass'] as const)
        await withTestServer(
          {
            plugins: [acceptRcpt(), hbedvScanner({ hbedvscanner: fake.path('antivir'), on_error: policy, ...options })],
          },
          async (srv) => {
            const r = await send(srv, multipart(trigger))
            if (policy === 'defer') {
              assert.equal(r.raw, '451 4.3.0 virus scanner unavailable, try again later\r\n', trigger)
              assert.equal(srv.queued.length, 0)
            } else assert.equal(r.code, 250, trigger)
            assert.match(await summaryLine(srv), result, trigger)
            assert.ok(
              srv.logs.some((e) => e.level === 4 && e.message.startsWith('virus scanner failed: ')),
              trigger,
            )
          },
        )
    await withTestServer(
      { plugins: [acceptRcpt(), hbedvScanner({ hbedvscanner: `${fake.dir}/nonexistent` })] },
      async (srv) => {
        assert.equal((await send(srv, CLEAN)).code, 451)
        assert.match(
          await summaryLine(srv),
          /virus\/hbedv:error\(unreachable: cannot run \S+nonexistent: spawn \S+ ENOENT/,
        )
      },
    )
  })
})

describe('virus/scanner with options of its own', () => {
  it('runs a command line with {file}, the exit codes and the pattern given; a bad pattern stops the start', async () => {
    const fake = await installFakeScanners()
    try {
      const plugin = virusScanner({
        command: `${fake.path('antivir')} -rs {file}`,
        infected_exit: '1,3',
        virus_pattern: '^ALERT: \\[(\\S+)',
        checked_by: 'AntiVir',
      })
      await withTestServer({ plugins: [acceptRcpt(), plugin] }, async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: Eicar-Test-Signature\r\n')
        assert.equal((await send(srv, CLEAN)).code, 250)
        assert.match(endFields(srv.queued[0]?.text ?? ''), /\r\nX-Virus-Checked: Checked by AntiVir on mx\.test\r\n$/)
        assert.match((await fake.calls()).at(-1) ?? '', /^antivir -rs \S+\.eml$/)
      })
      // The line of docs/plugins/virus/scanner.md, in a config/plugins file.
      const config = await mkdtemp(join(tmpdir(), 'qtsmtpd-scanner-config-'))
      await writeFile(
        join(config, 'plugins'),
        `virus/scanner command "${fake.path('antivir')} -rs {file}" infected_exit 1,3 virus_pattern "^ALERT: \\[(\\S+)" checked_by AntiVir\n`,
      )
      await withTestServer({ configDir: config, plugins: [acceptRcpt()] }, async (srv) => {
        assert.equal((await send(srv, INFECTED)).raw, '554 5.7.1 Virus found: Eicar-Test-Signature\r\n')
      })
      await rm(config, { recursive: true })
      await assert.rejects(
        withTestServer({ plugins: [virusScanner({ command: 'x {file}', virus_pattern: '(?=a)' })] }, async () => {}),
        /option "virus_pattern": .*lookahead/,
      )
    } finally {
      await fake.close()
    }
  })
})
