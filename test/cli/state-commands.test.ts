/**
 * `qtsmtpd karma` (qpsmtpd's karma_tool) and `qtsmtpd import-greylist` / `import-karma`: run as
 * an operator runs them (bin/qtsmtpd), on the store the configuration's plugins use; qpsmtpd's
 * databases written as qpsmtpd writes them (Perl's AnyDBM_File; Qpsmtpd::DB::Redis's layout in
 * a real redis-server); the imported records then decide real SMTP sessions.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import { sqliteStore } from '../../src/store/index.ts'
import { startTestServer } from '../../src/testing/index.ts'
import { bin } from '../daemon/harness.ts'
import { type RedisServer, startRedis } from '../peers/redis.ts'

const run = promisify(execFile)
const qtsmtpd = (...args: string[]) =>
  run(bin, args).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  )

/** A DBM file as qpsmtpd writes one: tied through AnyDBM_File with qpsmtpd's module order. */
async function writeDbm(file: string, pairs: Readonly<Record<string, string>>): Promise<void> {
  const script = `
use strict; use warnings; use Fcntl;
BEGIN { @AnyDBM_File::ISA = qw(DB_File GDBM_File NDBM_File) }
use AnyDBM_File;
my $path = shift;
tie(my %db, 'AnyDBM_File', $path, O_CREAT | O_RDWR, 0600) or die "tie: $!";
while (@ARGV) { my $k = shift; $db{$k} = shift }
untie %db;
`
  await run('perl', ['-e', script, file, ...Object.entries(pairs).flat()])
}

const now = () => Math.floor(Date.now() / 1000)
const LOOPBACK = '2130706433'

