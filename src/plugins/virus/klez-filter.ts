/**
 * virus/klez_filter: qpsmtpd's filter for the Klez worm (2002), not a scanner: in a message of
 * 60,000 bytes or more, a MIME part header `Content-Type: ...audio|application...` among the
 * first 41 body lines, followed there by a line starting with the base64 of a Windows executable
 * header (`TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQA`), refuses the message with "Klez Virus Detected".
 * Kept as qpsmtpd had it; a virus scanner finds Klez and its descendants anyway.
 */
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataPostHook } from '../../host/hook-map.ts'
import { opt } from '../../host/options.ts'
import { pass, reject } from '../../host/verdict.ts'

const MIN_SIZE = 60_000
const LINES = 41
/** The 41 lines are read from at most this much of the body: a line cannot make us read more. */
const MAX_READ = 65_536
const PART = /^Content-type:.*(?:audio|application)/i
const EXECUTABLE = /^TVqQAAMAAAAEAAAA\/\/8AALgAAAAAAAAAQA/

async function firstLines(stream: AsyncIterable<Buffer>): Promise<string[]> {
  let text = ''
  for await (const chunk of stream) {
    text += chunk.toString('latin1')
    if (text.length >= MAX_READ || text.split('\n').length > LINES) break
  }
  return text.slice(0, MAX_READ).split('\n').slice(0, LINES)
}

export default definePlugin({
  name: 'virus/klez-filter',
  aliases: ['virus/klez_filter'],
  description: 'refuse messages that carry the Klez worm the way it was sent in 2002',
  options: { loglevel: opt.loglevel() },
  concurrent: true,
  setup() {
    const dataPost: DataPostHook = async (ctx, msg) => {
      if (msg.size < MIN_SIZE) return pass()
      const body = msg.bodyStream()
      let seenPart = false
      try {
        for (const line of await firstLines(body as AsyncIterable<Buffer>)) {
          if (PART.test(line)) {
            seenPart = true
            continue
          }
          if (seenPart && EXECUTABLE.test(line)) {
            ctx.result('fail', 'Klez signature')
            return reject({ code: 554, enhanced: '5.7.1', text: 'Klez Virus Detected' })
          }
        }
      } finally {
        body.destroy()
      }
      return pass()
    }
    return { hooks: { dataPost } }
  },
})
