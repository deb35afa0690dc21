/**
 * A plugin that answers the client itself: `ctx.respond()` goes with `done()`, in the hooks
 * where a plugin may answer. Every other pairing is a plugin failure that the client sees as a
 * temporary refusal, never as silence until the command timeout nor as two replies to one
 * command; and it is logged with the plugin and the hook.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { answeringHooks } from '../../src/host/answer.ts'
import type { HookContext } from '../../src/host/context.ts'
import { definePlugin } from '../../src/host/define-plugin.ts'
import type { HookName, Hooks } from '../../src/host/hook-map.ts'
import { accept, done, pass, type Verdict } from '../../src/host/verdict.ts'
import { reply } from '../../src/protocol/reply.ts'
import { acceptAllRecipients, type SmtpTestClient, startTestServer, type TestServer } from '../../src/testing/index.ts'

type Behaviour = (ctx: HookContext) => Verdict | Promise<Verdict>

function plugin(hook: HookName, behaviour: Behaviour) {
  return definePlugin({
    name: `test/${hook}`,
    options: {},
    setup: () => ({ hooks: { [hook]: behaviour } as Hooks }),
  })()
}

async function withServer(hook: HookName, behaviour: Behaviour, fn: (srv: TestServer) => Promise<void>) {
  const srv = await startTestServer({
    plugins: [plugin(hook, behaviour), acceptAllRecipients()],
    policies: { authRequiresTls: false },
    config: { xclient_trusted: '127.0.0.1' },
  })
  try {
    await fn(srv)
  } finally {
    await srv.close()
  }
}

const greeted = async (c: SmtpTestClient) => void (await c.expect(220))
const afterEhlo = async (c: SmtpTestClient) => {
  await greeted(c)
  await c.send('EHLO client.test', 250)
}
const afterMail = async (c: SmtpTestClient) => {
  await afterEhlo(c)
  await c.send('MAIL FROM:<s@sender.test>', 250)
}

interface Case {
  readonly hook: HookName
  /** Brings the session up to the command the hook answers. */
  readonly before: (c: SmtpTestClient) => Promise<void>
  /** The command; undefined for the greeting (connect). */
  readonly command: string | undefined
  /** The plugin's own reply, when it answers. */
  readonly answer: number
  /** What the client gets when the plugin fails in this hook. */
  readonly failure: RegExp
  /** Whether the session goes on after a failure. */
  readonly goesOnAfterFailure: boolean
}

const cases: Case[] = [
  {
    hook: 'connect',
    before: async () => {},
    command: undefined,
    answer: 220,
    failure: /^421 4\.3\.0 /,
    goesOnAfterFailure: false,
  },
  {
    hook: 'helo',
    before: greeted,
    command: 'HELO client.test',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  },
  {
    hook: 'ehlo',
    before: greeted,
    command: 'EHLO client.test',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  },
  ...(['mailParse', 'mailPre', 'mail'] as const).map((hook) => ({
    hook,
    before: afterEhlo,
    command: 'MAIL FROM:<s@sender.test>',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  })),
  ...(['rcptParse', 'rcptPre', 'rcpt'] as const).map((hook) => ({
    hook,
    before: afterMail,
    command: 'RCPT TO:<u@local.test>',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  })),
  {
    hook: 'vrfy',
    before: afterEhlo,
    command: 'VRFY u',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  },
  { hook: 'noop', before: afterEhlo, command: 'NOOP', answer: 250, failure: /^451 4\.3\.0 /, goesOnAfterFailure: true },
  { hook: 'help', before: afterEhlo, command: 'HELP', answer: 214, failure: /^451 4\.3\.0 /, goesOnAfterFailure: true },
  {
    hook: 'quit',
    before: afterEhlo,
    command: 'QUIT',
    answer: 221,
    failure: /^221 2\.0\.0 /,
    goesOnAfterFailure: false,
  },
  {
    hook: 'unrecognizedCommand',
    before: afterEhlo,
    command: 'FROB x',
    answer: 250,
    failure: /^451 4\.3\.0 /,
    goesOnAfterFailure: true,
  },
]

/** The reply to the command under test (or the greeting). */
async function drive(c: SmtpTestClient, k: Case): Promise<string> {
  await k.before(c)
  if (k.command !== undefined) await c.send(k.command)
  return (await c.reply()).raw
}

/** The next reply is the one to RSET: nothing else was sent in between. */
async function nothingElseWasSent(c: SmtpTestClient): Promise<void> {
  await c.send('RSET')
  assert.equal((await c.reply()).raw, '250 2.0.0 OK\r\n')
}