describe('qtsmtpd karma, import-greylist, import-karma', { timeout: 120_000 }, () => {
  let dir: string
  let config: string
  let stateFile: string
  let redis: RedisServer
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-state-cli-'))
    config = join(dir, 'config')
    stateFile = join(dir, 'state.db')
    await run('mkdir', ['-p', config])
    await writeFile(join(config, 'plugins'), 'karma\ngreylisting black_timeout 600\nrcpt_ok\n')
    await writeFile(join(config, 'rcpthosts'), 'mx.test\n')
    await writeFile(join(config, 'smtpd.conf'), `store sqlite:${stateFile}\n`)
    await writeFile(join(config, 'spool_dir'), `${join(dir, 'spool')}\n`)
    redis = await startRedis()
  })
  after(async () => {
    await redis.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('karma capture, list, search and release on the configured store', async () => {
    const captured = await qtsmtpd('karma', '--config', config, 'capture', '192.0.2.7')
    assert.equal(captured.code, 0, captured.err)
    assert.match(
      captured.out,
      /^IP address {2}Penalty since +Naughty {2}Nice {2}Connects\n192\.0\.2\.7 +\w{3} \w{3} [ \d]\d \d\d:\d\d +1 +0 +0\n/,
    )
    const listed = await qtsmtpd('karma', '--config', config, 'list')
    assert.match(listed.out, /192\.0\.2\.7 .* 1 +0 +0\n1 addresses; 1 naughty, 0 nice, 0 connects\n$/)
    assert.match((await qtsmtpd('karma', '--config', config, 'search', 'naughty')).out, /192\.0\.2\.7/)
    assert.doesNotMatch((await qtsmtpd('karma', '--config', config, 'search', 'nice')).out, /192\.0\.2\.7/)
    const released = await qtsmtpd('karma', '--config', config, 'release', '192.0.2.7')
    assert.match(released.out, /\n192\.0\.2\.7 +0 +0 +0\n/)
    const store = sqliteStore({ file: stateFile })
    try {
      assert.equal(await store.get('karma:3221225991'), '0:0:0:0')
    } finally {
      await store.close()
    }
  })

  it('usage mistakes and a missing database are clear errors', async () => {
    const noCommand = await qtsmtpd('karma', '--config', config)
    assert.equal(noCommand.code, 1)
    assert.match(noCommand.err, /^qtsmtpd: karma: list, search, capture or release\?\nUsage: qtsmtpd karma/)
    assert.match((await qtsmtpd('karma', 'list')).err, /karma: --config DIR is required/)
    assert.match(
      (await qtsmtpd('karma', '--config', config, 'capture', 'mx.example')).err,
      /not an IP address: mx.example/,
    )
    const missing = await qtsmtpd('import-greylist', '--config', config, join(dir, 'nowhere.dbm'))
    assert.equal(missing.code, 1)
    assert.match(missing.err, /import-greylist: .*nowhere\.dbm: cannot open/)
  })

  it("import-greylist: qpsmtpd's DBM file, old and new keys; the imported triplets decide sessions", async () => {
    const dbm = join(dir, 'greylist.dbm')
    await writeDbm(dbm, {
      [LOOPBACK]: `${now() - 3600}:1:2:5`, // 127.0.0.1, white an hour ago
      '192.0.2.9:a@s.test:u@mx.test': `${now() - 60}:1:0:0`, // before qpsmtpd's upgrade: address as text
      '3221225995': `${now() - 90 * 86_400}:1:0:3`, // white, but 90 days ago
      '3221225996': 'garbage',
    })
    const r = await qtsmtpd('import-greylist', '--config', config, dbm)
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'greylisting: 2 imported, 0 already there (kept), 1 expired, 1 not understood\n')
    const again = await qtsmtpd('import-greylist', '--config', config, dbm)
    assert.equal(again.out, 'greylisting: 0 imported, 2 already there (kept), 1 expired, 1 not understood\n')
    const store = sqliteStore({ file: stateFile })
    try {
      assert.match((await store.get('greylisting:triplet:3221225993:a@s.test:u@mx.test'))!, /:1:0:0$/)
      const srv = await startTestServer({ configDir: config, store })
      try {
        const c = await srv.connect()
        await c.expect(220)
        await c.send('EHLO client.test', 250)
        await c.send('MAIL FROM:<x@s.test>', 250)
        await c.send('RCPT TO:<u@mx.test>', 250)
        await c.quit()
      } finally {
        await srv.close()
      }
    } finally {
      await store.close()
    }
  })

  it("import-karma and import-greylist from the Redis qpsmtpd used (Qpsmtpd::DB::Redis's layout)", async () => {
    await redis.cli('-n', '0', 'set', '___smtpd_reserved___', '1')
    await redis.cli('-n', '0', 'hset', 'smtpd_stores', 'karma', '1', 'greylist', '2')
    await redis.cli('-n', '1', 'set', '3221225985', `${now()}:4:0:9`) // 192.0.2.1, penalized now
    await redis.cli('-n', '1', 'set', '3221225986', '0:0:7:7')
    await redis.cli('-n', '1', 'set', 'junk', 'x')
    await redis.cli('-n', '2', 'set', '3221225987', `${now() - 1200}:1:1:0`)
    const karma = await qtsmtpd('import-karma', '--config', config, redis.url)
    assert.equal(karma.code, 0, karma.err)
    assert.equal(karma.out, 'karma: 2 imported, 0 already there (kept), 0 expired, 1 not understood\n')
    const grey = await qtsmtpd('import-greylist', '--config', config, redis.url)
    assert.equal(grey.out, 'greylisting: 1 imported, 0 already there (kept), 0 expired, 0 not understood\n')
    const listed = await qtsmtpd('karma', '--config', config, 'search', 'both')
    assert.equal(listed.code, 0, listed.err)
    const all = await qtsmtpd('karma', '--config', config, 'list')
    assert.match(all.out, /192\.0\.2\.1 +\w{3} .* 4 +0 +9\n192\.0\.2\.2 +0 +7 +7\n/)
    const missing = await qtsmtpd('import-karma', '--config', config, `redis://127.0.0.1:${redis.port}/0`)
    assert.equal(missing.code, 0)
    await redis.cli('-n', '0', 'del', 'smtpd_stores')
    const none = await qtsmtpd('import-karma', '--config', config, redis.url)
    assert.match(none.err, /no qpsmtpd store "karma" in smtpd_stores of database 0/)
  })
})
