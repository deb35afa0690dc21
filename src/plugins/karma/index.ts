/**
 * karma (qpsmtpd `karma`): remembers each client's nice and naughty connections. Plugins add to
 * or take from a connection's karma (`adjustKarma`: dnsbl listings, early talking, spam scores,
 * AUTH failures, whitelists); at the end of the connection, `strikes` below zero is a naughty
 * connection and a client whose history (nice minus naughty) reaches `-negative` is refused for
 * `penalty_days` (`reject`). The history is the `KarmaHistory` key, read by hosts_allow (more
 * or fewer connections), earlytalker (no wait for good clients) and limit; a client with no good
 * history or karma may give one recipient per transaction. Records live in the store (shared by
 * workers, and by nodes on Redis); when it cannot answer, karma carries on without history.
 */

import type { ConfigLine } from '../../config/config-dir.ts'
import { ConfigError, ConfigErrorCode } from '../../config/config-error.ts'
import type { HookContext } from '../../host/context.ts'
import {
  adjustKarma,
  failedCheck,
  isImmune,
  isNaughty,
  Karma,
  KarmaHistory,
  rejectAs,
  rejectTypes,
} from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { HookMap, Hooks, RawPath } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import { openPluginStore, type Store, StoreUnavailable } from '../../store/index.ts'
import {
  afterConnection,
  emptyRecord,
  formatKarmaRecord,
  historyOf,
  type KarmaRecord,
  karmaKey,
  parseKarmaRecord,
  penaltyLeft,
} from './record.ts'

/** The client's record as read at pre-connection (undefined: none, or the store did not answer). */
const Record = defineKey<{ readonly raw: string | undefined; readonly record: KarmaRecord } | undefined>(
  'karma/record',
  { scope: 'connection', initial: undefined },
)

const DAY_MS = 86_400_000

/** `karma_tlds` lines `tld:±n` (qpsmtpd); a bad line names its place. */
function parseTlds(lines: readonly ConfigLine[]): ReadonlyMap<string, number> {
  const out = new Map<string, number>()
  for (const l of lines) {
    const m = /^\s*\.?([A-Za-z0-9.-]+)\s*:\s*([+-]?\d+)\s*$/.exec(l.text)
    if (!m)
      throw new ConfigError(ConfigErrorCode.Syntax, l.file, l.line, `expected "tld:±n", got ${JSON.stringify(l.text)}`)
    out.set((m[1] as string).toLowerCase(), Number(m[2]))
  }
  return out
}

