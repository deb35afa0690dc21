import assert from 'node:assert/strict'
import { access, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CVM_CHECKPASSWORD, type CvmServer, startCvm } from '../../../test/peers/cvm.ts'
import {
  AUTH_FAILED,
  AUTH_OK,
  AUTH_TEMPFAIL,
  type BackendServer,
  loginOverStartTls,
  logsHold,
  startBackendServer,
  startSilentPeer,
} from './backend-test-support.ts'

const ALICE = { name: 'alice@example.com', password: 'c0rrect "horse" \\ $(battery)' }
// cvm-checkpassword splits the domain off at the @: cvm-pwfile sees the account alone.
const ALICE_ACCOUNT = { name: 'alice', password: ALICE.password }
const skip = (await access(CVM_CHECKPASSWORD).then(
  () => false,
  () => true,
))
  ? 'cvm (cvm-checkpassword) is not installed'
  : false

describe('auth/auth_checkpassword with cvm-checkpassword and cvm-pwfile', { skip, timeout: 120_000 }, () => {
  let cvm: CvmServer
  let srv: BackendServer
  before(async () => {
    cvm = await startCvm([ALICE_ACCOUNT, { name: 'bob', password: 'b0b' }])
    srv = await startBackendServer([
      `auth/auth_checkpassword checkpw "${CVM_CHECKPASSWORD} cvm-local:${cvm.socket}" true /bin/true timeout 5`,
    ])
  })
  after(async () => {
    await srv?.close()
    await cvm?.close()
  })

  it('accepts the right password with PLAIN and LOGIN, and the session may relay', async () => {
    assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_OK)
    assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password, 'LOGIN'), AUTH_OK)
    assert.ok(srv.logs.some((e) => e.message === `authenticated ${ALICE.name} with PLAIN`))
  })

  it('refuses a wrong password and a missing user alike (535)', async () => {
    assert.equal(await loginOverStartTls(srv, ALICE.name, 'wrong'), AUTH_FAILED)
    assert.equal(await loginOverStartTls(srv, 'nobody@example.com', ALICE.password), AUTH_FAILED)
  })

  it('an injection attempt runs no shell: a password of shell syntax is only a wrong password', async () => {
    const marker = join(cvm.dir, 'pwned')
    assert.equal(await loginOverStartTls(srv, ALICE.name, `x; touch ${marker}`), AUTH_FAILED)
    assert.equal(await loginOverStartTls(srv, `bob$(touch ${marker})`, 'b0b'), AUTH_FAILED)
    await assert.rejects(access(marker), 'no shell ran the text')
  })

  it('never logs the password', () => {
    assert.equal(logsHold(srv, ALICE.password), false)
  })
})

describe('auth/auth_checkpassword when the service fails', { skip, timeout: 120_000 }, () => {
  it('the CVM module down: 454, and 235 again once it is back', async () => {
    const cvm = await startCvm([ALICE_ACCOUNT])
    const srv = await startBackendServer([
      `auth/auth_checkpassword checkpw "${CVM_CHECKPASSWORD} cvm-local:${cvm.socket}" true /bin/true`,
    ])
    try {
      await cvm.stop()
      assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_TEMPFAIL)
      assert.ok(
        srv.logs.some((e) => /checkpassword cannot check "alice@example\.com" now: .* exited \d+/.test(e.message)),
      )
      await cvm.start()
      assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_OK)
    } finally {
      await srv.close()
      await cvm.close()
    }
  })

  it('a CVM socket that accepts and never answers: the program is killed at the deadline, 454', async () => {
    const cvm = await startCvm([ALICE_ACCOUNT])
    await cvm.stop()
    const silent = await startSilentPeer(cvm.socket)
    const srv = await startBackendServer([
      `auth/auth_checkpassword checkpw "${CVM_CHECKPASSWORD} cvm-local:${cvm.socket}" true /bin/true timeout 0.5`,
    ])
    try {
      assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_TEMPFAIL)
      assert.equal(silent.accepted, 1)
      assert.ok(srv.logs.some((e) => /did not answer within 0\.5 s and was killed/.test(e.message)))
    } finally {
      await srv.close()
      await silent.close()
      await cvm.close()
    }
  })
})

