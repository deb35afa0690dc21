/// <reference lib="dom" />
/**
 * The live status page in Debian's headless Chromium, served by a real `qtsmtpd --workers 2
 * --admin`: it loads under its Content-Security-Policy, shows a session the test opens (over
 * either worker), with a HELO holding <script> and a terminal escape shown as text, lists the
 * refused recipient, and updates when the session ends; with 1,000 open sessions it shows the
 * counts and one page of 50, and pages on. Screenshots go to test-artifacts/ (ignored by git).
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { BrowserContext, Page } from 'playwright-core'
import { SmtpTestClient } from '../../src/testing/client.ts'
import { type Cli, killPid, repo, startCli } from '../daemon/harness.ts'
import { freePort } from '../peers/free-port.ts'
import { launchChromium } from './browser.ts'
import { adminConfig, get } from './support.ts'

export const artifacts = join(repo, 'test-artifacts')
const cleanup: (() => unknown)[] = []
after(async () => {
  for (const f of cleanup.reverse()) await f()
})

/**
 * Waits until fn (run in the page) is true. Polled from here with page.evaluate, which runs
 * outside the page's Content-Security-Policy; Playwright's waitForFunction compiles its
 * predicate inside the page, which the policy (no 'unsafe-eval') rightly refuses.
 */
async function until<A>(page: Page, fn: (arg: A) => boolean, arg?: A, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await page.evaluate(fn as (a: unknown) => boolean, arg as unknown))) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${fn.toString()}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

const hostileHelo = '<script>window.pwned=1</script><img\x1b[31msrc=x>'

describe('the status page', { timeout: 120_000 }, () => {
  let cli: Cli
  let port: number
  let admin: number
  let context: BrowserContext
  let page: Page

  before(async () => {
    mkdirSync(artifacts, { recursive: true })
    const cfg = adminConfig()
    cleanup.push(cfg.remove)
    port = await freePort()
    admin = await freePort()
    cli = startCli([
      ...['--config', cfg.config, '--listen', `127.0.0.1:${port}`, '--workers', '2'],
      ...['--max-connections', '1000', '--max-connections-per-ip', '0', '--admin', `127.0.0.1:${admin}`],
    ])
    cleanup.push(() => cli.kill('SIGKILL'))
    await cli.waitFor(/all 2 workers ready/)
    for (const l of cli.lines) {
      const m = /worker \d ready \(pid (\d+)\)/.exec(l)
      if (m) cleanup.push(() => killPid(Number(m[1])))
    }
    const browser = await launchChromium()
    cleanup.push(browser.close)
    context = browser.context
    page = await context.newPage()
  })

  test('loads, shows a session with a hostile HELO as text, and updates when it ends', async () => {
    const csp = (await get(admin, '/')).headers['content-security-policy']
    assert.match(String(csp), /default-src 'none'; script-src 'self'/)
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`http://127.0.0.1:${admin}/`)
    await until(page, () => document.getElementById('health')?.textContent === 'ready')

    const c = await SmtpTestClient.connect(port)
    cleanup.push(() => c.destroy())
    await c.expect(220)
    await c.send(`EHLO ${hostileHelo}`, 250)
    await c.send('MAIL FROM:<a@client.test>', 250)
    await c.send('RCPT TO:<x@elsewhere.test>', 550)
    const shown = hostileHelo.replace('\x1b', '\\x1b')
    await until(
      page,
      (helo: string) => [...document.querySelectorAll('#sessions tbody td')].some((td) => td.textContent === helo),
      shown,
    )
    // The refused recipient, with the same HELO, in the recent verdicts.
    await until(
      page,
      (helo: string) =>
        [...document.querySelectorAll('#verdicts tbody tr')].some(
          (tr) => tr.textContent?.includes(helo) && tr.textContent.includes('550 '),
        ),
      shown,
    )
    assert.equal(await page.evaluate(() => (window as { pwned?: number }).pwned), undefined)
    assert.equal(await page.locator('main script, main img').count(), 0)
    assert.equal(await page.locator('#sessions tbody tr').count(), 1)
    assert.match((await page.locator('#sessions tbody tr').textContent()) ?? '', /mail|rcpt/)
    await page.setViewportSize({ width: 1280, height: 900 })
    await page.screenshot({ path: join(artifacts, 'status-page.png'), fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    await page.screenshot({ path: join(artifacts, 'status-page-phone.png'), fullPage: true })

    await c.send('QUIT', 221)
    c.destroy()
    await until(page, () => document.querySelectorAll('#sessions tbody tr').length === 0)
    assert.equal(await page.locator('#session-count').textContent(), '(0)')
    assert.deepEqual(errors, [])
  })

  test('with 1,000 open sessions it shows the counts and one page of 50, and pages on', async () => {
    const clients: SmtpTestClient[] = []
    cleanup.push(() => {
      for (const c of clients) c.destroy()
    })
    for (let i = 0; i < 1000; i += 50)
      clients.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const c = await SmtpTestClient.connect(port)
            await c.expect(220)
            await c.send(`EHLO client-${i + j}.test`, 250)
            return c
          }),
        )),
      )
    await page.setViewportSize({ width: 1280, height: 900 })
    await until(page, () => document.getElementById('session-count')?.textContent === '(1000)').catch(async (e) => {
      console.log(await page.locator('#session-count').textContent(), await page.locator('#summary').textContent())
      throw e
    })
    assert.equal(await page.locator('#sessions tbody tr').count(), 50)
    assert.equal(await page.locator('#range').textContent(), '1–50 of 1000')
    // The oldest first: the first page holds the first 50 connected.
    assert.match((await page.locator('#sessions tbody tr').first().textContent()) ?? '', /client-\d\d?\.test/)
    await page.click('#next')
    await until(page, () => document.getElementById('range')?.textContent === '51–100 of 1000')
    assert.equal(await page.locator('#sessions tbody tr').count(), 50)
    await page.selectOption('#order', 'newest')
    await until(page, () => document.getElementById('range')?.textContent === '1–50 of 1000')
    assert.match((await page.locator('#sessions tbody tr').first().textContent()) ?? '', /client-9\d\d\.test/)
    // What one update carries is bounded by the page, not by the sessions.
    const status = await get(admin, '/api/status')
    assert.ok(status.body.length < 64 * 1024, `${status.body.length} bytes`)
    assert.equal(JSON.parse(status.body).list.length, 50)
    await page.screenshot({ path: join(artifacts, 'status-page-1000.png') })
    for (const c of clients.splice(0)) c.destroy()
    await until(page, () => document.getElementById('session-count')?.textContent === '(0)')
  })
})