const failureLogged = (srv: TestServer, hook: HookName, what: RegExp) =>
  assert.ok(
    srv.logs.some((l) => l.plugin === `test/${hook}` && l.message.includes(`hook ${hook}`) && what.test(l.message)),
    `no log line from test/${hook} matching ${what}: ${JSON.stringify(srv.logs.map((l) => l.message))}`,
  )

describe('ctx.respond() with done()', () => {
  it('the hooks that may answer are exactly those the cases below cover', () => {
    assert.deepEqual([...answeringHooks].sort(), cases.map((k) => k.hook).sort())
  })

  for (const k of cases) {
    describe(k.hook, () => {
      it('respond() and done(): the plugin reply, once', () =>
        withServer(
          k.hook,
          (ctx) => {
            ctx.respond(reply(k.answer, undefined, `answered by ${ctx.plugin}`))
            return done()
          },
          async (srv) => {
            const c = await srv.connect()
            assert.equal(await drive(c, k), `${k.answer} answered by test/${k.hook}\r\n`)
            if (k.hook === 'quit') {
              await c.closed()
              assert.deepEqual(c.pending(), [])
              return
            }
            if (k.hook === 'connect') await c.send('EHLO client.test', 250)
            await nothingElseWasSent(c)
          },
        ))

      it('done() without respond(): a temporary failure, not silence', () =>
        withServer(
          k.hook,
          () => done(),
          async (srv) => {
            const c = await srv.connect()
            assert.match(await drive(c, k), k.failure)
            failureLogged(srv, k.hook, /returned done\(\) without ctx\.respond\(\)/)
            if (k.goesOnAfterFailure) await nothingElseWasSent(c)
            else await c.closed()
            assert.equal(srv.queued.length, 0)
          },
        ))

      it('respond() with another verdict: a temporary failure, not two replies', () =>
        withServer(
          k.hook,
          (ctx) => {
            ctx.respond(reply(k.answer, undefined, 'one reply'))
            return accept()
          },
          async (srv) => {
            const c = await srv.connect()
            assert.match(await drive(c, k), k.failure)
            failureLogged(srv, k.hook, /called ctx\.respond\(\) but returned accept, not done\(\)/)
            if (k.goesOnAfterFailure) await nothingElseWasSent(c)
            else {
              await c.closed()
              assert.deepEqual(c.pending(), [])
            }
          },
        ))
    })
  }
})

