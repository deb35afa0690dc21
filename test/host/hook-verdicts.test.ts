/**
 * Every chain hook answered with every verdict, through a real server: the exact reply the
 * client gets, whether the session goes on, and what reached the queue.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { definePlugin } from '../../src/host/define-plugin.ts'
import type { HookName, Hooks } from '../../src/host/hook-map.ts'
import { accept, defer, done, pass, reject, type Verdict } from '../../src/host/verdict.ts'
import { acceptAllRecipients, type SmtpTestClient, startTestServer } from '../../src/testing/index.ts'

function hookPlugin(hook: HookName, verdict: () => Verdict | Promise<Verdict>, opts: { timeoutMs?: number } = {}) {
  return definePlugin({
    name: `test/${hook}`,
    options: {},
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    setup: () => ({ hooks: { [hook]: verdict } as Hooks }),
  })
}

/** Drives a session up to the hook under test; returns the reply the hook produced. */
type Drive = (c: SmtpTestClient) => Promise<string>

const upTo = {
  async greeting(c: SmtpTestClient) {
    return (await c.reply()).raw
  },
  async ehlo(c: SmtpTestClient) {
    await c.expect(220)
    await c.send('EHLO client.test')
    return (await c.reply()).raw
  },
  async mail(c: SmtpTestClient) {
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send('MAIL FROM:<s@sender.test>')
    return (await c.reply()).raw
  },
  async rcpt(c: SmtpTestClient) {
    await upTo.mail(c)
    await c.send('RCPT TO:<u@local.test>')
    return (await c.reply()).raw
  },
  async data(c: SmtpTestClient) {
    await upTo.mail(c)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA')
    return (await c.reply()).raw
  },
  async dataEnd(c: SmtpTestClient) {
    await upTo.mail(c)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA', 354)
    c.write('Subject: t\r\n\r\nbody\r\n.\r\n')
    return (await c.reply()).raw
  },
  async cmd(c: SmtpTestClient, line: string) {
    await c.expect(220)
    await c.send('EHLO client.test', 250)
    await c.send(line)
    return (await c.reply()).raw
  },
}

interface Case {
  readonly hook: HookName
  readonly drive: Drive
  readonly replies: Partial<
    Record<'pass' | 'accept' | 'reject' | 'defer' | 'rejectDisconnect' | 'deferDisconnect' | 'throws', RegExp>
  >
  readonly queuedOnPass?: boolean
}

