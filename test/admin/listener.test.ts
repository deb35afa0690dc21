/**
 * Who may use the admin listener: a public address needs a token file (refused at start
 * otherwise); with a token, every route but /healthz needs it (Bearer, or Basic as browsers
 * send it); without one, only loopback Host names are answered (DNS rebinding); a POST needs
 * the X-Qtsmtpd-Admin header (no cross-site form can send it).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, writeFileSync } from 'node:fs'
import { get as httpGet, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { bin, startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { adminConfig, get } from './support.ts'

const run = promisify(execFile)
const cleanup: (() => void)[] = []
after(() => {
  for (const f of cleanup.reverse()) f()
})

describe('the admin listener', { timeout: 60_000 }, () => {
  test('a public address without --admin-token-file is refused at start, naming the fix', async () => {
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    const e = await run(process.execPath, [bin, '--config', cfg.config, '--admin', '0.0.0.0:9025']).then(
      () => assert.fail('started'),
      (err: { code: number; stderr: string }) => err,
    )
    assert.equal(e.code, 1)
    assert.match(e.stderr, /^qtsmtpd: --admin 0\.0\.0\.0:9025: not a loopback address, and no --admin-token-file/)
  })

  test('with a token: 401 without it, 200 with Bearer or Basic; /healthz needs none', async () => {
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    const tokenFile = join(cfg.dir, 'admin-token')
    const token = 'c2VjcmV0LXRva2VuLW9mLXRoZS10ZXN0'
    writeFileSync(tokenFile, `${token}\n`)
    chmodSync(tokenFile, 0o600)
    const [port, admin] = [await freePort(), await freePort()]
    const cli = startCli([
      ...['--config', cfg.config, '--listen', `127.0.0.1:${port}`],
      ...['--admin', `127.0.0.1:${admin}`, '--admin-token-file', tokenFile],
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)

    const refused = await get(admin, '/metrics')
    assert.equal(refused.status, 401)
    assert.equal(refused.headers['www-authenticate'], 'Basic realm="qtsmtpd admin", charset="UTF-8"')
    assert.equal(
      (await get(admin, '/metrics', { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status,
      401,
    )
    assert.equal((await get(admin, '/metrics', { headers: { authorization: `Bearer ${token}` } })).status, 200)
    const basic = Buffer.from(`anyone:${token}`).toString('base64')
    assert.equal((await get(admin, '/', { headers: { authorization: `Basic ${basic}` } })).status, 200)
    // With a token, the Host does not matter (a name in front of it is fine).
    const named = await get(admin, '/api/status', {
      headers: { authorization: `Bearer ${token}`, host: 'mx1.example' },
    })
    assert.equal(named.status, 200)
    const health = await get(admin, '/healthz')
    assert.deepEqual([health.status, health.body], [200, 'ready\n'])
    cli.kill('SIGTERM')
    await cli.exited()
  })

  test('without a token: loopback Host names only, and POSTs only with X-Qtsmtpd-Admin', async () => {
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    const [port, admin] = [await freePort(), await freePort()]
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--admin', `[::1]:${admin}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const at = { host: '::1' }
    const rebound = await get(admin, '/api/status', { ...at, headers: { host: `attacker.example:${admin}` } })
    assert.deepEqual([rebound.status, rebound.body], [403, 'this admin listener answers only to a loopback Host\n'])
    for (const host of [`localhost:${admin}`, `[::1]:${admin}`, `127.0.0.1:${admin}`])
      assert.equal((await get(admin, '/api/status', { ...at, headers: { host } })).status, 200, host)

    const bare = await get(admin, '/api/reload', { ...at, method: 'POST' })
    assert.deepEqual([bare.status, bare.body], [403, 'POST needs the X-Qtsmtpd-Admin header\n'])
    const reload = await get(admin, '/api/reload', { ...at, method: 'POST', headers: { 'x-qtsmtpd-admin': '1' } })
    assert.equal(reload.status, 200)
    assert.deepEqual(JSON.parse(reload.body), { ok: true, message: 'configuration reloaded' })
    await cli.waitFor(/configuration reloaded; new connections use it/)
    cli.kill('SIGTERM')
    await cli.exited()
  })

  test('admin_sse_clients bounds the status pages open at once: one more gets 503', async () => {
    const cfg = adminConfig({ 'smtpd.conf': 'admin_sse_clients 1' })
    cleanup.push(cfg.remove)
    const [port, admin] = [await freePort(), await freePort()]
    const cli = startCli(['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/ready: pid \d+/)
    const first = await new Promise<IncomingMessage>((resolve) => httpGet(`http://127.0.0.1:${admin}/events`, resolve))
    assert.equal(first.statusCode, 200)
    const event = await new Promise<string>((resolve) => {
      let text = ''
      first.on('data', (c: Buffer) => {
        text += c.toString()
        if (text.includes('event: status')) resolve(text)
      })
    })
    assert.match(event, /^retry: 2000\n\nevent: status\ndata: \{"at":/)
    const second = await get(admin, '/events')
    assert.deepEqual([second.status, second.body], [503, 'too many status pages open (admin_sse_clients 1)\n'])
    first.destroy()
    cli.kill('SIGTERM')
    await cli.exited()
  })

  test('a bad admin_* setting stops the start with its file and line (exit 2), with --workers too', async () => {
    for (const workers of [[], ['--workers', '2']]) {
      const cfg = adminConfig({ 'smtpd.conf': 'admin_overload 0' })
      cleanup.push(cfg.remove)
      const admin = await freePort()
      const e = await run(process.execPath, [
        ...[bin, '--config', cfg.config, '--listen', `127.0.0.1:${await freePort()}`],
        ...['--admin', `127.0.0.1:${admin}`, ...workers],
      ]).then(
        () => assert.fail('started'),
        (err: { code: number; stderr: string }) => err,
      )
      assert.equal(e.code, 2, e.stderr)
      assert.match(
        e.stderr,
        /qtsmtpd: \S+\/config\/smtpd\.conf:1: admin_overload: expected a whole number from 1 to 100, got "0"/,
      )
    }
  })
})
