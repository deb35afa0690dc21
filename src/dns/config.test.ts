import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ConfigError } from '../config/config-error.ts'
import type { ConfigSource } from '../config/config-source.ts'
import { parseResolvConf, parseServer, readDnsServers, readDnsSettings } from './config.ts'

/** A config source from file texts, with the file:line a real directory would give. */
function source(files: Record<string, string>): ConfigSource {
  return {
    lines: (key) =>
      files[key]
        ?.split('\n')
        .map((t, i) => ({ text: t.trim(), file: `/etc/qt/config/${key}`, line: i + 1 }))
        .filter((l) => l.text !== '' && !l.text.startsWith('#')),
    path: (key) => (files[key] === undefined ? undefined : `/etc/qt/config/${key}`),
  }
}

const configError = (file: string, line: number, text: RegExp) => (e: unknown) =>
  e instanceof ConfigError && e.file === `/etc/qt/config/${file}` && e.line === line && text.test(e.text)

describe('dns/config', () => {
  const servers = [
    { line: '192.0.2.53', want: { address: '192.0.2.53', port: 53 } },
    { line: '192.0.2.53:5353', want: { address: '192.0.2.53', port: 5353 } },
    { line: '2001:DB8::53', want: { address: '2001:db8::53', port: 53 } },
    { line: '[2001:db8::53]:5353', want: { address: '2001:db8::53', port: 5353 } },
    { line: '[::1]', want: { address: '::1', port: 53 } },
    { line: '::ffff:127.0.0.1', want: { address: '127.0.0.1', port: 53 } },
    { line: 'fe80::1%eth0', want: { address: 'fe80::1%eth0', port: 53 } },
    { line: 'dns.example', want: undefined },
    { line: '192.0.2.53:0', want: undefined },
    { line: '192.0.2.53:65536', want: undefined },
    { line: '[2001:db8::53]5353', want: undefined },
    { line: '192.0.2.053', want: undefined },
  ] as const
  for (const c of servers) it(`dns_servers line "${c.line}"`, () => assert.deepEqual(parseServer(c.line), c.want))

  it('reads dns_servers in order', () => {
    const got = readDnsServers(source({ dns_servers: '# resolvers\n127.0.0.1:5300\n[::1]:5301\n' }))
    assert.deepEqual(got, [
      { address: '127.0.0.1', port: 5300 },
      { address: '::1', port: 5301 },
    ])
  })

  it('a bad dns_servers line stops the start with file and line', () => {
    assert.throws(
      () => readDnsServers(source({ dns_servers: '127.0.0.1\nresolver.example\n' })),
      configError('dns_servers', 2, /expected IP, IP:port or \[IPv6\]:port, got "resolver.example"/),
    )
  })

  it("without dns_servers, the system's resolv.conf nameservers", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-dns-'))
    try {
      const file = join(dir, 'resolv.conf')
      await writeFile(file, 'search example\nnameserver 192.0.2.1\nnameserver 2001:db8::1\noptions edns0\n')
      assert.deepEqual(readDnsServers(source({}), file), [
        { address: '192.0.2.1', port: 53 },
        { address: '2001:db8::1', port: 53 },
      ])
      assert.deepEqual(readDnsServers(source({}), join(dir, 'missing')), [{ address: '127.0.0.1', port: 53 }])
    } finally {
      await rm(dir, { recursive: true })
    }
  })

  it('resolv.conf lines that are not addresses are skipped, as the C library does', () => {
    assert.deepEqual(parseResolvConf('nameserver bogus\n#nameserver 192.0.2.9\n nameserver 192.0.2.2\n'), [
      { address: '192.0.2.2', port: 53 },
    ])
    assert.deepEqual(parseResolvConf(''), [{ address: '127.0.0.1', port: 53 }])
  })

  it('reads the dns_* settings of smtpd.conf, and leaves other keys to the core', () => {
    const s = readDnsSettings(
      source({
        'smtpd.conf': [
          'command_timeout 5m',
          'dns_timeout 1500ms',
          'dns_retries 0',
          'dns_edns_size 0',
          'dns_answer_size_limit 4096',
          'dns_cname_limit 4',
          'dns_max_inflight 16',
          'dns_cache_size 100',
          'dns_cache_max_ttl 1h',
          'dns_cache_max_negative_ttl 5m',
        ].join('\n'),
      }),
    )
    assert.deepEqual(s, {
      resolver: { timeoutMs: 1500, retries: 0, ednsUdpSize: 0, maxAnswerSize: 4096, cnameLimit: 4, maxInflight: 16 },
      cache: { maxEntries: 100, maxTtl: 3600, maxNegativeTtl: 300 },
    })
  })

  it('the defaults', () => {
    assert.deepEqual(readDnsSettings(source({})), {
      resolver: {
        timeoutMs: 5000,
        retries: 2,
        ednsUdpSize: 1232,
        maxAnswerSize: 65535,
        cnameLimit: 8,
        maxInflight: 256,
      },
      cache: { maxEntries: 10000, maxTtl: 86400, maxNegativeTtl: 3600 },
    })
  })

  const refused = [
    { line: 'dns_timeout soon', text: /expected a duration/ },
    { line: 'dns_timeout 0', text: /expected a duration/ },
    { line: 'dns_retries 11', text: /from 0 to 10/ },
    { line: 'dns_edns_size 100', text: /0 \(no EDNS0\) or a size from 512 to 65535/ },
    { line: 'dns_answer_size_limit 100', text: /from 512 to 65535/ },
    { line: 'dns_cache_size -1', text: /whole number/ },
    { line: 'dns_max_inflight 0', text: /from 1 to 65535/ },
    { line: 'dns_servers 127.0.0.1', text: /unknown setting "dns_servers"/ },
  ] as const
  for (const c of refused)
    it(`refuses "${c.line}" with file and line`, () => {
      assert.throws(
        () => readDnsSettings(source({ 'smtpd.conf': `# dns\n${c.line}\n` })),
        configError('smtpd.conf', 2, c.text),
      )
    })
})
