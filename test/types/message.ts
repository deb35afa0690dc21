/**
 * Type tests of the message API: what plugins may do with `msg` and `ctx.transaction` compiles;
 * the spool's lifecycle and in-place envelope changes under `@ts-expect-error` must not.
 */
import { Readable } from 'node:stream'
import type {
  BodySource,
  DataPostHook,
  HeaderField,
  MailFrom,
  Message,
  MessageHeaders,
  QueueHook,
  Transaction,
} from '../../src/index.ts'
import { pass } from '../../src/index.ts'
import type { Equal, Expect } from './assert-type.ts'

export const dataPost: DataPostHook = async (ctx, msg) => {
  const size: number = msg.size + msg.bodySize
  const replaced: boolean = msg.bodyReplaced
  const fields: readonly HeaderField[] = msg.headers.fields
  msg.headers.add('X-A', `${size} ${replaced} ${fields.length}`)
  msg.headers.insert(1, 'X-B', 'b')
  const changed: boolean = msg.headers.change('Subject', 0, 'new')
  const removed: number = msg.headers.remove('X-C') + msg.headers.remove('X-C', 0) + msg.headers.rename('X-D', 'X-E')
  const path: string = await msg.bodyPath()
  await msg.replaceBody('text')
  await msg.replaceBody(Buffer.from(path))
  await msg.replaceBody(Readable.from([Buffer.from('a')]))
  await msg.replaceBody(
    (async function* () {
      yield Buffer.from(`${changed} ${removed}`)
    })(),
  )
  const added: boolean = ctx.transaction.addRecipient('a@b.example', 'NOTIFY=NEVER')
  const gone: number = ctx.transaction.removeRecipient('<c@d.example>')
  const from: MailFrom = ctx.transaction.setSender('<>', 'RET=HDRS')
  msg.stream({ prepend: [Buffer.from(`X-Added: ${added} ${gone} ${from.address === null}\r\n`)] })

  // @ts-expect-error the spool's lifecycle is the core's
  msg.write(Buffer.from('x'))
  // @ts-expect-error the spool's lifecycle is the core's
  await msg.end()
  // @ts-expect-error the spool's lifecycle is the core's
  await msg.cleanup()
  // @ts-expect-error a body is bytes or text
  await msg.replaceBody(42)
  // @ts-expect-error recipients change through addRecipient/removeRecipient only
  ctx.transaction.recipients.push(ctx.transaction.recipients[0])
  // @ts-expect-error the sender changes through setSender only
  ctx.transaction.mailFrom = from
  // @ts-expect-error the header fields are a copy to read
  msg.headers.fields.pop()
  return pass()
}

// Every hook that gets the message gets the same interface.
export const queue: QueueHook = async (_ctx, msg) => {
  msg.stream().resume()
  return pass()
}
export type HooksGetMessage = Expect<Equal<Parameters<QueueHook>[1], Message>>
export type HeadersType = Expect<Equal<Message['headers'], MessageHeaders>>
export type BodySources = Expect<Equal<BodySource, string | Uint8Array | AsyncIterable<Uint8Array>>>
export type TransactionEdits = Expect<
  Equal<Pick<Transaction, 'addRecipient'>['addRecipient'], (address: string, params?: string) => boolean>
>
