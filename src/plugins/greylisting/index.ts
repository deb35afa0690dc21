/**
 * greylisting (qpsmtpd `greylisting`, `denysoft_greylist`; RFC 6647): defers the first attempt
 * of an unknown triplet (client address by default; with `sender` and `recipient` also those)
 * for `black_timeout`, accepts a retry before `grey_timeout` and then knows the triplet for
 * `white_timeout`. A client that retried properly is also remembered by itself
 * (`auto_whitelist_clients`), so mail from it with other senders or recipients is not delayed.
 * Immune clients (relay, whitelists), `greylist_exclude_files`, `p0f` and `geoip` exclusions are
 * never greylisted. Triplets live in the store (shared by workers, and by nodes on Redis);
 * atomic compare-and-set replaces qpsmtpd's lock file. When the store cannot answer the
 * message passes (`on_error pass`, qpsmtpd's behaviour) or is deferred (`on_error defer`).
 */
import type { HookContext } from '../../host/context.ts'
import { failedCheck, GeoIpCountry, isImmune, P0f } from '../../host/conventions.ts'
import { definePlugin } from '../../host/define-plugin.ts'
import type { DataHook, Hooks, MailHook, RcptHook } from '../../host/hook-map.ts'
import { defineKey } from '../../host/keys.ts'
import { opt } from '../../host/options.ts'
import { defer, pass, type Verdict } from '../../host/verdict.ts'
import type { Address } from '../../protocol/envelope.ts'
import { openPluginStore, type Store, StoreUnavailable } from '../../store/index.ts'
import { WhitelistRcpt } from '../connect/whitelist.ts'
import { isExcludedHost, p0fMatches, parseP0fCriteria, readExcludeFiles } from './exclusions.ts'
import { combine, layeredOptions, parseLayer, type Settings } from './settings.ts'
import { decide, formatRecord, ipInteger, type Outcome, parseRecord, tripletKey } from './triplet.ts'

/** qpsmtpd's transaction note `greylist`: the deferral left for DATA (deny_late, null sender). */
export const Greylisted = defineKey<string | undefined>('greylist', { scope: 'transaction', initial: undefined })

const DENY_TEXT = 'This mail is temporarily denied'

