/**
 * Type tests of definePlugin, options, keys and the test harness: what the docs promise a
 * plugin author must compile, and the mistakes under `@ts-expect-error` must not.
 */
import {
  accept,
  type Clock,
  type DnsResolver,
  defineKey,
  definePlugin,
  type LogLevelAdjustment,
  type Metrics,
  type Net,
  type OptionsOf,
  opt,
  pass,
  type RcptHook,
  reject,
  type Store,
} from '../../src/index.ts'
import { startTestServer, type TestServerOptions } from '../../src/testing/index.ts'
import type { Equal, Expect } from './assert-type.ts'

const options = {
  users: opt.list({ positional: 0, description: 'local parts we accept' }),
  refuse_others: opt.boolean({ default: false }),
  mode: opt.enum(['strict', 'lenient'], { default: 'strict' }),
  limit: opt.number({ default: 10, min: 0, integer: true }),
  label: opt.string({ default: 'vip' }),
  file: opt.optionalString(),
} as const

// Option values arrive typed, from qpsmtpd arguments and from code alike.
export type OptionTypes = Expect<
  Equal<
    OptionsOf<typeof options>,
    {
      readonly users: readonly string[]
      readonly refuse_others: boolean
      readonly mode: 'strict' | 'lenient'
      readonly limit: number
      readonly label: string
      readonly file: string | undefined
    }
  >
>

export const Seen = defineKey<number>('rcpt/vip-seen', { scope: 'transaction', initial: 0 })

export const vip = definePlugin({
  name: 'rcpt/vip',
  options,
  timeoutMs: 2_000,
  onFailure: 'defer',
  setup({ options, config, log }) {
    log.debug(`${options.users.length} users, rcpthosts: ${config.lines('rcpthosts').length}`)
    // @ts-expect-error an option the schema does not declare
    void options.user
    // @ts-expect-error options are read-only
    options.limit = 5
    const rcpt: RcptHook = (ctx, to) => {
      ctx.set(Seen, ctx.get(Seen) + 1)
      // @ts-expect-error a key holds one type
      ctx.set(Seen, 'one')
      if (options.users.includes(to.address.local)) return accept()
      return options.refuse_others ? reject({ code: 550, enhanced: '5.1.1', text: 'No such VIP' }) : pass()
    }
    return { hooks: { rcpt }, close: async () => {} }
  },
})

// @ts-expect-error onFailure is 'defer' or 'pass'
definePlugin({ name: 'x', options: {}, onFailure: 'accept', setup: () => ({ hooks: {} }) })
// @ts-expect-error a hook name that does not exist
definePlugin({ name: 'x', options: {}, setup: () => ({ hooks: { rcptTo: () => pass() } }) })

// The factory takes typed options (or qpsmtpd-style strings), and nothing else.
export const configured = [vip({ users: ['alice'], refuse_others: true }), vip({ limit: '5' }), vip()]
// @ts-expect-error users is a list
vip({ users: 1 })
// @ts-expect-error an option the plugin does not have
vip({ colour: 'red' })
// @ts-expect-error not one of the enum's values
vip({ mode: true })

// qpsmtpd's per-plugin loglevel arrives parsed.
const archiveOptions = { dir: opt.string({ positional: 0 }), loglevel: opt.loglevel() } as const
export type LogLevelOption = Expect<Equal<OptionsOf<typeof archiveOptions>['loglevel'], LogLevelAdjustment | undefined>>

// A plugin that writes where its arguments say takes the path from the host.
export const archive = definePlugin({
  name: 'queue/archive',
  options: archiveOptions,
  setup({ options, paths }) {
    const root: string = paths.resolve(options.dir)
    // @ts-expect-error paths resolve; there is no join to build paths by hand
    paths.join(paths.base, root)
    return { hooks: {} }
  },
})

// The harness a plugin's tests use.
export async function harness(): Promise<void> {
  const serverOptions: TestServerOptions = { plugins: [vip({ users: ['alice'] })], config: { me: 'mx.test' } }
  const srv = await startTestServer(serverOptions)
  const c = await srv.connect()
  await c.expect(220)
  await c.send('EHLO client.test', 250)
  await c.send('RCPT TO:<carol@mx.test>', /^550 5\.1\.1 /)
  const queued: number = srv.queued.length
  void queued
  await srv.close()
}

// Services follow the manifest: what `requires` names is there; dns and store otherwise may not be.
export const servicesRequired = definePlugin({
  name: 'test/services-required',
  options: {},
  requires: ['dns', 'store'],
  setup({ dns, store, metrics, clock, net }) {
    void (true satisfies Expect<Equal<typeof dns, DnsResolver>>)
    void (true satisfies Expect<Equal<typeof store, Store>>)
    void (true satisfies Expect<Equal<[typeof metrics, typeof clock, typeof net], [Metrics, Clock, Net]>>)
    return { hooks: {} }
  },
})

export const servicesOptional = definePlugin({
  name: 'test/services-optional',
  options: {},
  requires: ['store'],
  setup({ dns, store }) {
    void (true satisfies Expect<Equal<typeof dns, DnsResolver | undefined>>)
    void (true satisfies Expect<Equal<typeof store, Store>>)
    // @ts-expect-error dns is not required, so it may be undefined
    void dns.query('example.com', 'A')
    return { hooks: {} }
  },
})

export const servicesNone = definePlugin({
  name: 'test/services-none',
  options: {},
  setup({ dns, store }) {
    void (true satisfies Expect<Equal<[typeof dns, typeof store], [DnsResolver | undefined, Store | undefined]>>)
    return { hooks: {} }
  },
})

export const servicesTypo = definePlugin({
  name: 'test/services-typo',
  options: {},
  // @ts-expect-error not a service
  requires: ['dnss'],
  setup: () => ({ hooks: {} }),
})

// A factory that requires services still stands in a list of plugins.
export const serviceTestServer = startTestServer({ plugins: [servicesRequired(), servicesNone()] })
