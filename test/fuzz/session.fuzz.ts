/**
 * Session fuzzers over real TCP against a test server (issue 18 F4, F5):
 * `node test/fuzz/session.fuzz.ts [seconds] [seed]`.
 *
 * - Bare-LF dialogues: a client that waits for each reply sends random command lines ended by
 *   CRLF, a bare LF, or holding a bare CR or LF inside, and content after a 354. Invariant: every
 *   command line gets a reply or the session ends, within a bound far below command_timeout.
 * - Overshooting pipelines: MAIL, a random number of RCPTs around recipient_limit (some refused)
 *   and DATA in one write, against random recipient, overshoot and error limits. Invariant: the
 *   replies are exactly what a model of recipient_limit, recipient_overshoot_limit and
 *   hard_error_limit predicts, and a session that reaches DATA stores its accepted recipients.
 * Seeded, so a failure prints a seed and the dialogue that reproduce it.
 */
import { setImmediate } from 'node:timers/promises'
import type { Limits } from '../../src/session/settings.ts'
import { acceptAllRecipients, SmtpTestClient, startTestServer, type TestServer } from '../../src/testing/index.ts'
import { forSeconds, pick, rng } from './random.ts'

/** Far below command_timeout (300 s): a client waiting this long was silenced. */
const REPLY_BOUND_MS = 5000

const COMMANDS = [
  'EHLO client.test',
  'HELO client.test',
  'MAIL FROM:<a@remote.test>',
  'RCPT TO:<u@local.test>',
  'RCPT TO:<>',
  'DATA',
  'RSET',
  'NOOP',
  'VRFY u',
  'HELP',
  '',
  'XYZZY',
  'MAIL FROM:<a@remote.test> SIZE=x',
  `EHLO ${'a'.repeat(300)}`,
  'x'.repeat(600),
  'QUIT',
]
const CONTENT = ['Subject: fuzz', '', 'body', '.', '..dot', `${'y'.repeat(80)}`]

/** A line with a random ending: CRLF mostly, else a bare LF; sometimes a bare CR or LF inside. */
function randomLine(rand: () => number, text: string): string {
  let line = text
  if (rand() < 0.15) {
    const at = Math.floor(rand() * (line.length + 1))
    line = line.slice(0, at) + pick(rand, ['\r', '\n', '\n\n', '\r\r\n']) + line.slice(at)
  }
  return line + (rand() < 0.65 ? '\r\n' : '\n')
}

/** One dialogue; returns a description of the broken invariant, or undefined. */
async function bareLfDialogue(srv: TestServer, rand: () => number, sent: string[]): Promise<string | undefined> {
  const c = await SmtpTestClient.connect(srv.port)
  try {
    await c.expect(220)
    let inData = false
    // Only <CRLF>.<CRLF> ends the content; the 354 came after the CRLF of DATA.
    let atLineStart = false
    const n = 1 + Math.floor(rand() * 15)
    for (let i = 0; i < n && !c.isClosed; i++) {
      if (inData) {
        const line = rand() < 0.2 ? '\r\n.\r\n' : randomLine(rand, pick(rand, CONTENT))
        sent.push(line)
        c.write(line)
        const ends = line === '\r\n.\r\n' || (atLineStart && line === '.\r\n')
        atLineStart = line.endsWith('\r\n')
        if (!ends) continue
        inData = false
      } else {
        while (c.pending().length > 0) await c.reply()
        const line = randomLine(rand, pick(rand, COMMANDS))
        sent.push(line)
        c.write(line)
      }
      try {
        const r = await c.reply(REPLY_BOUND_MS)
        inData = r.code === 354
        atLineStart = true
      } catch (e) {
        if (!c.isClosed) return `silenced: ${(e as Error).message}`
      }
    }
    return undefined
  } finally {
    c.destroy()
  }
}

/** Bare-LF dialogues for about `seconds`; throws with the seed and dialogue on the first failure. */
export async function fuzzBareLfDialogues(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const srv = await startTestServer({ plugins: [acceptAllRecipients()], timeouts: { errorDelayMs: 0 }, logLevel: 2 })
  let iterations = 0
  try {
    const more = forSeconds(seconds)
    while (more()) {
      const sent: string[] = []
      const broken = await bareLfDialogue(srv, rand, sent)
      iterations++
      if (broken !== undefined)
        throw new Error(`bare-LF dialogue: ${broken}\nseed=${seed} iteration=${iterations}\n${JSON.stringify(sent)}`)
      await setImmediate()
    }
  } finally {
    await srv.close()
  }
  return { iterations }
}

