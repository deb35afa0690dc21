import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigDir } from './config-dir.ts'
import { ConfigError } from './config-error.ts'

let root: string
const write = (rel: string, text: string) => {
  const p = join(root, rel)
  mkdirSync(dirname(p), { recursive: true })
  writeFileSync(p, text)
}
const texts = (cfg: ConfigDir, key: string) => cfg.lines(key)?.map((l) => l.text)

before(() => {
  root = mkdtempSync(join(tmpdir(), 'qtsmtpd-config-'))
  write('main/me', '  mx.example.com  \n')
  write('main/plain', '# comment\n\n  a  \n\t# indented comment\nb # not a comment\r\nc\r\n')
  write('main/nested', 'one\n$include sub/inc1\nfour\n')
  write('main/sub/inc1', 'two\n$include inc2\n')
  write('main/sub/inc2', 'three\n')
  write('main/dirinc', 'first\n$include parts\nlast\n')
  write('main/parts/20-b', 'b\n')
  write('main/parts/10-a', 'a\n')
  write('main/parts/.hidden', 'hidden\n')
  write('main/parts/30-c~', 'backup\n')
  write('main/parts/subdir/x', 'not recursed\n')
  write('main/cycle-a', 'a\n$include cycle-b\n')
  write('main/cycle-b', 'b\n\n$include cycle-a\n')
  write('main/self', '$include self\n')
  write('main/diamond', '$include leaf\n$include leaf\n')
  write('main/leaf', 'leaf\n')
  write('main/badinc', '$include\n')
  write('main/badinc2', '$include a b\n')
  write('main/missinginc', 'x\n$include nope\n')
  write('main/includefoo', '$includefoo bar\n')
  write('main/dkim/example.com/selector', 'sel1\n')
  write('main/empty', '# only comments\n\n')
  write('main/abs', `$include ${join(root, 'outside/shared')}\n`)
  write('outside/shared', 'shared\n')
  write('qmail/rcpthosts', 'example.org\n')
  write('qmail/me', 'fallback.example\n')
  write('secret', 'do not read\n')
  mkdirSync(join(root, 'main/adir'))
  symlinkSync(join(root, 'main/link-loop'), join(root, 'main/link-loop'))
})
after(() => rmSync(root, { recursive: true, force: true }))

