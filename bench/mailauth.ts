/**
 * The mail-authentication workload: one message, about 2 KB, DKIM-signed by auth.bench.test and
 * sent from 127.0.0.1 with that domain in MAIL FROM, and a private unbound on loopback
 * (test/peers/unbound.ts) publishing the domain's SPF record, DKIM key and DMARC policy (p=reject),
 * so every check passes: SPF, DKIM and DMARC, aligned. qtsmtpd runs sender_permitted_from, dkim
 * and dmarc; Haraka its spf and dkim plugins (it has no DMARC of its own), its node:dns resolvers
 * pointed at the same server by a preloaded module (it has no DNS server setting). smtp-source
 * cannot send a given message, so this workload uses our own client (bench/smtp-client.ts).
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { relaxedBodyHash } from '../src/mailauth/dkim/canonical.ts'
import { dnsRecord, txtStrings } from '../src/mailauth/dkim/keys.ts'
import { dkimSignature } from '../src/mailauth/dkim/sign.ts'
import { HeaderBlock } from '../src/message/headers.ts'
import { startUnbound, type Unbound } from '../test/peers/unbound.ts'
import { type BenchContext, type Contender, haraka, launch, qtsmtpdCheck } from './contenders.ts'

const DOMAIN = 'bench.test'
export const AUTH_DOMAIN = 'auth.bench.test'
export const AUTH_SENDER = `sender@${AUTH_DOMAIN}`

interface AuthWorld {
  readonly unbound: Unbound
  /** The signed message, CRLF, ready for DATA (no line starts with a dot). */
  readonly message: Buffer
}

let world: Promise<AuthWorld> | undefined

/** The workload's DNS server and message, made on first use. */
export function authWorld(): Promise<AuthWorld> {
  world ??= (async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const record = (name: string, text: string) => `${name}. 300 IN TXT ${txtStrings(text)}`
    const unbound = await startUnbound({
      zones: { 'test.': 'static' },
      records: [
        // An SOA, so that NXDOMAIN and NODATA (the HELO name's SPF) are cached (RFC 2308).
        'test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300',
        record(AUTH_DOMAIN, 'v=spf1 ip4:127.0.0.1 -all'),
        record(`bench1._domainkey.${AUTH_DOMAIN}`, dnsRecord(key.publicKey)),
        record(`_dmarc.${AUTH_DOMAIN}`, 'v=DMARC1; p=reject'),
      ],
    })
    const head = [
      `From: Sender <${AUTH_SENDER}>`,
      'To: <user@bench.test>',
      'Subject: bench',
      'Date: Fri, 4 Dec 2026 10:00:00 +0000',
      `Message-ID: <bench@${AUTH_DOMAIN}>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain',
      '',
      '',
    ].join('\r\n')
    const { headers, body } = HeaderBlock.parse(Buffer.from(head + `${'x'.repeat(76)}\r\n`.repeat(20)))
    const signingKey = { domain: AUTH_DOMAIN, selector: 'bench1', algorithm: 'rsa-sha256' as const, file: 'bench' }
    const bodyHash = await relaxedBodyHash([body])
    headers.prepend(
      'DKIM-Signature',
      dkimSignature(headers.fields, bodyHash, { ...signingKey, privateKey: key.privateKey }),
    )
    return { unbound, message: Buffer.concat([headers.toBuffer(), Buffer.from('\r\n'), body]) }
  })()
  return world
}

export async function stopAuthWorld(): Promise<void> {
  const w = world
  world = undefined
  await (await w)?.unbound.stop()
}

const write = (file: string, text: string) => writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`)

/** qtsmtpd with the three checks, in one process or, with `workers`, one worker per core as Haraka runs. */
export function qtsmtpdAuth(workers?: number): Contender {
  let config = ''
  const one = workers === undefined
  return {
    id: one ? 'qtsmtpd-auth' : 'qtsmtpd-auth-n',
    label: `qtsmtpd + sender_permitted_from, dkim, dmarc (${one ? '1 process' : `${workers} workers`})`,
    tls: false,
    only: ['auth'],
    async install(ctx) {
      const { unbound } = await authWorld()
      const base = join(ctx.work, 'qtsmtpd', one ? 'auth' : 'auth-n')
      config = join(base, 'config')
      rmSync(base, { recursive: true, force: true })
      mkdirSync(config, { recursive: true })
      write(join(config, 'me'), `mx.${DOMAIN}`)
      write(join(config, 'rcpthosts'), DOMAIN)
      write(join(config, 'loglevel'), '2')
      write(join(config, 'spool_dir'), join(base, 'spool'))
      write(join(config, 'dns_servers'), `${unbound.address}:${unbound.port}`)
      write(
        join(config, 'smtpd.conf'),
        ['junk_command_limit 10000000', 'messages_per_session 10000000', 'commands_per_session 100000000'].join('\n'),
      )
      write(join(config, 'plugins'), ['rcpt_ok', 'sender_permitted_from', 'dkim', 'dmarc', 'queue/discard'].join('\n'))
      const problem = qtsmtpdCheck(ctx, config)
      if (problem !== '') throw new Error(`qtsmtpd --check failed: ${problem.trim()}`)
      return 'the qtsmtpd above, with SPF, DKIM and DMARC'
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
        ...(one ? [] : ['--workers', String(workers)]),
      ]
      return launch(process.execPath, args, port, { cwd: ctx.repo })
    },
  }
}

/** Points every node:dns resolver Haraka makes at the bench's unbound (as bench/policy.ts does). */
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

export function harakaAuth(): Contender {
  let server = ''
  let preload = ''
  const contender = haraka({
    id: 'haraka-auth',
    label: 'Haraka + spf, dkim',
    instance: 'instance-auth',
    only: ['auth'],
    // No reverse lookup of the client, as qtsmtpd does none by itself.
    plugins: ['bench_no_rdns', 'spf', 'dkim', 'rcpt_to.in_host_list', 'queue/discard'],
    files: () => ({ 'bench-dns.cjs': PRELOAD }),
    env: () => ({ BENCH_DNS_SERVER: server, NODE_OPTIONS: `--require ${preload}` }),
  })
  return {
    ...contender,
    async install(ctx: BenchContext) {
      const { unbound } = await authWorld()
      server = `${unbound.address}:${unbound.port}`
      preload = join(ctx.work, 'haraka', 'instance-auth', 'bench-dns.cjs')
      return contender.install(ctx)
    },
  }
}
