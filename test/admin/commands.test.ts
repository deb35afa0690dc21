/**
 * The admin commands against a real server: `qtsmtpd status`, `reload` and `drain` through
 * the admin listener found from the pid file (FILE.admin) with --workers 2, and through
 * signals when there is no admin listener (the old --reload/--stop); `qtsmtpd config` of
 * config.sample, compared with what docs/operations.md shows.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { bin, killPid, repo, startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { adminConfig } from './support.ts'

const execFileAsync = promisify(execFile)
const qtsmtpd = (...args: string[]) => execFileAsync(process.execPath, [bin, ...args], { cwd: repo })
const failing = (...args: string[]) =>
  qtsmtpd(...args).then(
    (r) => assert.fail(`exited 0: ${r.stdout}`),
    (e: { code: number; stdout: string; stderr: string }) => e,
  )
const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

describe('qtsmtpd status, reload, drain', { timeout: 90_000 }, () => {
  test('through the admin listener the pid file points to, with --workers 2', async () => {
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    const pidFile = join(cfg.dir, 'qtsmtpd.pid')
    const [port, admin] = [await freePort(), await freePort()]
    const cli = startCli([
      ...['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2'],
      ...['--admin', `127.0.0.1:${admin}`, '--pid-file', pidFile, '--drain', '20'],
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    for (const l of cli.lines) {
      const m = /worker \d ready \(pid (\d+)\)/.exec(l)
      if (m) cleanup.push(() => killPid(Number(m[1])))
    }
    assert.deepEqual(JSON.parse(readFileSync(`${pidFile}.admin`, 'utf8')), { address: `127.0.0.1:${admin}` })

    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    await c.expect(220)
    await c.send('EHLO evil\x1b[2J\x1b]0;pwned\x07.test', 250)
    await c.send('MAIL FROM:<a@client.test>', 250)

    const status = (await qtsmtpd('status', '--pid-file', pidFile)).stdout
    const primary = readFileSync(pidFile, 'utf8').trim()
    assert.match(status, new RegExp(`^qtsmtpd \\S+: ready; 2 workers, primary pid ${primary}; up \\d+s\\n`))
    assert.match(status, /^configuration: generation 1 \([0-9a-f]{12}\), loaded \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/m)
    assert.match(status, /^sessions: 1 open of 2000 \(mail 1\)$/m)
    assert.match(status, /^ {2}worker +pid +state +sessions +restarts +configuration$/m)
    assert.equal(status.match(/^ {2}[12] +\d+ +ready +[01] +0 +1 [0-9a-f]{12}$/gm)?.length, 2)
    // The client's terminal escapes are shown, not obeyed.
    assert.ok(!/[\x00-\x09\x0b-\x1f\x7f]/.test(status), JSON.stringify(status))
    assert.match(status, / evil\\x1b\[2J\\x1b\]0;pwned\\x07\.test +mail +no +- +<a@client\.test> +[12]$/m)
    const json = JSON.parse((await qtsmtpd('status', '--pid-file', pidFile, '--json')).stdout)
    assert.equal(json.list[0].helo, 'evil\x1b[2J\x1b]0;pwned\x07.test')

    assert.equal((await qtsmtpd('reload', '--pid-file', pidFile)).stdout, 'configuration reloaded by 2 workers\n')
    assert.match(
      (await qtsmtpd('status', '--admin', `127.0.0.1:${admin}`)).stdout,
      /generation 2 .*\nlast reload: .* taken: configuration reloaded by 2 workers\n/,
    )
    cfg.write('plugins', 'rcpt_ok\nno_such_plugin\n')
    const refused = await failing('reload', '--pid-file', pidFile)
    assert.equal(refused.code, 2)
    assert.match(
      refused.stderr,
      /^qtsmtpd: reload: refused, the running configuration stays:\nqtsmtpd: \S+\/plugins:2: unknown plugin "no_such_plugin"/,
    )

    assert.equal((await qtsmtpd('drain', '--pid-file', pidFile)).stdout, `draining process ${primary}\n`)
    await cli.waitFor(/qtsmtpd drain: draining 2 workers/)
    // The open session may finish: its message is accepted during the drain.
    await c.send('RCPT TO:<u@example.com>', 250)
    await c.send('DATA', 354)
    await c.send('Subject: t\r\n\r\nhello\r\n.', 250)
    await c.send('QUIT', 221)
    assert.equal((await cli.exited(30_000)).code, 0)
    assert.equal(cfg.messages().length, 1)
  })

  test('without an admin listener: reload and drain by signal, status says what it needs', async () => {
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    const pidFile = join(cfg.dir, 'qtsmtpd.pid')
    const port = await freePort()
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--pid-file', pidFile])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const pid = readFileSync(pidFile, 'utf8').trim()
    const status = await failing('status', '--pid-file', pidFile)
    assert.equal(status.code, 1)
    assert.match(
      status.stderr,
      /status needs the admin listener: give --admin HOST:PORT, or --pid-file of a server started with --admin/,
    )
    assert.equal(
      (await qtsmtpd('reload', '--pid-file', pidFile)).stdout,
      `reload requested from process ${pid}\nconfiguration reloaded\n`,
    )
    assert.equal((await qtsmtpd('drain', '--pid-file', pidFile)).stdout, `stop requested from process ${pid}\n`)
    assert.equal((await cli.exited()).code, 0)
  })
})

describe('qtsmtpd config', () => {
  /** The ```text block after the line naming the command in docs/operations.md. */
  function documented(command: string): string {
    const doc = readFileSync(join(repo, 'docs/operations.md'), 'utf8')
    const at = doc.indexOf(`$ ${command}\n`)
    assert.ok(at >= 0, `docs/operations.md shows no "$ ${command}"`)
    const start = at + command.length + 3
    return doc.slice(start, doc.indexOf('```', start))
  }
  /** Machine-specific values as the docs show them: the checkout in /home/mx/qtsmtpd, one resolver. */
  const asDocumented = (out: string): string =>
    out.replaceAll(repo, '/home/mx/qtsmtpd').replace(/^dns_servers = .*$/m, 'dns_servers = 192.0.2.53:53')

  for (const flags of [['-n'], [], ['-d']]) {
    const command = ['qtsmtpd', 'config', '--config', 'config.sample', ...flags].join(' ')
    test(`${command} prints what docs/operations.md shows`, async () => {
      const { stdout } = await qtsmtpd('config', '--config', 'config.sample', ...flags)
      assert.equal(asDocumented(stdout), documented(command))
    })
  }

  test('a broken configuration gives its errors at file and line (exit 2)', async () => {
    const cfg = adminConfig({ 'smtpd.conf': 'recipient_limit many\nadmin_page_size 0' })
    cleanup.push(cfg.remove)
    const e = await failing('config', '--config', cfg.config)
    assert.equal(e.code, 2)
    assert.match(e.stderr, /smtpd\.conf:1: expected a whole number, got "many"/)
  })
})
