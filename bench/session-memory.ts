/**
 * What one session in the middle of a message costs the server, by shape of input (issue 18 F1):
 * `npx node bench/session-memory.ts [shape] [sessions]`, shapes `dots` (DATA, "..\r\n" × 85,000,
 * no final dot), `bdat` (99,000 × "BDAT 1"), `fields` (DATA, "a:\r\n" × 16,000), `folded` (one field
 * of 21,000 blank continuation lines), `normal` (240 KB of 72-octet lines). The server runs in a child
 * process; its heap and Buffer memory are read after a full GC, before the sessions and once they
 * are all held mid-message. Loopback only, bounded by the session count.
 */
import { fork } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { acceptAllRecipients, startTestServer } from '../src/testing/index.ts'

interface Usage {
  readonly heapUsed: number
  readonly arrayBuffers: number
  readonly rss: number
}

const shapes: Record<string, { readonly data: boolean; readonly content: () => Buffer }> = {
  dots: { data: true, content: () => Buffer.from(`\r\n${'..\r\n'.repeat(85_000)}`) },
  bdat: { data: false, content: () => Buffer.from('BDAT 1\r\nx'.repeat(99_000)) },
  fields: { data: true, content: () => Buffer.from('a:\r\n'.repeat(16_000)) },
  folded: { data: true, content: () => Buffer.from(`a:\r\n${' \r\n'.repeat(21_000)}`) },
  normal: {
    data: true,
    content: () => Buffer.from(`Subject: x\r\n\r\n${`${'abcdefghij'.repeat(7)}\r\n`.repeat(3400)}`),
  },
}

async function serve(): Promise<void> {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const srv = await startTestServer({
    plugins: [acceptAllRecipients()],
    logLevel: 3,
    serverLimits: { maxConnections: 10_000, maxConnectionsPerIp: 10_000 },
  })
  const send = (m: unknown) => process.send?.(m)
  send({ port: srv.port })
  process.on('message', async (m) => {
    if (m === 'close') {
      await srv.close()
      process.exit(0)
    }
    for (let i = 0; i < 3; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 50))
    }
    const { heapUsed, arrayBuffers, rss } = process.memoryUsage()
    send({ heapUsed, arrayBuffers, rss })
  })
}

async function openSession(port: number, data: boolean, content: Buffer): Promise<Socket> {
  const s = connect({ port, host: '127.0.0.1' })
  s.on('error', () => {})
  let seen = ''
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!seen.includes(text)) return
        s.off('data', check)
        resolve()
      }
      s.on('data', check)
      check()
    })
  s.on('data', (d: Buffer) => {
    seen = (seen + d.toString('latin1')).slice(-200) // replies are counted, not kept
  })
  await waitFor('220 ')
  s.write('EHLO client.test\r\n')
  await waitFor('250 ')
  s.write('MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@local.test>\r\n')
  await waitFor('Recipient OK')
  if (data) {
    s.write('DATA\r\n')
    await waitFor('354 ')
  }
  s.write(content)
  return s
}

async function measure(shape: string, sessions: number): Promise<void> {
  const spec = shapes[shape]
  if (spec === undefined) throw new Error(`shape: one of ${Object.keys(shapes).join(', ')}`)
  const child = fork(import.meta.filename, ['--serve'])
  const reply = <T>() => new Promise<T>((r) => child.once('message', (m) => r(m as T)))
  const { port } = await reply<{ port: number }>()
  const usage = async () => {
    child.send('measure')
    return reply<Usage>()
  }
  const before = await usage()
  const content = spec.content()
  const sockets: Socket[] = []
  for (let i = 0; i < sessions; i++) sockets.push(await openSession(port, spec.data, content))
  // The server has read everything when its memory stops changing.
  let after = await usage()
  for (let stable = 0, i = 0; stable < 2 && i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000))
    const now = await usage()
    const moved = Math.abs(now.heapUsed + now.arrayBuffers - after.heapUsed - after.arrayBuffers)
    stable = moved < 100_000 ? stable + 1 : 0
    after = now
  }
  const kib = (n: number) => `${Math.round(n / sessions / 1024)} KiB`
  const mb = (n: number) => (n / 1e6).toFixed(1)
  console.log(
    `${shape}, ${sessions} sessions: heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)} MB, ` +
      `Buffers ${mb(before.arrayBuffers)} → ${mb(after.arrayBuffers)} MB, RSS ${mb(before.rss)} → ${mb(after.rss)} MB; ` +
      `per session: heap ${kib(after.heapUsed - before.heapUsed)}, Buffers ${kib(after.arrayBuffers - before.arrayBuffers)}`,
  )
  for (const s of sockets) s.destroy()
  child.send('close')
}

if (process.argv.includes('--serve')) await serve()
else await measure(process.argv[2] ?? 'dots', Number(process.argv[3] ?? 20))
