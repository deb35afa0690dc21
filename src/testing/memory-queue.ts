/**
 * An in-memory queue for tests: keeps every accepted message (envelope and final bytes),
 * so tests can count exactly what reached the queue. Not for production: nothing is durable.
 */
import { definePlugin } from '../host/define-plugin.ts'
import { opt } from '../host/options.ts'
import { accept, defer } from '../host/verdict.ts'
import { formatAddress } from '../protocol/envelope.ts'

export interface QueuedMessage {
  readonly id: string
  readonly from: string
  readonly to: readonly string[]
  readonly data: Buffer
  readonly text: string
}

export function createMemoryQueue() {
  const messages: QueuedMessage[] = []
  const plugin = definePlugin({
    name: 'queue/memory',
    description: 'keeps accepted messages in memory (tests only)',
    options: { fail: opt.enum(['no', 'defer', 'throw'], { default: 'no' }) },
    setup({ options }) {
      return {
        hooks: {
          queue: async (ctx, msg) => {
            if (options.fail === 'defer') return defer('test queue refuses')
            if (options.fail === 'throw') throw new Error('test queue exploded')
            const data = Buffer.concat(await msg.stream().toArray())
            messages.push({
              id: ctx.transaction.id,
              from: formatAddress(ctx.transaction.mailFrom.address),
              to: ctx.transaction.recipients.map((r) => formatAddress(r.address)),
              data,
              text: data.toString('utf8'),
            })
            return accept()
          },
        },
      }
    },
  })
  return { plugin, messages }
}
