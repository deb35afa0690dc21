/**
 * What reloads cost in memory (issue 18: 5,000 SIGHUPs took RSS from 101 to 254 MiB):
 * `npx node [--expose-gc] bench/reload-memory.ts [reloads] [tls]` reloads a configuration
 * (relay, rcpt_ok, queue/maildir, and the tls plugin unless `tls` is 0) back to back, as SIGHUP
 * does (load a runtime from the directory, swap it in, retire the old one), and prints memory
 * every tenth of the way, then the V8 heap spaces. With --expose-gc it collects every 50
 * reloads, which shows what is retained rather than what awaits collection. No network.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getHeapSpaceStatistics } from 'node:v8'
import { runtimeFromConfigDir } from '../src/server/load-runtime.ts'
import { SmtpServer } from '../src/server/smtp-server.ts'
import { makeCertificate } from '../src/testing/certs.ts'

const reloads = Number(process.argv[2] ?? 2000)
const withTls = process.argv[3] !== '0'
const dir = mkdtempSync(join(tmpdir(), 'qtsmtpd-reload-memory-'))
const config = join(dir, 'config')
mkdirSync(config)
const cert = await makeCertificate('localhost')
const plugins = ['relay', 'rcpt_ok', `queue/maildir ${join(dir, 'maildir')}`]
if (withTls) plugins.unshift(`tls ${cert.certFile} ${cert.keyFile}`)
const files = { me: 'mx.test', rcpthosts: 'example.com', relayclients: '127.0.0.1', spool_dir: join(dir, 'spool') }
for (const [k, v] of Object.entries({ ...files, plugins: plugins.join('\n') })) writeFileSync(join(config, k), `${v}\n`)

const load = () => runtimeFromConfigDir(config, { logWriter: () => {} })
const gc = (globalThis as { gc?: () => void }).gc
const mib = (b: number) => (b / 1048576).toFixed(1)
const report = (n: number) => {
  const m = process.memoryUsage()
  console.log(
    `${String(n).padStart(6)} reloads: RSS ${mib(m.rss)} MiB, heap used ${mib(m.heapUsed)} of ${mib(m.heapTotal)}, ` +
      `external ${mib(m.external)}`,
  )
}

const server = new SmtpServer(await load())
report(0)
for (let i = 1; i <= reloads; i++) {
  server.swapRuntime(await load())
  if (gc !== undefined && i % 50 === 0) gc()
  if (i % Math.max(1, Math.floor(reloads / 10)) === 0) report(i)
}
console.log('V8 heap spaces (MiB size / used):')
for (const s of getHeapSpaceStatistics())
  if (s.space_size > 0) console.log(`  ${s.space_name}: ${mib(s.space_size)} / ${mib(s.space_used_size)}`)
await server.close(0)
await server.runtime.close()
rmSync(dir, { recursive: true, force: true })
rmSync(cert.dir, { recursive: true, force: true })