describe('ConfigDir', () => {
  it('reads from the first dir that has the key, then fallbacks', async () => {
    const cfg = await ConfigDir.open([join(root, 'main'), join(root, 'qmail'), join(root, 'does-not-exist')])
    assert.deepEqual(cfg.dirs, [join(root, 'main'), join(root, 'qmail')])
    assert.deepEqual(cfg.value('me'), { text: 'mx.example.com', file: join(root, 'main/me'), line: 1 })
    assert.equal(cfg.value('rcpthosts')?.file, join(root, 'qmail/rcpthosts'))
    assert.equal(cfg.path('rcpthosts'), join(root, 'qmail/rcpthosts'))
    assert.equal(cfg.has('rcpthosts'), true)
    assert.equal(cfg.has('nothing'), false)
    assert.equal(cfg.lines('nothing'), undefined)
    assert.equal(cfg.value('nothing'), undefined)
    assert.equal(cfg.has('adir'), false, 'a directory is not a config file')
  })

  it('refuses a missing primary dir', async () => {
    await assert.rejects(ConfigDir.open([join(root, 'nope')]), { code: 'SMTPD_ERR_CONFIG_DIR' })
    await assert.rejects(ConfigDir.open([join(root, 'main/me')]), { code: 'SMTPD_ERR_CONFIG_DIR' })
    await assert.rejects(ConfigDir.open([]), { code: 'SMTPD_ERR_CONFIG_DIR' })
  })

  const ok = [
    { name: 'comments, blank lines, trimming, CRLF', key: 'plain', want: ['a', 'b # not a comment', 'c'] },
    { name: 'nested $include relative to the including file', key: 'nested', want: ['one', 'two', 'three', 'four'] },
    { name: '$include dir: sorted, no dotfiles/backups/subdirs', key: 'dirinc', want: ['first', 'a', 'b', 'last'] },
    { name: 'diamond include is not a cycle', key: 'diamond', want: ['leaf', 'leaf'] },
    { name: '$includefoo is not a directive', key: 'includefoo', want: ['$includefoo bar'] },
    { name: 'subdirectory key', key: 'dkim/example.com/selector', want: ['sel1'] },
    { name: 'only comments', key: 'empty', want: [] },
    { name: 'absolute $include', key: 'abs', want: ['shared'] },
  ] as const
  for (const c of ok) {
    it(c.name, async () => {
      const cfg = await ConfigDir.open([join(root, 'main')])
      assert.deepEqual(texts(cfg, c.key), c.want)
    })
  }

  it('keeps file and line of included lines', async () => {
    const cfg = await ConfigDir.open([join(root, 'main')])
    assert.deepEqual(cfg.lines('nested'), [
      { text: 'one', file: join(root, 'main/nested'), line: 1 },
      { text: 'two', file: join(root, 'main/sub/inc1'), line: 1 },
      { text: 'three', file: join(root, 'main/sub/inc2'), line: 1 },
      { text: 'four', file: join(root, 'main/nested'), line: 3 },
    ])
    assert.deepEqual(cfg.files(), [join(root, 'main/nested'), join(root, 'main/sub/inc1'), join(root, 'main/sub/inc2')])
    assert.equal(cfg.lines('nested'), cfg.lines('nested'), 'cached')
  })

  const bad = [
    {
      name: 'two-file cycle names the closing $include',
      key: 'cycle-a',
      code: 'SMTPD_ERR_CONFIG_INCLUDE_CYCLE',
      at: 'main/cycle-b:3',
    },
    { name: 'self include', key: 'self', code: 'SMTPD_ERR_CONFIG_INCLUDE_CYCLE', at: 'main/self:1' },
    { name: '$include without argument', key: 'badinc', code: 'SMTPD_ERR_CONFIG_SYNTAX', at: 'main/badinc:1' },
    { name: '$include with two arguments', key: 'badinc2', code: 'SMTPD_ERR_CONFIG_SYNTAX', at: 'main/badinc2:1' },
    { name: 'missing include', key: 'missinginc', code: 'SMTPD_ERR_CONFIG_INCLUDE_MISSING', at: 'main/missinginc:2' },
  ] as const
  for (const c of bad) {
    it(`error: ${c.name}`, async () => {
      const cfg = await ConfigDir.open([join(root, 'main')])
      assert.throws(
        () => cfg.lines(c.key),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError)
          assert.equal(err.code, c.code)
          assert.ok(err.message.startsWith(`${join(root, c.at)}: `), err.message)
          return true
        },
      )
    })
  }

  it('refuses keys that escape the directory', async () => {
    const cfg = await ConfigDir.open([join(root, 'main')])
    for (const key of ['../secret', 'sub/../../secret', '/etc/passwd', '', 'a//b', './me', 'me/.', 'a\0b']) {
      assert.throws(() => cfg.lines(key), { code: 'SMTPD_ERR_CONFIG_KEY' }, key)
      assert.throws(() => cfg.has(key), { code: 'SMTPD_ERR_CONFIG_KEY' }, key)
    }
  })

  it('treats a symlink loop as a missing key', async () => {
    const cfg = await ConfigDir.open([join(root, 'main')])
    assert.equal(cfg.has('link-loop'), false)
  })

  it('formats errors as file:line: text', () => {
    const e = new ConfigError('SMTPD_ERR_CONFIG_SYNTAX', 'config/x', 3, 'bad')
    assert.equal(e.message, 'config/x:3: bad')
    assert.equal(new ConfigError('SMTPD_ERR_CONFIG_DIR', 'config', undefined, 'gone').message, 'config: gone')
    assert.equal(e.name, 'ConfigError')
    assert.ok(e instanceof Error)
  })

  it('answers the keys of a snapshot from it, not from the files changed since', async () => {
    write('snap/me', 'old.example\n')
    write('snap/list', 'a\n$include more\n')
    write('snap/more', 'b\n')
    const first = await ConfigDir.open([join(root, 'snap')])
    assert.deepEqual(texts(first, 'list'), ['a', 'b'])
    assert.equal(first.value('me')?.text, 'old.example')
    assert.equal(first.lines('absent'), undefined)
    // Through JSON, as it travels from a worker to the primary and on to a replacement.
    const snapshot = JSON.parse(JSON.stringify(first.snapshot()))
    write('snap/me', 'new.example\n')
    write('snap/more', 'changed\n')
    write('snap/absent', 'now here\n')
    write('snap/other', 'x\n')
    const replacement = await ConfigDir.open([join(root, 'snap')], snapshot)
    assert.equal(replacement.value('me')?.text, 'old.example')
    assert.deepEqual(replacement.lines('list'), first.lines('list'))
    assert.equal(replacement.lines('absent'), undefined)
    assert.equal(replacement.path('me'), join(root, 'snap/me'))
    assert.equal(replacement.path('absent'), undefined)
    assert.deepEqual(replacement.files(), first.files())
    // A key the snapshot does not have is read from the files.
    assert.deepEqual(texts(replacement, 'other'), ['x'])
  })
})
