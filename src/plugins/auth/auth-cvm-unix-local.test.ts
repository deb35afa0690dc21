import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { access } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { CVM_PWFILE, type CvmServer, startCvm } from '../../../test/peers/cvm.ts'
import { decodeCvmAnswer, encodeCvmRequest, parseCvmTarget } from '../../clients/cvm/cvm.ts'
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

const ALICE = { name: 'alice', password: 'pa55 "w0rd" \\ with spaces' }
const skip = (await access(CVM_PWFILE).then(
  () => false,
  () => true,
))
  ? 'cvm (cvm-pwfile) is not installed'
  : false

describe("auth/auth_cvm_unix_local with Debian's cvm-pwfile", { skip, timeout: 120_000 }, () => {
  let cvm: CvmServer
  let local: BackendServer
  let udp: BackendServer
  before(async () => {
    cvm = await startCvm([ALICE, { name: 'bob', password: 'b0b' }], { udp: true })
    local = await startBackendServer([`auth/auth_cvm_unix_local cvm_socket ${cvm.socket} enable_smtp yes`])
    udp = await startBackendServer([
      `auth/auth_cvm_unix_local cvm_socket cvm-udp:127.0.0.1:${cvm.udpPort} enable_smtp yes timeout 2`,
    ])
  })
  after(async () => {
    await local?.close()
    await udp?.close()
    await cvm?.close()
  })

  for (const [transport, srv] of [
    ['Unix socket', () => local],
    ['UDP', () => udp],
  ] as const) {
    it(`${transport}: the right password with PLAIN and LOGIN, with and without a domain`, async () => {
      assert.equal(await loginOverStartTls(srv(), 'alice@example.com', ALICE.password), AUTH_OK)
      assert.equal(await loginOverStartTls(srv(), 'alice', ALICE.password, 'LOGIN'), AUTH_OK)
    })
    it(`${transport}: a wrong password and a missing user are refused alike`, async () => {
      assert.equal(await loginOverStartTls(srv(), 'alice@example.com', 'wrong'), AUTH_FAILED)
      assert.equal(await loginOverStartTls(srv(), 'nobody@example.com', ALICE.password), AUTH_FAILED)
    })
  }

  it('injection: an account with another @, a password too long for CVM (256 bytes): refused, and the module keeps answering', async () => {
    // The domain is what follows the last @: "bob@example.com@evil.test" asks for the account
    // "bob@example.com", which cvm-pwfile does not have.
    assert.equal(await loginOverStartTls(local, 'bob@example.com@evil.test', 'b0b'), AUTH_FAILED)
    assert.equal(await loginOverStartTls(local, 'bob', 'b'.repeat(256)), AUTH_FAILED)
    assert.equal(await loginOverStartTls(local, 'bob', 'b0b'), AUTH_OK)
  })

  it("qpsmtpd's defaults: not on smtp and submission listeners (535), on smtps", async () => {
    const srv = await startBackendServer([`auth/auth_cvm_unix_local cvm_socket ${cvm.socket}`])
    try {
      assert.equal(await loginOverStartTls(srv, 'alice', ALICE.password), AUTH_FAILED)
      assert.equal(await loginOverStartTls(srv, 'alice', ALICE.password, 'PLAIN', { implicitTls: true }), AUTH_OK)
    } finally {
      await srv.close()
    }
  })

  it('never logs the password', () => {
    assert.equal(logsHold(local, ALICE.password), false)
    assert.equal(logsHold(udp, ALICE.password), false)
  })
})

