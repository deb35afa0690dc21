/**
 * connect/quit-fortune (qpsmtpd `quit_fortune`): answers QUIT from a client that said HELO
 * (not EHLO, "probably too sophisticated to enjoy the fun") with a short fortune cookie under
 * the 221. The `fortune -s` program runs with an argument vector, never a shell, with a time
 * and output bound; if it is missing, slow or fails, the usual 221 goes out.
 */
import { execFile } from 'node:child_process'
import { definePlugin } from '../../host/define-plugin.ts'
import type { QuitHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { done, pass } from '../../host/verdict.ts'
import { reply } from '../../protocol/reply.ts'

const MAX_LINES = 20

export default definePlugin({
  name: 'connect/quit-fortune',
  aliases: ['quit_fortune'],
  description: 'a fortune cookie in the 221 reply to QUIT, for HELO clients',
  options: {
    fortune: opt.string({ default: '/usr/games/fortune', description: 'the fortune program' }),
    loglevel: opt.loglevel(),
  },
  timeoutMs: 3_000,
  onFailure: 'pass',
  setup({ options, server }) {
    const fortune = (signal: AbortSignal): Promise<string | undefined> =>
      new Promise((resolve) => {
        execFile(
          options.fortune,
          ['-s'],
          { timeout: 2_000, maxBuffer: 4_096, signal, encoding: 'utf8', shell: false },
          (err, stdout) => resolve(err === null ? stdout : undefined),
        )
      })

    const quit: QuitHook = async (ctx) => {
      if (ctx.connection.helo?.verb === 'EHLO') return pass()
      const text = await fortune(ctx.signal)
      if (text === undefined || text.trim() === '') {
        ctx.result('skip', 'no fortune')
        return pass()
      }
      const lines = text
        .replace(/\n$/, '')
        .split('\n')
        .slice(0, MAX_LINES)
        .map((l) => `  / ${l}`)
      ctx.respond(reply(221, '2.0.0', [`${server.me} closing connection.`, ...lines]))
      return done()
    }
    return { hooks: { quit } }
  },
})