describe('auth/auth_checkpassword with stand-in programs', { timeout: 120_000 }, () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qtsmtpd-checkpw-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  const program = async (name: string, script: string) => {
    const file = join(dir, name)
    await writeFile(file, `#!/bin/sh\n${script}\n`)
    await chmod(file, 0o755)
    return file
  }

  it('gets "user NUL password NUL timestamp NUL" on descriptor 3 and runs the true program with its arguments', async () => {
    const got = join(dir, 'got')
    const ran = join(dir, 'ran')
    const checkpw = await program('record', `cat <&3 > ${got}; exec "$@"`)
    const truth = await program('truth', `echo "$@" > ${ran}`)
    const srv = await startBackendServer([`auth/auth_checkpassword checkpw ${checkpw} true "${truth} one two"`])
    try {
      assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_OK)
      const [user, password, stamp, rest] = (await readFile(got, 'utf8')).split('\0')
      assert.deepEqual([user, password, rest], [ALICE.name, ALICE.password, ''])
      assert.match(stamp ?? '', /^\d{10}$/)
      assert.equal(await readFile(ran, 'utf8'), 'one two\n')
    } finally {
      await srv.close()
    }
  })

  for (const [code, reply, logged] of [
    [1, AUTH_FAILED, undefined],
    [2, AUTH_TEMPFAIL, /exited 2 \(misuse\): it said no/],
    [111, AUTH_TEMPFAIL, /exited 111 \(temporary failure\): it said no/],
    [3, AUTH_TEMPFAIL, /exited 3: it said no/],
  ] as const)
    it(`exit ${code}: ${reply.slice(0, 3)}`, async () => {
      const checkpw = await program(`exit${code}`, `cat <&3 >/dev/null; echo "it said no to $1" >&2; exit ${code}`)
      const srv = await startBackendServer([`auth/auth_checkpassword checkpw ${checkpw} true /bin/true`])
      try {
        assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), reply)
        if (logged !== undefined)
          assert.ok(
            srv.logs.some((e) => logged.test(e.message)),
            'the reason is logged',
          )
      } finally {
        await srv.close()
      }
    })

  it('a program that echoes the password to stderr: the log line has it cut out', async () => {
    const checkpw = await program('echo', `tr '\\0' ' ' <&3 >&2; exit 111`)
    const srv = await startBackendServer([`auth/auth_checkpassword checkpw ${checkpw} true /bin/true`])
    try {
      assert.equal(await loginOverStartTls(srv, ALICE.name, ALICE.password), AUTH_TEMPFAIL)
      assert.ok(srv.logs.some((e) => e.message.includes(`${ALICE.name} <password> `)))
      assert.equal(logsHold(srv, ALICE.password), false)
    } finally {
      await srv.close()
    }
  })

  it("qpsmtpd's config/smtpauth-checkpassword works, and a missing program stops the start with the file and line", async () => {
    const checkpw = await program('yes', 'cat <&3 >/dev/null; exec "$@"')
    const srv = await startBackendServer(['auth/auth_checkpassword'], {
      'smtpauth-checkpassword': `${checkpw} /bin/true`,
    })
    try {
      assert.equal(await loginOverStartTls(srv, ALICE.name, 'anything'), AUTH_OK)
    } finally {
      await srv.close()
    }
    await assert.rejects(
      startBackendServer(['auth/auth_checkpassword'], { 'smtpauth-checkpassword': `${dir}/missing /bin/true` }),
      /smtpauth-checkpassword:1: .*missing is missing or not executable/,
    )
    await assert.rejects(startBackendServer(['auth/auth_checkpassword']), /give checkpw and true/)
  })
})