describe('auth/auth_cvm_unix_local when the module fails', { skip, timeout: 120_000 }, () => {
  it('module down (Unix socket and UDP): 454; back: 235', async () => {
    const cvm = await startCvm([ALICE], { udp: true })
    try {
      for (const socket of [`cvm-local:${cvm.socket}`, `cvm-udp:127.0.0.1:${cvm.udpPort}`]) {
        const srv = await startBackendServer([
          `auth/auth_cvm_unix_local cvm_socket ${socket} enable_smtp yes timeout 1`,
        ])
        try {
          await cvm.stop()
          assert.equal(await loginOverStartTls(srv, 'alice', ALICE.password), AUTH_TEMPFAIL, socket)
          assert.ok(srv.logs.some((e) => /^cvm cannot check "alice" now: /.test(e.message)))
          await cvm.start()
          assert.equal(await loginOverStartTls(srv, 'alice', ALICE.password), AUTH_OK, socket)
        } finally {
          await srv.close()
        }
      }
    } finally {
      await cvm.close()
    }
  })

  it('a socket that accepts and never answers, and a UDP port that never answers: 454 at the deadline', async () => {
    const cvm = await startCvm([ALICE])
    await cvm.stop()
    const silent = await startSilentPeer(cvm.socket)
    const mute = createSocket('udp4')
    await new Promise<void>((r) => mute.bind(0, '127.0.0.1', () => r()))
    let datagrams = 0
    mute.on('message', () => datagrams++)
    try {
      for (const line of [
        `auth/auth_cvm_unix_local cvm_socket ${cvm.socket} enable_smtp yes timeout 0.5`,
        `auth/auth_cvm_unix_local cvm_socket cvm-udp:127.0.0.1:${mute.address().port} enable_smtp yes timeout 1.5`,
      ]) {
        const srv = await startBackendServer([line])
        try {
          assert.equal(await loginOverStartTls(srv, 'alice', ALICE.password), AUTH_TEMPFAIL)
          assert.ok(srv.logs.some((e) => /no answer from CVM .* within \d+ ms/.test(e.message)))
        } finally {
          await srv.close()
        }
      }
      assert.equal(silent.accepted, 1)
      assert.equal(datagrams, 2, 'sent again after a second without an answer')
    } finally {
      mute.close()
      await silent.close()
      await cvm.close()
    }
  })
})

describe('CVM protocol version 2', () => {
  const random = Buffer.from('0102030405060708', 'hex')
  it('encodes the example of protocol-2.html', () => {
    const packet = encodeCvmRequest({ account: 'username', domain: 'localhost', password: 'password' }, random)
    assert.equal(
      packet.toString('hex'),
      `0208${random.toString('hex')}0108${Buffer.from('username').toString('hex')}0209${Buffer.from('localhost').toString('hex')}0308${Buffer.from('password').toString('hex')}00`,
    )
  })
  it("decodes answers: facts when valid, none otherwise; another request's or a malformed one is not an answer", () => {
    const facts = Buffer.from([0, 8, ...random, 1, 5, ...Buffer.from('alice'), 0])
    assert.deepEqual(decodeCvmAnswer(facts, random), { status: 0, facts: new Map([[1, 'alice']]) })
    assert.deepEqual(decodeCvmAnswer(Buffer.from([100, 8, ...random]), random), { status: 100, facts: new Map() })
    assert.equal(decodeCvmAnswer(Buffer.from([0, 8, ...Buffer.alloc(8), 0]), random), undefined)
    assert.equal(decodeCvmAnswer(Buffer.from([0, 8, ...random, 1, 9, 0x61]), random), undefined)
    assert.equal(decodeCvmAnswer(Buffer.from([0, 8, ...random, 0, 0]), random), undefined)
  })
  it('names', () => {
    assert.deepEqual(parseCvmTarget('/run/cvm.sock'), { kind: 'local', path: '/run/cvm.sock' })
    assert.deepEqual(parseCvmTarget('cvm-local:/run/cvm.sock'), { kind: 'local', path: '/run/cvm.sock' })
    assert.deepEqual(parseCvmTarget('cvm-udp:[::1]:1234'), { kind: 'udp', host: '::1', port: 1234 })
    assert.throws(() => parseCvmTarget('cvm.sock'), /expected cvm-local/)
  })
})
