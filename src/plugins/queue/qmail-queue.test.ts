import assert from 'node:assert/strict'
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startTestServer, type TestServer } from '../../testing/test-server.ts'
import { acceptRcpt, sendMail, sendMailSession } from '../test-support.ts'
import qmailQueue, { qmailEnvelope, qmailQueueReply } from './qmail-queue.ts'

const standin = resolve(import.meta.dirname, '../../../test/fixtures/qmail-queue-standin')

async function stored(dir: string): Promise<{ msg: Buffer; env: Buffer; meta: Record<string, unknown> }[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.msg')).sort()
  return Promise.all(
    names.map(async (n) => {
      const base = join(dir, n.slice(0, -4))
      return {
        msg: await readFile(`${base}.msg`),
        env: await readFile(`${base}.env`),
        meta: JSON.parse(await readFile(`${base}.json`, 'utf8')) as Record<string, unknown>,
      }
    }),
  )
}

describe('queue/qmail-queue against a conforming stand-in', () => {
  let srv: TestServer
  let out: string
  before(async () => {
    out = await mkdtemp(join(tmpdir(), 'qq-out-'))
    process.env.QQ_OUTDIR = out
    srv = await startTestServer({
      plugins: [acceptRcpt(), qmailQueue({ path: standin, timeout: 2 })],
      memoryQueue: false,
    })
  })
  after(async () => {
    await srv.close()
    delete process.env.QQ_OUTDIR
    await rm(out, { recursive: true, force: true })
  })

  const send = (from: string, to: readonly string[], content: string) => sendMailSession(srv, from, to, content)

  it('writes the message with LF line ends on fd 0 and the envelope on fd 1, byte for byte', async () => {
    const before = (await stored(out)).length
    const body = 'Subject: hello\r\nMessage-ID: <m1@client.test>\r\n\r\nline one\r\n..dotted\r\n'
    const r = await send('a@client.test', ['u1@example.test', 'u2@example.test'], body)
    assert.equal(r.code, 250)
    assert.match(r.raw, /^250 2\.0\.0 Queued! \d+ qp \d+ <m1@client\.test>\r\n$/)
    const all = await stored(out)
    assert.equal(all.length, before + 1)
    const got = all.at(-1)
    assert.ok(got)
    assert.deepEqual(got.env, Buffer.from('Fa@client.test\0Tu1@example.test\0Tu2@example.test\0\0'))
    const text = got.msg.toString('latin1')
    assert.match(text, /^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\n\tby mx\.test \(qtsmtpd\)/)
    assert.ok(text.endsWith('\nSubject: hello\nMessage-ID: <m1@client.test>\n\nline one\n.dotted\n'), text)
    assert.equal(got.meta.TCPREMOTEIP, '127.0.0.1')
  })

  it('passes hostile envelope bytes verbatim, never through a shell', async () => {
    const marker = 'qq-pwned'
    const from = `"x;touch ${marker};$(touch ${marker})\`id\`|-"@client.test`
    const r = await send(from, ['-rf@example.test', `"../../\${run{x}}"@example.test`], 'Subject: x\r\n\r\nx\r\n')
    assert.equal(r.code, 250)
    const got = (await stored(out)).at(-1)
    assert.ok(got)
    assert.deepEqual(got.env, Buffer.from(`F${from}\0T-rf@example.test\0T"../../\${run{x}}"@example.test\0\0`, 'utf8'))
    await assert.rejects(readFile(marker))
  })

  it('an empty sender is F\\0', () => {
    assert.deepEqual(qmailEnvelope('', ['a@b']), Buffer.from('F\0Ta@b\0\0'))
  })

  const cases: { exit: number; want: RegExp }[] = [
    { exit: 11, want: /^554 5\.1\.3 envelope address too long for qq/ },
    { exit: 31, want: /^554 5\.3\.0 mail server permanently rejected message/ },
    { exit: 12, want: /^554 5\.3\.0 qq permanent problem/ },
    { exit: 40, want: /^554 5\.3\.0 qq permanent problem/ },
    { exit: 51, want: /^451 4\.3\.0 qq out of memory/ },
    { exit: 52, want: /^451 4\.3\.0 qq timeout/ },
    { exit: 53, want: /^451 4\.3\.0 qq write error or disk full/ },
    { exit: 54, want: /^451 4\.3\.0 qq read error/ },
    { exit: 55, want: /^451 4\.3\.0 qq unable to read configuration/ },
    { exit: 56, want: /^451 4\.3\.0 qq trouble making network connection/ },
    { exit: 61, want: /^451 4\.3\.0 qq trouble in home directory/ },
    { exit: 62, want: /^451 4\.3\.0 qq trouble creating files in queue/ },
    { exit: 66, want: /^451 4\.3\.0 qq trouble creating files in queue/ },
    { exit: 71, want: /^451 4\.3\.0 mail server temporarily rejected message/ },
    { exit: 72, want: /^451 4\.4\.1 connection to mail server timed out/ },
    { exit: 73, want: /^451 4\.4\.1 connection to mail server rejected/ },
    { exit: 74, want: /^451 4\.4\.2 communication with mail server failed/ },
    { exit: 81, want: /^451 4\.3\.0 qq internal bug/ },
    { exit: 91, want: /^451 4\.3\.0 qq internal bug/ },
    { exit: 1, want: /^451 4\.3\.0 qq temporary problem/ },
    { exit: 41, want: /^451 4\.3\.0 qq temporary problem/ },
    { exit: 120, want: /^451 4\.3\.0 qq temporary problem/ },
  ]
  for (const c of cases) {
    it(`exit ${c.exit} → ${c.want.source.slice(1, 12)}`, async () => {
      const before = (await stored(out)).length
      const r = await send('a@client.test', [`exit-${c.exit}@example.test`], 'Subject: x\r\n\r\nx\r\n')
      assert.match(r.raw, c.want)
      assert.equal((await stored(out)).length, before, 'nothing stored')
    })
  }
  it('the reply table covers every code', () => {
    for (let code = 1; code < 256; code++) {
      const r = qmailQueueReply(code)
      assert.equal(r.code, code >= 11 && code <= 40 ? 554 : 451, String(code))
    }
  })

  it('killed by a signal → 451 qq crashed', async () => {
    const r = await send('a@client.test', ['killme@example.test'], 'Subject: x\r\n\r\nx\r\n')
    assert.match(r.raw, /^451 4\.3\.0 qq crashed/)
  })

  it('a qmail-queue that hangs is killed at the timeout → 451', async () => {
    // "qq timeout" comes only from our timer (2 s here); the stand-in would sleep 10 s.
    const r = await send('a@client.test', ['sleep-10@example.test'], 'Subject: x\r\n\r\nx\r\n')
    assert.match(r.raw, /^451 4\.3\.0 qq timeout/)
  })

  it('a qmail-queue that exits before reading (EPIPE for us) → its exit code decides', async () => {
    process.env.QQ_EARLY = '53'
    try {
      const big = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(1)
      const r = await send('a@client.test', ['u@example.test'], big + `${'y'.repeat(500)}\r\n`.repeat(2000))
      assert.match(r.raw, /^451 4\.3\.0 qq write error or disk full/)
      process.env.QQ_EARLY = '0'
      const r2 = await send('a@client.test', ['u@example.test'], big + `${'y'.repeat(500)}\r\n`.repeat(2000))
      assert.match(r2.raw, /^451 4\.3\.0 qq read error/, 'exit 0 without reading everything is not a success')
    } finally {
      delete process.env.QQ_EARLY
    }
  })

  it('a session survives a refusal and queues the next message', async () => {
    const c = await srv.connect()
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    assert.equal((await sendMail(c, 'a@client.test', ['exit-71@example.test'], 'S: x\r\n\r\nx\r\n')).code, 451)
    assert.equal((await sendMail(c, 'a@client.test', ['ok@example.test'], 'S: x\r\n\r\nx\r\n')).code, 250)
    await c.quit()
  })
})

