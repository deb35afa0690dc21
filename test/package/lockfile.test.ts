/**
 * A fresh clone stays clean after `npm install`: package-lock.json must already say what npm
 * would write for package.json (engines, dependency kinds, bin), or every contributor's first
 * install leaves a modified lock file behind. CI also runs `git status` after its own install.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { promisify } from 'node:util'

const repo = resolve(import.meta.dirname, '../..')
const run = promisify(execFile)

test('npm install leaves package-lock.json as committed', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-lock-'))
  try {
    for (const f of ['package.json', 'package-lock.json']) await copyFile(join(repo, f), join(dir, f))
    // --package-lock-only resolves the tree as `npm install` does without installing it.
    await run('npm', ['install', '--package-lock-only', '--ignore-scripts', '--prefer-offline', '--no-audit'], {
      cwd: dir,
    })
    const diff = await run('diff', ['-u', join(repo, 'package-lock.json'), join(dir, 'package-lock.json')]).then(
      () => '',
      (e: { stdout: string }) => e.stdout,
    )
    assert.equal(diff, '', `npm install rewrites package-lock.json:\n${diff}`)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