type OvershootLimits = Pick<Limits, 'recipients' | 'recipientOvershoot' | 'hardErrors'>

/** The reply codes a pipelined MAIL, RCPTs (true: a valid one) and DATA must get, per the limits. */
export function expectedOvershootReplies(
  rcpts: readonly boolean[],
  l: OvershootLimits,
): { codes: number[]; accepted: number } {
  const codes = [250]
  let accepted = 0
  let errors = 0
  let overshoot = 0
  // Session.error: the error that reaches the hard limit is answered with 421 instead.
  const error = (code: number): boolean => {
    errors++
    codes.push(errors >= l.hardErrors ? 421 : code)
    return errors < l.hardErrors
  }
  for (const valid of rcpts) {
    let goOn = true
    if (accepted >= l.recipients) {
      if (++overshoot <= l.recipientOvershoot) codes.push(452)
      else goOn = error(452)
    } else if (!valid) goOn = error(501)
    else {
      accepted++
      codes.push(250)
    }
    if (!goOn) return { codes, accepted }
  }
  if (accepted === 0) error(554)
  else codes.push(354)
  return { codes, accepted }
}

/** Overshooting pipelines for about `seconds`; throws with the seed and case on the first failure. */
export async function fuzzOvershoot(seconds: number, seed = Date.now()): Promise<{ iterations: number }> {
  const rand = rng(seed)
  const limits: OvershootLimits = {
    recipients: 1 + Math.floor(rand() * 8),
    recipientOvershoot: Math.floor(rand() * 6),
    hardErrors: 2 + Math.floor(rand() * 6),
  }
  const srv = await startTestServer({
    plugins: [acceptAllRecipients()],
    limits: { ...limits, softErrors: 1000 },
    timeouts: { errorDelayMs: 0 },
    logLevel: 2,
  })
  let iterations = 0
  try {
    const more = forSeconds(seconds)
    while (more()) {
      const count = Math.floor(rand() * (limits.recipients + limits.recipientOvershoot + limits.hardErrors + 2))
      const rcpts = Array.from({ length: count }, () => rand() >= 0.15)
      const want = expectedOvershootReplies(rcpts, limits)
      const fail = (what: string): never => {
        throw new Error(
          `overshoot: ${what}\nseed=${seed} iteration=${iterations} limits=${JSON.stringify(limits)}` +
            ` rcpts=${JSON.stringify(rcpts)}\nwant=${JSON.stringify(want)}`,
        )
      }
      const stored = srv.queued.length
      const c = await SmtpTestClient.connect(srv.port)
      try {
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        const group = rcpts.map((valid, i) => (valid ? `RCPT TO:<u${i}@local.test>\r\n` : 'RCPT TO:<>\r\n'))
        c.write(`MAIL FROM:<a@remote.test>\r\n${group.join('')}DATA\r\n`)
        const got: number[] = []
        for (const _ of want.codes) {
          try {
            got.push((await c.reply(REPLY_BOUND_MS)).code)
          } catch (e) {
            fail(`after ${JSON.stringify(got)}: ${(e as Error).message}`)
          }
        }
        if (JSON.stringify(got) !== JSON.stringify(want.codes)) fail(`got ${JSON.stringify(got)}`)
        if (want.codes.at(-1) === 354) {
          await c.send('Subject: overshoot\r\n\r\nx\r\n.', 250, REPLY_BOUND_MS).catch(() => fail('no 250 after data'))
          const msg = srv.queued.at(-1)
          if (srv.queued.length !== stored + 1 || msg?.to.length !== want.accepted)
            fail(`stored ${srv.queued.length - stored} message(s), recipients ${msg?.to.length}`)
        } else if (srv.queued.length !== stored) fail('stored a message without DATA')
      } finally {
        c.destroy()
      }
      iterations++
      await setImmediate()
    }
  } finally {
    await srv.close()
  }
  return { iterations }
}

if (import.meta.main) {
  const seconds = Number(process.argv[2] ?? 3)
  const seed = process.argv[3] === undefined ? Date.now() : Number(process.argv[3])
  const a = await fuzzBareLfDialogues(seconds, seed)
  const b = await fuzzOvershoot(seconds, seed)
  console.log(`session fuzz: ${a.iterations} dialogues, ${b.iterations} pipelines, seed ${seed}, no failures`)
}
