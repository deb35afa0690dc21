/**
 * The policy-chain workload's contenders: qtsmtpd with dnsbl (3 zones), helo policy rfc,
 * badmailfrom and resolvable_fromhost, and Haraka with its equivalents (dns-list with the same 3
 * zones, helo.checks, mail_from.is_resolvable), both asking one private unbound on loopback
 * (test/peers/unbound.ts) that serves the zones, the client's PTR and the sender's MX. Haraka's
 * resolvers are pointed at it by a preloaded module (it has no DNS server setting); its core
 * reverse lookup of the client is left on, as qtsmtpd's helo plugin asks the PTR too.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startUnbound, type Unbound } from '../test/peers/unbound.ts'
import { type BenchContext, type Contender, haraka, launch, qtsmtpdCheck } from './contenders.ts'

const DOMAIN = 'bench.test'
const ZONES = ['bl1.bench.test', 'bl2.bench.test', 'bl3.bench.test']

let dns: Promise<Unbound> | undefined

/** The one unbound of a bench run, started on first use. */
export function policyDns(): Promise<Unbound> {
  dns ??= startUnbound({
    zones: { 'test.': 'static', '127.in-addr.arpa.': 'static' },
    records: [
      // SOA records, as real zones have, so that NXDOMAIN and NODATA are cached (RFC 2308).
      'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300',
      '127.in-addr.arpa. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300',
      // smtp-source says HELO client.test from 127.0.0.1 and sends from sender@client.test.
      'client.test. 300 IN A 127.0.0.1',
      '1.0.0.127.in-addr.arpa. 300 IN PTR client.test.',
      'client.test. 300 IN MX 10 mx.client.test.',
      'mx.client.test. 300 IN A 192.0.2.10',
      // A listed address, so that every zone has data (the client is not listed).
      ...ZONES.map((z) => `2.0.0.127.${z}. 300 IN A 127.0.0.2`),
    ],
    server: ['msg-cache-size: 4m', 'rrset-cache-size: 8m'],
  })
  return dns
}

export async function stopPolicyDns(): Promise<void> {
  const d = dns
  dns = undefined
  await (await d)?.stop()
}

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)

export function qtsmtpdPolicy(): Contender {
  let config = ''
  return {
    id: 'qtsmtpd-policy',
    label: 'qtsmtpd + policy chain (1 process)',
    tls: false,
    only: ['policy'],
    async install(ctx) {
      const server = await policyDns()
      const base = join(ctx.work, 'qtsmtpd', 'policy')
      config = join(base, 'config')
      rmSync(base, { recursive: true, force: true })
      mkdirSync(config, { recursive: true })
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), join(base, 'spool'))
      write(join(config, 'dns_servers'), `${server.address}:${server.port}`)
      write(join(config, 'dnsbl_zones'), ZONES.join('\n'))
      write(join(config, 'badmailfrom'), ['@spam.example', 'bad@client.example', '/^[0-9]+@/'].join('\n'))
      write(
        join(config, 'smtpd.conf'),
        ['junk_command_limit 10000000', 'messages_per_session 10000000', 'commands_per_session 100000000'].join('\n'),
      )
      write(
        join(config, 'plugins'),
        ['dnsbl', 'helo policy rfc', 'badmailfrom', 'resolvable_fromhost', 'rcpt_ok', 'queue/discard'].join('\n'),
      )
      const problem = qtsmtpdCheck(ctx, config)
      if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
      return 'the qtsmtpd above, with the policy chain'
    },
    start(ctx, port) {
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
      ]
      return launch(process.execPath, args, port, { cwd: ctx.repo })
    },
  }
}

/** Points every node:dns resolver Haraka makes at the bench's unbound. */
const PRELOAD = `'use strict'
const dns = require('node:dns')
const servers = [process.env.BENCH_DNS_SERVER]
dns.setServers(servers)
dns.promises.setServers(servers)
for (const ns of [dns, dns.promises]) {
  const Base = ns.Resolver
  ns.Resolver = class extends Base {
    constructor(...args) {
      super(...args)
      this.setServers(servers)
    }
  }
}
`

export function harakaPolicy(): Contender {
  let server = ''
  let preload = ''
  const contender = haraka({
    id: 'haraka-policy',
    label: 'Haraka + policy chain',
    instance: 'instance-policy',
    only: ['policy'],
    plugins: ['helo.checks', 'dns-list', 'mail_from.is_resolvable', 'rcpt_to.in_host_list', 'queue/discard'],
    files: () => ({
      'bench-dns.cjs': PRELOAD,
      // The same three zones, without the test queries that would disable them on a private server.
      'config/dns-list.ini': ['[main]', 'periodic_checks=0', ...ZONES.map((z) => `zones[]=${z}`), 'search=all'].join(
        '\n',
      ),
    }),
    env: () => ({ BENCH_DNS_SERVER: server, NODE_OPTIONS: `--require ${preload}` }),
  })
  return {
    ...contender,
    async install(ctx: BenchContext) {
      const unbound = await policyDns()
      server = `${unbound.address}:${unbound.port}`
      preload = join(ctx.work, 'haraka', 'instance-policy', 'bench-dns.cjs')
      return contender.install(ctx)
    },
  }
}