export default definePlugin({
  name: 'karma',
  description: 'remember nice and naughty clients; refuse those in the penalty box',
  requires: ['store'],
  timeoutMs: 10_000,
  options: {
    negative: opt.number({
      default: 1,
      min: 1,
      integer: true,
      description: 'history at which a naughty client is penalized',
    }),
    strikes: opt.number({
      default: 3,
      min: 1,
      integer: true,
      description: 'karma that makes a connection nice or naughty',
    }),
    penalty_days: opt.number({
      default: 1,
      min: 0,
      description: 'days a penalized client is refused (decimals allowed)',
    }),
    reject: opt.enum(['0', '1', 'connect', 'naughty'], {
      default: 'naughty',
      description: '0 logs, 1 or connect refuses at connect, naughty leaves it to the naughty plugin',
    }),
    reject_type: opt.enum(rejectTypes, { default: 'disconnect', description: 'how a refusal is sent' }),
    limit_recipients: opt.number({
      default: 1,
      min: 0,
      integer: true,
      description: 'recipients per transaction for clients without good history or karma (0: no limit)',
    }),
    history_days: opt.number({
      default: 365,
      min: 1,
      description: 'days a record is kept after the last connection that changed it',
    }),
    db_dir: opt.optionalString({ description: 'keep the records in an SQLite file in this directory' }),
    redis: opt.optionalString({ description: 'keep the records in this Redis (host[:port] or redis:// URL)' }),
    nfslock: opt.boolean({ default: false, description: 'accepted for qpsmtpd configurations: no lock is needed' }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'when the store cannot answer: carry on without history (pass) or defer (451 4.3.0)',
    }),
    loglevel: opt.loglevel(),
  },
  async setup(api) {
    const { options, config, clock, paths, log } = api
    const tlds = parseTlds(config.located('karma_tlds'))
    const own = await openPluginStore(
      { db_dir: options.db_dir === undefined ? undefined : paths.resolve(options.db_dir), redis: options.redis },
      { name: api.name, baseDir: paths.resolve('.'), onWarning: (m) => log.warn(m) },
    )
    const store: Store = own?.scope('karma') ?? api.store
    const policy = {
      reject: options.reject === 'connect' ? '1' : options.reject,
      reject_type: options.reject_type,
    } as const
    const now = () => Math.floor(clock.now() / 1000)
    const ttlMs = (r: KarmaRecord) =>
      Math.round(
        Math.max(0, (r.penaltyStart + options.penalty_days * 86_400 - now()) * 1000) + options.history_days * DAY_MS,
      )

    const preConnection: HookMap['preConnection'] = async (ctx) => {
      const key = karmaKey(ctx.connection.remote.ip)
      if (key === undefined) return pass()
      try {
        const raw = await store.get(key)
        const record = parseKarmaRecord(raw) ?? emptyRecord
        ctx.connection.notes.set(Record, { raw, record })
        const history = historyOf(record)
        ctx.connection.notes.set(KarmaHistory, history)
        if (history > 10) adjustKarma(ctx, 1)
        return pass()
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        return failedCheck(ctx, options, 'karma', e.message)
      }
    }

    const connect: HookMap['connect'] = async (ctx) => {
      if (isImmune(ctx)) return pass()
      const seen = ctx.connection.notes.get(Record)
      if (seen === undefined) return pass()
      const { record } = seen
      const summary = `${record.naughty} naughty, ${record.nice} nice, ${record.connects} connects`
      const left = penaltyLeft(record, now(), options.penalty_days)
      if (left === 0) {
        ctx.result('pass', `no penalty (${summary})`)
        return pass()
      }
      const next = { ...record, connects: record.connects + 1 }
      ctx.connection.notes.set(Record, { raw: formatKarmaRecord(next), record: next })
      try {
        await store.set(karmaKey(ctx.connection.remote.ip)!, formatKarmaRecord(next), { ttlMs: ttlMs(next) })
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        ctx.log.warn(`karma: penalized connection not counted: ${e.message}`)
      }
      return rejectAs(ctx, policy, `You were naughty. You cannot connect for ${left.toFixed(2)} more days.`, {
        perm: [554, '5.7.1'],
        temp: [421, '4.7.0'],
      })
    }

    // qpsmtpd: an address not in angle brackets (FROM:<...>) costs two points.
    const checkPath = (ctx: HookContext, raw: RawPath): Verdict => {
      if (!raw.path.startsWith('<')) {
        adjustKarma(ctx, -2)
        ctx.result('info', 'envelope address without angle brackets')
      }
      return pass()
    }

    const mail: HookMap['mail'] = (ctx, from) => {
      const domain = from.address?.domain?.toLowerCase()
      if (domain === undefined) return pass()
      for (const [tld, score] of tlds) {
        if (domain === tld || domain.endsWith(`.${tld}`)) {
          adjustKarma(ctx, score)
          ctx.result('info', `karma ${score > 0 ? '+' : ''}${score} for .${tld} sender`)
        }
      }
      return pass()
    }

    const rcpt: HookMap['rcpt'] = (ctx) => {
      if (options.limit_recipients === 0 || isImmune(ctx)) return pass()
      if (ctx.transaction.recipients.length < options.limit_recipients) return pass()
      const history = ctx.connection.notes.get(KarmaHistory) ?? 0
      const karma = ctx.connection.notes.get(Karma)
      if (history > 0 || karma > 0) return pass()
      ctx.result('fail', `too many recipients for karma ${karma} (history ${history})`)
      return defer({
        code: 452,
        enhanced: '4.5.3',
        text: `Too many recipients for karma ${karma} (history ${history}); send the others in another transaction`,
      })
    }

    const veryBad = (ctx: HookContext): Verdict => {
      if (isImmune(ctx) || isNaughty(ctx)) return pass()
      const karma = ctx.connection.notes.get(Karma)
      if (karma >= -4) return pass()
      return rejectAs(ctx, policy, `very bad karma: ${karma}`, { perm: [554, '5.7.1'], temp: [451, '4.7.1'] })
    }

    const disconnect: HookMap['disconnect'] = async (ctx) => {
      const karma = ctx.connection.notes.get(Karma)
      const seen = ctx.connection.notes.get(Record)
      const key = karmaKey(ctx.connection.remote.ip)
      if (karma === 0 || seen === undefined || key === undefined) return
      // Relay clients and whitelisted hosts are not penalized (their failed AUTH attempts, say).
      if (karma < 0 && isImmune(ctx)) return
      const { record, judgement } = afterConnection(seen.record, karma, options, now())
      ctx.result(
        judgement === 'penalty box' ? 'fail' : 'info',
        `${judgement} (karma ${karma}, history ${historyOf(record)})`,
      )
      try {
        // Another connection of the same client may have ended meanwhile: redo on its record.
        const text = formatKarmaRecord(record)
        if (!(await store.compareAndSet(key, seen.raw, text, { ttlMs: ttlMs(record) }))) {
          const current = await store.get(key)
          const again = afterConnection(parseKarmaRecord(current) ?? emptyRecord, karma, options, now()).record
          await store.compareAndSet(key, current, formatKarmaRecord(again), { ttlMs: ttlMs(again) })
        }
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        ctx.log.warn(`karma not recorded: ${e.message}`)
      }
    }

    const hooks: Hooks = {
      preConnection,
      connect,
      mailParse: checkPath,
      rcptParse: checkPath,
      mail,
      rcpt,
      data: veryBad,
      dataPost: veryBad,
      disconnect,
    }
    return { hooks, close: async () => own?.close() }
  },
})