export default definePlugin({
  name: 'greylisting',
  aliases: ['denysoft_greylist'],
  description: 'defer mail from unknown client/sender/recipient triplets until they retry',
  requires: ['store'],
  timeoutMs: 10_000,
  options: {
    ...layeredOptions,
    per_recipient: opt.boolean({ default: false, description: "each recipient's own denysoft_greylist settings" }),
    auto_whitelist_clients: opt.number({
      default: 1,
      min: 0,
      integer: true,
      description: 'proper retries after which a client passes whatever the sender or recipient (0: never)',
    }),
    on_error: opt.enum(['pass', 'defer'], {
      default: 'pass',
      description: 'when the store cannot answer: pass (qpsmtpd) or defer (451 4.3.0)',
    }),
    nfslock: opt.boolean({ default: false, description: 'accepted for qpsmtpd configurations: no lock is needed' }),
    upgrade: opt.boolean({ default: false, description: 'accepted for qpsmtpd configurations (see import-greylist)' }),
    loglevel: opt.loglevel(),
  },
  async setup(api) {
    const { options, config, paths, clock, log } = api
    const fromArgs = Object.fromEntries(Object.keys(layeredOptions).map((k) => [k, options[k as 'reject']]))
    const fileLayer = parseLayer(config.located('denysoft_greylist'))
    const base = combine(fileLayer, fromArgs)
    if (options.nfslock) log.info('nfslock: not needed, the store updates triplets atomically')
    const own = await openPluginStore(
      {
        db_dir: base.db_dir === undefined ? undefined : paths.resolve(base.db_dir),
        redis: base.redis,
      },
      { name: api.name, baseDir: paths.resolve('.'), onWarning: (m) => log.warn(m) },
    )
    const store: Store = own?.scope('greylisting') ?? api.store
    const excluded = readExcludeFiles(config.located('greylist_exclude_files'), (p) => paths.resolve(p))
    const p0f = base.p0f === undefined ? undefined : parseP0fCriteria(base.p0f)
    const countries = new Set(base.geoip.map((c) => c.toUpperCase()))
    const perRecipient = options.per_recipient || base.recipient

    const now = () => Math.floor(clock.now() / 1000)
    const refreshAfter = (s: Settings) => Math.min(3600, Math.floor(s.white_timeout / 10))
    const needsClientMemory = (s: Settings) => options.auto_whitelist_clients > 0 && (s.sender || s.recipient)

    /** Why this client is not greylisted at all, or undefined. */
    const exemption = (ctx: HookContext): string | undefined => {
      if (isImmune(ctx)) return 'immune (relay client or whitelisted)'
      if (p0f !== undefined) {
        const fp = ctx.connection.notes.get(P0f)
        if (fp === undefined) return 'p0f info missing (load a p0f plugin before greylisting)'
        if (!p0fMatches(p0f, fp)) return 'no p0f match'
      }
      const country = ctx.connection.notes.get(GeoIpCountry)
      if (country !== undefined && countries.has(country.toUpperCase())) return `geoip country ${country}`
      if (isExcludedHost(excluded, ctx.connection.remote.ip, ctx.connection.remoteHost)) return 'excluded host'
      return undefined
    }

    /** Whether the client itself passed greylisting before (auto_whitelist_clients). */
    const knownClient = async (ip: string, s: Settings): Promise<boolean> => {
      const n = ipInteger(ip)
      if (n === undefined) return false
      const raw = await store.get(`client:${n}`)
      const m = raw === undefined ? null : /^(\d{1,12}):(\d{1,9})$/.exec(raw)
      if (!m || Number(m[2]) < options.auto_whitelist_clients) return false
      if (now() - Number(m[1]) >= refreshAfter(s))
        await store.compareAndSet(`client:${n}`, raw, `${now()}:${m[2]}`, { ttlMs: s.white_timeout * 1000 })
      return true
    }
    const rememberClient = async (ip: string, s: Settings) => {
      const n = ipInteger(ip)
      if (n === undefined) return
      const raw = await store.get(`client:${n}`)
      const count = Number((raw === undefined ? null : /^\d{1,12}:(\d{1,9})$/.exec(raw))?.[1] ?? 0)
      await store.compareAndSet(`client:${n}`, raw, `${now()}:${count + 1}`, { ttlMs: s.white_timeout * 1000 })
    }

    /** Looks the triplet up and records the sighting; the outcome. */
    const sighting = async (key: string, s: Settings): Promise<Outcome> => {
      const periods = { black: s.black_timeout, grey: s.grey_timeout, white: s.white_timeout }
      for (let attempt = 0; ; attempt++) {
        const raw = await store.get(`triplet:${key}`)
        const d = decide(parseRecord(raw), now(), periods, refreshAfter(s))
        if (d.next === undefined) return d.outcome
        const set = await store.compareAndSet(`triplet:${key}`, raw, formatRecord(d.next), { ttlMs: d.ttl * 1000 })
        // Lost a race with another session (another worker or node) seeing the same triplet:
        // judge again on what it wrote. A second loss is not worth a third read.
        if (set || attempt > 0) return d.outcome
      }
    }

    /** 'defer' or 'pass' for this transaction (and recipient), logged as qpsmtpd does. */
    const greylist = async (
      ctx: HookContext,
      sender: Address | null,
      rcpt: Address | undefined,
      s: Settings,
    ): Promise<'defer' | 'pass'> => {
      const why = exemption(ctx)
      if (why !== undefined) {
        ctx.result('skip', why)
        return 'pass'
      }
      const ip = ctx.connection.remote.ip
      if (needsClientMemory(s) && (await knownClient(ip, s))) {
        ctx.result('pass', 'client passed greylisting before')
        return 'pass'
      }
      const key = tripletKey(s, ip, sender, rcpt)
      if (key === undefined) {
        ctx.result('skip', 'no triplet (unusable client address)')
        return 'pass'
      }
      const outcome = await sighting(key, s)
      switch (outcome) {
        case 'white':
          ctx.result('pass', 'white')
          return 'pass'
        case 'promoted':
          ctx.result('pass', 'updated grey->white')
          if (needsClientMemory(s)) await rememberClient(ip, s)
          return 'pass'
        case 'new':
        case 'black':
          if (!s.reject) {
            ctx.result('fail', `${outcome === 'new' ? 'initial' : 'black'} DENYSOFT (tolerated, reject 0)`)
            return 'pass'
          }
          ctx.result('fail', outcome === 'new' ? 'initial DENYSOFT, unknown' : 'black DENYSOFT, retried too soon')
          return 'defer'
      }
    }

    const guarded = async (ctx: HookContext, run: () => Promise<Verdict>): Promise<Verdict> => {
      try {
        return await run()
      } catch (e) {
        if (!(e instanceof StoreUnavailable)) throw e
        return failedCheck(ctx, options, 'greylisting', e.message)
      }
    }

    const mail: MailHook = (ctx, from) =>
      guarded(ctx, async () => {
        if ((await greylist(ctx, from.address, undefined, base)) === 'pass') return pass()
        if (!base.deny_late) return defer({ code: 450, enhanced: '4.7.1', text: DENY_TEXT })
        ctx.transaction.notes.set(Greylisted, DENY_TEXT)
        return pass('deferred until DATA (deny_late)')
      })

    const rcpt: RcptHook = (ctx, to) =>
      guarded(ctx, async () => {
        let s = base
        if (options.per_recipient) {
          const lines = config
            .forUser(`${to.address.local}@${to.address.domain ?? ''}`, 'denysoft_greylist')
            .map((text, i) => ({ text, file: `denysoft_greylist for ${to.address.local}`, line: i + 1 }))
          s = combine(
            fileLayer,
            fromArgs,
            parseLayer(lines, (e) => log.warn(e.message)),
          )
        }
        const sender = ctx.transaction.mailFrom.address
        if ((await greylist(ctx, sender, to.address, s)) === 'pass') return pass()
        // The null sender (bounces, SMTP callouts) is deferred at DATA, so that a probe succeeds.
        if (sender !== null && !s.deny_late) return defer({ code: 450, enhanced: '4.7.1', text: DENY_TEXT })
        ctx.transaction.notes.set(Greylisted, DENY_TEXT)
        return pass('deferred until DATA')
      })

    const data: DataHook = (ctx) => {
      const text = ctx.transaction.notes.get(Greylisted)
      if (text === undefined) return pass()
      if (ctx.transaction.notes.get(WhitelistRcpt) >= ctx.transaction.recipients.length) {
        ctx.result('skip', 'all recipients whitelisted')
        return pass()
      }
      return defer({ code: 451, enhanced: '4.7.1', text })
    }

    const hooks: Hooks = perRecipient ? { rcpt, data } : { mail, data }
    return { hooks, close: async () => own?.close() }
  },
})