describe('where the core answers', () => {
  const upToData = async (c: SmtpTestClient) => {
    await afterMail(c)
    await c.send('RCPT TO:<u@local.test>', 250)
    await c.send('DATA')
    return (await c.reply()).raw
  }
  const upToDataEnd = async (c: SmtpTestClient) => {
    const r = await upToData(c)
    assert.match(r, /^354 /)
    c.write('Subject: t\r\n\r\nbody\r\n.\r\n')
    return (await c.reply()).raw
  }
  const coreAnswers: { hook: HookName; drive: (c: SmtpTestClient) => Promise<string>; failure: RegExp }[] = [
    { hook: 'preConnection', drive: async (c) => (await c.reply()).raw, failure: /^421 4\.3\.0 / },
    { hook: 'data', drive: upToData, failure: /^451 4\.3\.0 / },
    { hook: 'dataHeadersEnd', drive: upToDataEnd, failure: /^451 4\.3\.0 / },
    { hook: 'dataPost', drive: upToDataEnd, failure: /^451 4\.3\.0 / },
    { hook: 'queuePre', drive: upToDataEnd, failure: /^451 4\.3\.0 / },
    {
      hook: 'authPlain',
      drive: async (c) => {
        await afterEhlo(c)
        await c.send(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`)
        return (await c.reply()).raw
      },
      // RFC 4954 §6: AUTH's temporary failure is 454 4.7.0.
      failure: /^454 4\.7\.0 /,
    },
  ]
  for (const k of coreAnswers) {
    it(`${k.hook}: done() is a failure, and nothing is queued`, () =>
      withServer(
        k.hook,
        () => done(),
        async (srv) => {
          const c = await srv.connect()
          assert.match(await k.drive(c), k.failure)
          failureLogged(srv, k.hook, /returned done\(\), but the core answers in this hook/)
          assert.equal(srv.queued.length, 0)
        },
      ))
    it(`${k.hook}: respond() is a failure, and its reply is never sent`, () =>
      withServer(
        k.hook,
        (ctx) => {
          ctx.respond(reply(250, '2.0.0', 'Queued, honest'))
          return done()
        },
        async (srv) => {
          const c = await srv.connect()
          assert.match(await k.drive(c), k.failure)
          failureLogged(srv, k.hook, /hook \w+ cannot answer the client itself/)
          assert.equal(srv.queued.length, 0)
        },
      ))
  }

  it('queue: respond() is a failure, never a 250 without the hand-off', () =>
    withServer(
      'queue',
      (ctx) => {
        ctx.respond(reply(250, '2.0.0', 'Queued, honest'))
        return accept()
      },
      async (srv) => {
        const c = await srv.connect()
        assert.match(await upToDataEnd(c), /^451 4\.3\.0 /)
        failureLogged(srv, 'queue', /hook queue cannot answer the client itself/)
      },
    ))

  it('an observer hook cannot answer: its respond() is logged and the session is unchanged', () =>
    withServer(
      'resetTransaction',
      (ctx) => {
        ctx.respond(reply(250, '2.0.0', 'extra'))
        return pass()
      },
      async (srv) => {
        const c = await srv.connect()
        await afterMail(c)
        await nothingElseWasSent(c)
        assert.ok(srv.logs.some((l) => /hook resetTransaction cannot answer the client itself/.test(l.message)))
      },
    ))
})

describe('respond() misuse', () => {
  const rcptCase = cases.find((k) => k.hook === 'rcpt') as Case
  const misuses: { name: string; behaviour: Behaviour; logged: RegExp }[] = [
    {
      name: 'twice',
      behaviour: (ctx) => {
        ctx.respond(reply(250, '2.1.5', 'one'))
        ctx.respond(reply(250, '2.1.5', 'two'))
        return done()
      },
      logged: /ctx\.respond\(\) was called twice in hook rcpt/,
    },
    {
      name: 'twice, the error caught by the plugin',
      behaviour: (ctx) => {
        ctx.respond(reply(250, '2.1.5', 'one'))
        try {
          ctx.respond(reply(250, '2.1.5', 'two'))
        } catch {}
        return done()
      },
      logged: /ctx\.respond\(\) was called twice in hook rcpt/,
    },
    {
      name: 'a 354, which would start content the core does not expect',
      behaviour: (ctx) => {
        ctx.respond(reply(354, undefined, 'go ahead'))
        return done()
      },
      logged: /reply code 354 is not a final reply/,
    },
    {
      name: 'a code that is no SMTP reply',
      behaviour: (ctx) => {
        ctx.respond({ code: 1250, lines: ['x'] })
        return done()
      },
      logged: /reply code 1250 is not 2xx, 4xx or 5xx/,
    },
    {
      name: 'an enhanced code of another class',
      behaviour: (ctx) => {
        ctx.respond(reply(550, '2.1.5', 'mixed'))
        return done()
      },
      logged: /enhanced code 2\.1\.5 does not fit reply code 550/,
    },
  ]
  for (const m of misuses) {
    it(`${m.name}: 451 4.3.0 and a log line`, () =>
      withServer('rcpt', m.behaviour, async (srv) => {
        const c = await srv.connect()
        assert.match(await drive(c, rcptCase), /^451 4\.3\.0 /)
        failureLogged(srv, 'rcpt', m.logged)
        await nothingElseWasSent(c)
      }))
  }

  it('after the hook returned: logged, never sent', async () => {
    let answerLate: (() => void) | undefined
    await withServer(
      'rcpt',
      (ctx) => {
        answerLate = () => ctx.respond(reply(250, '2.1.5', 'late'))
        return accept()
      },
      async (srv) => {
        const c = await srv.connect()
        assert.match(await drive(c, rcptCase), /^250 2\.1\.5 /)
        answerLate?.()
        await nothingElseWasSent(c)
        assert.ok(
          srv.logs.some((l) => /ctx\.respond\(\) after hook rcpt returned: the reply was not sent/.test(l.message)),
        )
      },
    )
  })
})

describe('answering without respond()', () => {
  it('unrecognizedCommand accept(): 250, the command was taken', () =>
    withServer(
      'unrecognizedCommand',
      () => accept(),
      async (srv) => {
        const c = await srv.connect()
        await afterEhlo(c)
        await c.send('FROB x')
        assert.equal((await c.reply()).raw, '250 2.0.0 OK\r\n')
      },
    ))

  it('XCLIENT: a connect hook that answers itself gives the only greeting', () =>
    withServer(
      'connect',
      (ctx) => {
        ctx.respond(reply(220, undefined, `greeted ${ctx.connection.remote.ip}`))
        return done()
      },
      async (srv) => {
        const c = await srv.connect()
        await c.expect('220 greeted 127.0.0.1\r\n')
        await c.send('EHLO client.test', 250)
        await c.send('XCLIENT ADDR=192.0.2.7')
        assert.equal((await c.reply()).raw, '220 greeted 192.0.2.7\r\n')
        await nothingElseWasSent(c)
      },
    ))
})
