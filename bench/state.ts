/**
 * The shared-state workload's contenders: greylisting and rate limits on, for a client whose
 * triplet is already white (so mail flows and every message pays for the lookups):
 *
 * - qtsmtpd with `greylisting`, `limit` (connections, recipients per address and per sender)
 *   and `hosts_allow max_conn_ip` (a lease per connection), on the embedded SQLite store
 *   (one process, and `--workers`), and on Redis (`--workers`);
 * - Haraka with its greylist and limit plugins (concurrency, rate_conn, rate_rcpt_host,
 *   rate_rcpt_sender) on the same Redis.
 *
 * One redis-server for the run (test/peers/redis.ts), measured beside each server. Limits are set
 * far above the load: they are counted, never reached. Haraka's greylist skips private and
 * loopback clients, so a bench plugin marks the bench client public, as a real client is.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createClient } from '@redis/client'
import { sqliteStore } from '../src/store/index.ts'
import { type RedisServer, startRedis } from '../test/peers/redis.ts'
import { type BenchContext, type Contender, haraka, launch, qtsmtpdCheck } from './contenders.ts'

const DOMAIN = 'bench.test'
/** smtp-source's client, 127.0.0.1, as greylisting keys it. */
const CLIENT_KEY = '2130706433'
const HIGH = 100_000_000

let redis: Promise<RedisServer> | undefined

export function stateRedis(): Promise<RedisServer> {
  redis ??= startRedis()
  return redis
}

export async function stateRedisPids(): Promise<readonly number[]> {
  const pid = redis === undefined ? undefined : (await redis).pid
  return pid === undefined ? [] : [pid]
}

export async function stopStateRedis(): Promise<void> {
  const r = redis
  redis = undefined
  await (await r)?.close()
}

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)
const nowSeconds = () => Math.floor(Date.now() / 1000)
const WHITE_MS = 36 * 86_400_000

export function qtsmtpdState(opts: {
  id: string
  label: string
  store: 'sqlite' | 'redis'
  workers?: number
}): Contender {
  let config = ''
  return {
    id: opts.id,
    label: opts.label,
    tls: false,
    only: ['state'],
    async install(ctx: BenchContext) {
      const base = join(ctx.work, 'qtsmtpd', opts.id)
      config = join(base, 'config')
      rmSync(base, { recursive: true, force: true })
      mkdirSync(config, { recursive: true })
      const white = `${nowSeconds()}:1:0:1`
      let storeLine: string
      if (opts.store === 'sqlite') {
        const file = join(base, 'state.db')
        storeLine = `store sqlite:${file}`
        const store = sqliteStore({ file })
        await store.set(`greylisting:triplet:${CLIENT_KEY}`, white, { ttlMs: WHITE_MS })
        await store.close()
      } else {
        const r = await stateRedis()
        const prefix = `${opts.id}:`
        storeLine = `store ${r.url} prefix=${prefix}`
        const c = createClient({ url: r.url })
        await c.connect()
        await c.set(`${prefix}greylisting:triplet:${CLIENT_KEY}`, white, {
          expiration: { type: 'PX', value: WHITE_MS },
        })
        await c.close()
      }
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), join(base, 'spool'))
      write(
        join(config, 'smtpd.conf'),
        [
          'junk_command_limit 10000000',
          'messages_per_session 10000000',
          'commands_per_session 100000000',
          storeLine,
        ].join('\n'),
      )
      write(
        join(config, 'limits'),
        [`connections ip ${HIGH}/1m`, `recipients ip ${HIGH}/1m`, `recipients sender ${HIGH}/1m`].join('\n'),
      )
      write(
        join(config, 'plugins'),
        ['hosts_allow max_conn_ip 1000', 'limit', 'greylisting', 'rcpt_ok', 'queue/discard'].join('\n'),
      )
      const problem = qtsmtpdCheck(ctx, config)
      if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
      return `the qtsmtpd above, greylisting + limit + hosts_allow on ${opts.store === 'sqlite' ? 'SQLite' : 'Redis'}`
    },
    start(ctx: BenchContext, port: number) {
      const args = [
        join(ctx.repo, 'bin/qtsmtpd'),
        '--config',
        config,
        '--listen',
        `127.0.0.1:${port}`,
        '--max-connections',
        '0',
        '--max-connections-per-ip',
        '0',
        ...(opts.workers === undefined ? [] : ['--workers', String(opts.workers)]),
      ]
      return launch(process.execPath, args, port, { cwd: ctx.repo })
    },
  }
}

/** Marks the bench client public: Haraka's greylist leaves private and loopback clients alone. */
const NOT_PRIVATE = `// bench: the load comes from 127.0.0.1; a real client is not private
exports.hook_connect_init = function (next, connection) {
  connection.remote.is_private = false
  connection.remote.is_local = false
  next()
}`

export function harakaState(): Contender {
  let port = 0
  const contender = haraka({
    id: 'haraka-state',
    label: 'Haraka + greylist, limit (Redis)',
    instance: 'instance-state',
    only: ['state'],
    plugins: ['bench_no_rdns', 'bench_not_private', 'limit', 'greylist', 'rcpt_to.in_host_list', 'queue/discard'],
    files: () => ({
      'plugins/bench_not_private.js': NOT_PRIVATE,
      'config/redis.ini': `[server]\nhost=127.0.0.1\nport=${port}\n`,
      'config/greylist.ini': [
        'text = Greylisted. Please come back later.',
        '[redis]',
        'host = 127.0.0.1',
        `port = ${port}`,
        'db = 11',
        '[period]',
        'black = 850',
        'grey = 90000',
        'white = 3024000',
      ].join('\n'),
      'config/limit.ini': [
        '[redis]',
        'host = 127.0.0.1',
        `port = ${port}`,
        'db = 4',
        '[concurrency]',
        'enabled = true',
        'max = 1000',
        '[rate_conn]',
        'enabled = true',
        `default = ${HIGH}/1m`,
        '[rate_rcpt_host]',
        'enabled = true',
        `default = ${HIGH}/1m`,
        '[rate_rcpt_sender]',
        'enabled = true',
        `default = ${HIGH}/1m`,
      ].join('\n'),
    }),
  })
  return {
    ...contender,
    async install(ctx: BenchContext) {
      const r = await stateRedis()
      port = r.port
      // Haraka's white record for the bench client (its greylist keys a host without
      // forward-confirmed rDNS by its address), in its database 11.
      const c = createClient({ url: `${r.url}/11` })
      await c.connect()
      const now = nowSeconds()
      await c.hSet('white:127.0.0.1', {
        first_connect: String(now),
        whitelisted: String(now),
        updated: String(now),
        lifetime: '3024000',
        tried_when_greylisted: '1',
        tried: '1',
      })
      await c.expire('white:127.0.0.1', 3_024_000)
      await c.close()
      return contender.install(ctx)
    },
  }
}