describe('queue/qmail-queue set-up', () => {
  it('refuses to start when the program is missing', async () => {
    await assert.rejects(
      startTestServer({ plugins: [qmailQueue({ path: '/nonexistent/qmail-queue' })], memoryQueue: false }),
      /missing or not executable/,
    )
  })
  // The program sits in a directory of its own, so the working directory (the checkout) has no copy.
  const installed = async (): Promise<{ root: string; out: string }> => {
    const root = await mkdtemp(join(tmpdir(), 'qq-install-'))
    await mkdir(join(root, 'bin'))
    await copyFile(standin, join(root, 'bin', 'qmail-queue'))
    await chmod(join(root, 'bin', 'qmail-queue'), 0o755)
    const out = join(root, 'out')
    await mkdir(out)
    return { root, out }
  }
  const queuesWith = async (srv: TestServer, out: string) => {
    process.env.QQ_OUTDIR = out
    try {
      const r = await sendMailSession(srv, 'a@client.test', ['u@example.test'], 'Subject: x\r\n\r\nx\r\n')
      assert.match(r.raw, /^250 2\.0\.0 Queued! /)
      assert.equal((await stored(out)).length, 1)
    } finally {
      delete process.env.QQ_OUTDIR
    }
  }

  it('a relative path is taken from the install directory, not the working directory', async () => {
    const { root, out } = await installed()
    const srv = await startTestServer({
      plugins: [acceptRcpt(), qmailQueue({ path: 'bin/qmail-queue' })],
      baseDir: root,
      memoryQueue: false,
    })
    try {
      await queuesWith(srv, out)
      assert.ok(srv.logs.some((e) => e.message === `queueing with ${join(root, 'bin', 'qmail-queue')}`))
    } finally {
      await srv.close()
      await rm(root, { recursive: true, force: true })
    }
  })
  it('a bare program name is looked up in PATH', async () => {
    const { root, out } = await installed()
    const path = process.env.PATH
    process.env.PATH = `${join(root, 'bin')}:${path ?? ''}`
    try {
      const srv = await startTestServer({
        plugins: [acceptRcpt(), qmailQueue({ path: 'qmail-queue' })],
        memoryQueue: false,
      })
      try {
        await queuesWith(srv, out)
      } finally {
        await srv.close()
      }
    } finally {
      process.env.PATH = path
      await rm(root, { recursive: true, force: true })
    }
  })
  it('QMAILQUEUE overrides the argument', async () => {
    process.env.QMAILQUEUE = standin
    try {
      const srv = await startTestServer({
        plugins: [qmailQueue({ path: '/nonexistent/qmail-queue' })],
        memoryQueue: false,
      })
      await srv.close()
    } finally {
      delete process.env.QMAILQUEUE
    }
  })
})