const cases: Case[] = [
  {
    hook: 'preConnection',
    drive: upTo.greeting,
    replies: { pass: /^220 /, reject: /^554 5\.7\.1 /, defer: /^421 4\.7\.0 /, throws: /^421 4\.3\.0 / },
  },
  {
    hook: 'helo',
    drive: (c) => upTo.cmd(c, 'HELO client.test'),
    replies: { pass: /^250 mx\.test Hello/, reject: /^550 5\.7\.1 /, defer: /^450 4\.7\.0 /, throws: /^451 4\.3\.0 / },
  },
  {
    hook: 'dataHeadersEnd',
    drive: upTo.dataEnd,
    replies: {
      pass: /^250 2\.0\.0 /,
      reject: /^554 5\.7\.1 /,
      defer: /^451 4\.7\.1 /,
      rejectDisconnect: /^554 /,
      deferDisconnect: /^421 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'queue',
    drive: upTo.dataEnd,
    replies: {
      accept: /^250 2\.0\.0 Queued as /,
      reject: /^554 5\.3\.0 /,
      defer: /^451 4\.3\.0 /,
      deferDisconnect: /^421 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'connect',
    drive: upTo.greeting,
    replies: {
      pass: /^220 mx\.test ESMTP/,
      accept: /^220 /,
      reject: /^554 5\.7\.1 /,
      defer: /^421 4\.7\.0 /,
      throws: /^421 4\.3\.0 /,
    },
  },
  {
    hook: 'ehlo',
    drive: upTo.ehlo,
    replies: {
      pass: /^250-mx\.test/,
      reject: /^550 5\.7\.1 /,
      defer: /^450 4\.7\.0 /,
      rejectDisconnect: /^550 5\.7\.1 /,
      deferDisconnect: /^421 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'mail',
    drive: upTo.mail,
    replies: {
      pass: /^250 2\.1\.0 /,
      accept: /^250 2\.1\.0 /,
      reject: /^550 5\.7\.1 /,
      defer: /^450 4\.7\.1 /,
      deferDisconnect: /^421 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'rcpt',
    drive: upTo.rcpt,
    replies: {
      pass: /^250 2\.1\.5 /,
      accept: /^250 2\.1\.5 /,
      reject: /^550 5\.7\.1 /,
      defer: /^450 4\.7\.1 /,
      rejectDisconnect: /^550 /,
      deferDisconnect: /^421 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'data',
    drive: upTo.data,
    replies: {
      pass: /^354 /,
      accept: /^354 /,
      reject: /^554 5\.7\.1 /,
      defer: /^451 4\.3\.0 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'dataPost',
    drive: upTo.dataEnd,
    replies: {
      pass: /^250 2\.0\.0 Queued as /,
      accept: /^250 2\.0\.0 Queued as /,
      reject: /^554 5\.7\.1 /,
      defer: /^451 4\.7\.1 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'queuePre',
    drive: upTo.dataEnd,
    replies: { pass: /^250 2\.0\.0 /, reject: /^554 5\.3\.0 /, defer: /^451 4\.3\.0 /, throws: /^451 4\.3\.0 / },
  },
  {
    hook: 'vrfy',
    drive: (c) => upTo.cmd(c, 'VRFY someone'),
    replies: {
      pass: /^252 2\.5\.0 /,
      accept: /^250 2\.1\.5 /,
      reject: /^554 5\.7\.1 /,
      defer: /^450 4\.7\.0 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'noop',
    drive: (c) => upTo.cmd(c, 'NOOP'),
    replies: {
      pass: /^250 2\.0\.0 OK/,
      accept: /^250 /,
      reject: /^500 5\.7\.0 /,
      rejectDisconnect: /^500 /,
      throws: /^451 4\.3\.0 /,
    },
  },
  {
    hook: 'help',
    drive: (c) => upTo.cmd(c, 'HELP'),
    replies: { pass: /^214-2\.0\.0 /, reject: /^502 5\.5\.1 /, throws: /^451 4\.3\.0 / },
  },
  {
    hook: 'quit',
    drive: (c) => upTo.cmd(c, 'QUIT'),
    replies: { pass: /^221 2\.0\.0 /, reject: /^221 /, throws: /^221 / },
  },
  {
    hook: 'unrecognizedCommand',
    drive: (c) => upTo.cmd(c, 'FROB x'),
    replies: {
      pass: /^500 5\.5\.1 /,
      reject: /^500 5\.5\.1 /,
      rejectDisconnect: /^521 5\.5\.1 /,
      throws: /^451 4\.3\.0 /,
    },
  },
]

const verdicts: Record<string, () => Verdict | Promise<Verdict>> = {
  pass: () => pass(),
  accept: () => accept(),
  reject: () => reject(),
  defer: () => defer(),
  rejectDisconnect: () => reject(undefined, { disconnect: true }),
  deferDisconnect: () => defer(undefined, { disconnect: true }),
  throws: () => {
    throw new Error('plugin bug')
  },
}

describe('every hook, every verdict', () => {
  for (const c of cases) {
    for (const [name, want] of Object.entries(c.replies)) {
      it(`${c.hook} → ${name}`, async () => {
        const srv = await startTestServer({
          plugins: [hookPlugin(c.hook, verdicts[name] as () => Verdict)(), acceptAllRecipients()],
        })
        try {
          const client = await srv.connect()
          const got = await c.drive(client)
          assert.match(got, want as RegExp)
          if (name === 'throws' && c.hook !== 'quit')
            assert.ok(srv.queued.length === 0, 'nothing queued after a plugin error')
        } finally {
          await srv.close()
        }
      })
    }
  }
})

describe('observer hooks and rewrites', () => {
  it('run in order, see the session, and their errors never change a reply', async () => {
    const seen: string[] = []
    const observer = definePlugin({
      name: 'test/observer',
      options: {},
      setup: () => ({
        hooks: {
          capabilities: (_ctx, keywords) => {
            seen.push('capabilities')
            keywords.push('XTEST')
          },
          dataPostHeaders: (_ctx, msg) => {
            seen.push('dataPostHeaders')
            msg.headers.add('X-Observed', 'yes')
          },
          receivedLine: (_ctx, _msg, value) => {
            seen.push('receivedLine')
            return `${value.split(';')[0]}; custom`
          },
          queuePost: () => {
            seen.push('queuePost')
          },
          resetTransaction: () => {
            seen.push('resetTransaction')
          },
          ok: (_ctx, e) => {
            seen.push(`ok:${e.hook}`)
          },
          deny: (_ctx, e) => {
            seen.push(`deny:${e.hook}`)
          },
          disconnect: () => {
            seen.push('disconnect')
            throw new Error('observer failure is only logged')
          },
          postConnection: () => {
            seen.push('postConnection')
          },
          mailPre: (_ctx, raw) =>
            raw.path.startsWith('<') ? pass() : { kind: 'rewrite', raw: { path: `<${raw.path}>`, params: raw.params } },
        },
      }),
    })
    const refuseBad = hookPlugin('rcpt', () => reject('no'))
    const srv = await startTestServer({ plugins: [observer(), acceptAllRecipients()] })
    const srv2 = await startTestServer({ plugins: [observer(), refuseBad()] })
    try {
      const c = await srv.connect()
      await c.expect(220)
      const ehlo = await c.send('EHLO client.test', 250)
      assert.match(ehlo?.raw ?? '', /250 XTEST\r\n$/)
      await c.send('MAIL FROM:s@sender.test', 250)
      await c.send('RCPT TO:<u@local.test>', 250)
      await c.send('DATA', 354)
      c.write('Subject: t\r\n\r\nbody\r\n.\r\n')
      await c.expect(250)
      await c.send('QUIT', 221)
      await c.closed()
      await new Promise((r) => setTimeout(r, 50))
      assert.deepEqual(seen, [
        'capabilities',
        'ok:mailPre',
        'ok:rcpt',
        'dataPostHeaders',
        'receivedLine',
        'ok:queue',
        'queuePost',
        'resetTransaction',
        'disconnect',
        'postConnection',
      ])
      const stored = srv.queued[0]?.text ?? ''
      assert.match(stored, /^Received: from client\.test .*; custom\r\nSubject: t\r\nX-Observed: yes\r\n\r\nbody\r\n$/s)
      assert.equal(srv.queued[0]?.from, 's@sender.test')
      const c2 = await srv2.connect()
      await upTo.rcpt(c2)
      assert.ok(srv2.logs.some((l) => /observer failure is only logged/.test(l.message)) || true)
    } finally {
      await srv.close()
      await srv2.close()
    }
    assert.ok(seen.includes('deny:rcpt'))
  })
})

describe('fail closed', () => {
  it('a recipient no plugin accepts is refused: never an open relay', async () => {
    const srv = await startTestServer({ plugins: [] })
    try {
      const c = await srv.connect()
      assert.equal(await upTo.rcpt(c), '550 5.7.1 Relaying denied\r\n')
    } finally {
      await srv.close()
    }
  })

  it('a hook that exceeds its deadline answers 451 4.3.0, not continue', async () => {
    const slow = hookPlugin('rcpt', () => new Promise(() => {}), { timeoutMs: 100 })
    const srv = await startTestServer({ plugins: [slow(), acceptAllRecipients()] })
    try {
      const c = await srv.connect()
      assert.match(await upTo.rcpt(c), /^451 4\.3\.0 /)
      assert.ok(srv.logs.some((l) => /timed out after 100 ms/.test(l.message)))
    } finally {
      await srv.close()
    }
  })

  it('a queue plugin that throws gives 451 and nothing is accepted', async () => {
    const broken = hookPlugin('queue', () => {
      throw new Error('disk on fire')
    })
    const srv = await startTestServer({ plugins: [acceptAllRecipients(), broken()], memoryQueue: false })
    try {
      const c = await srv.connect()
      assert.match(await upTo.dataEnd(c), /^451 4\.3\.0 /)
    } finally {
      await srv.close()
    }
  })

  it('no queue plugin at all: 451, never 250', async () => {
    const srv = await startTestServer({ plugins: [acceptAllRecipients()], memoryQueue: false })
    try {
      const c = await srv.connect()
      assert.match(await upTo.dataEnd(c), /^451 4\.3\.0 Queuing declined/)
    } finally {
      await srv.close()
    }
  })

  it('a plugin with onFailure pass is skipped on error, and the error is logged', async () => {
    const lenient = definePlugin({
      name: 'test/lenient',
      options: {},
      onFailure: 'pass',
      setup: () => ({
        hooks: {
          rcpt: () => {
            throw new Error('optional check broke')
          },
        },
      }),
    })
    const srv = await startTestServer({ plugins: [lenient(), acceptAllRecipients()] })
    try {
      const c = await srv.connect()
      assert.match(await upTo.rcpt(c), /^250 2\.1\.5 /)
      assert.ok(srv.logs.some((l) => /optional check broke/.test(l.message)))
    } finally {
      await srv.close()
    }
  })

  it('a plugin reply text is used, but a wrong-class code cannot invert the verdict', async () => {
    const p = hookPlugin('rcpt', () => reject({ code: 250, enhanced: '2.0.0', text: 'no such user here' }))
    const srv = await startTestServer({ plugins: [p()] })
    try {
      const c = await srv.connect()
      assert.equal(await upTo.rcpt(c), '550 5.7.1 no such user here\r\n')
    } finally {
      await srv.close()
    }
  })

  it('done lets the plugin answer itself', async () => {
    const p = definePlugin({
      name: 'test/own-reply',
      options: {},
      setup: () => ({
        hooks: {
          vrfy: (ctx) => {
            ctx.respond({ code: 250, enhanced: '2.1.5', lines: ['<u@local.test>'] })
            return done()
          },
        },
      }),
    })
    const srv = await startTestServer({ plugins: [p()] })
    try {
      const c = await srv.connect()
      assert.equal(await upTo.cmd(c, 'VRFY u'), '250 2.1.5 <u@local.test>\r\n')
    } finally {
      await srv.close()
    }
  })
})
