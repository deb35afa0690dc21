/**
 * A client of Bruce Guenter's Credential Validation Modules (untroubled.org/cvm), protocol
 * version 2: `2, L, L random bytes, (tag, length, value)..., 0` in one request of at most 512
 * bytes; the answer starts with the status (0 valid, 100 credentials rejected, other codes
 * temporary), then echoes the random bytes, then facts. Over a Unix socket (`cvm-local:PATH`:
 * write, half-close, read to EOF) or UDP (`cvm-udp:HOST:PORT`: a datagram each way, sent again
 * while no answer came).
 * Security: tagged values are length-counted (version 1 put NUL-separated strings on the wire,
 * so a NUL in a value moved the fields); a value over 255 bytes or a request over 512 is
 * refused before sending; an answer that does not echo our random bytes is ignored (UDP
 * spoofing), and an answer over 512 bytes ends the read.
 */
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:net'
import { type ConnectTarget, NetError } from '../../net/index.ts'

export const CVM_MAX_PACKET = 512
const RANDOM_BYTES = 8

export const CvmCredential = { account: 1, domain: 2, password: 3 } as const
export const CVM_OK = 0
export const CVM_PERMFAIL = 100

/** Where the module listens: its CVM name, `cvm-local:/path` (or a bare path) or `cvm-udp:host:port`. */
export type CvmTarget =
  | { readonly kind: 'local'; readonly path: string }
  | { readonly kind: 'udp'; readonly host: string; readonly port: number }

export function parseCvmTarget(spec: string): CvmTarget {
  const udp = /^cvm-udp:(\[[0-9A-Fa-f:.]+\]|[\w.-]+):(\d{1,5})$/.exec(spec)
  if (udp?.[1] !== undefined && udp[2] !== undefined) {
    const port = Number(udp[2])
    if (port >= 1 && port <= 65535) return { kind: 'udp', host: udp[1].replace(/^\[|\]$/g, ''), port }
  }
  const path = spec.startsWith('cvm-local:') ? spec.slice('cvm-local:'.length) : spec
  if (path.startsWith('/')) return { kind: 'local', path }
  throw new Error(`expected cvm-local:/path/to/socket, an absolute socket path, or cvm-udp:host:port, got "${spec}"`)
}

export interface CvmCredentials {
  readonly account: string
  readonly domain?: string | undefined
  readonly password: string
}

/** The request packet and the random bytes its answer must echo; throws when a value is too long. */
export function encodeCvmRequest(creds: CvmCredentials, random: Buffer = randomBytes(RANDOM_BYTES)): Buffer {
  const parts: Buffer[] = [Buffer.from([2, random.length]), random]
  const add = (tag: number, value: string) => {
    const bytes = Buffer.from(value, 'utf8')
    if (bytes.length > 255) throw new RangeError(`a CVM credential is at most 255 bytes (got ${bytes.length})`)
    parts.push(Buffer.from([tag, bytes.length]), bytes)
  }
  add(CvmCredential.account, creds.account)
  if (creds.domain !== undefined && creds.domain !== '') add(CvmCredential.domain, creds.domain)
  add(CvmCredential.password, creds.password)
  parts.push(Buffer.from([0]))
  const packet = Buffer.concat(parts)
  if (packet.length > CVM_MAX_PACKET) throw new RangeError(`a CVM request is at most ${CVM_MAX_PACKET} bytes`)
  return packet
}

export interface CvmAnswer {
  /** 0: valid; 100: rejected; other: a temporary failure (CVM's error codes). */
  readonly status: number
  /** Facts by tag (only when valid), e.g. 1: the user name. */
  readonly facts: ReadonlyMap<number, string>
}

/** Decodes an answer to the request with `random`; undefined when it is not one (malformed, or another request's). */
export function decodeCvmAnswer(packet: Buffer, random: Buffer): CvmAnswer | undefined {
  if (packet.length < 2 || packet.length > CVM_MAX_PACKET) return undefined
  const status = packet[0] as number
  const length = packet[1] as number
  if (packet.length < 2 + length || !packet.subarray(2, 2 + length).equals(random)) return undefined
  const facts = new Map<number, string>()
  if (status !== CVM_OK) return { status, facts }
  let at = 2 + length
  for (;;) {
    const tag = packet[at]
    if (tag === undefined) return undefined
    if (tag === 0) return at + 1 === packet.length ? { status, facts } : undefined
    const len = packet[at + 1]
    if (len === undefined || at + 2 + len > packet.length) return undefined
    if (!facts.has(tag)) facts.set(tag, packet.toString('utf8', at + 2, at + 2 + len))
    at += 2 + len
  }
}

export interface CvmTransport {
  /** Opens a Unix-socket connection (the net service's `connect`). */
  connect(target: ConnectTarget, opts: { timeoutMs: number; signal?: AbortSignal | undefined }): Promise<Socket>
}

/** Asks the module once; rejects (NetError) when it cannot be reached or does not answer in time. */
export async function askCvm(
  target: CvmTarget,
  creds: CvmCredentials,
  opts: { readonly timeoutMs: number; readonly signal?: AbortSignal | undefined; readonly transport: CvmTransport },
): Promise<CvmAnswer> {
  const random = randomBytes(RANDOM_BYTES)
  const request = encodeCvmRequest(creds, random)
  const deadline = AbortSignal.timeout(opts.timeoutMs)
  const signal = opts.signal === undefined ? deadline : AbortSignal.any([deadline, opts.signal])
  const where = target.kind === 'local' ? target.path : `${target.host}:${target.port}`
  const late = () =>
    deadline.aborted
      ? new NetError('ETIMEDOUT', `no answer from CVM ${where} within ${opts.timeoutMs} ms`)
      : signal.reason
  const packet =
    target.kind === 'local'
      ? await askLocal(target.path, request, signal, opts.transport, opts.timeoutMs, late)
      : await askUdp(target, request, random, signal, late)
  const answer = decodeCvmAnswer(packet, random)
  if (answer === undefined)
    throw new NetError('EPROTO', `CVM ${where} sent a malformed answer (${packet.length} bytes)`)
  return answer
}

async function askLocal(
  path: string,
  request: Buffer,
  signal: AbortSignal,
  transport: CvmTransport,
  timeoutMs: number,
  late: () => unknown,
): Promise<Buffer> {
  const socket = await transport.connect({ path }, { timeoutMs, signal })
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (err?: unknown) => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      if (err === undefined) resolve(Buffer.concat(chunks))
      else reject(err)
    }
    const onAbort = () => finish(late())
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('data', (d: Buffer) => {
      size += d.length
      if (size > CVM_MAX_PACKET)
        return finish(new NetError('EMSGSIZE', `CVM ${path} sent more than ${CVM_MAX_PACKET} bytes`))
      chunks.push(d)
    })
    socket.once('end', () => finish())
    socket.once('error', (e: NodeJS.ErrnoException) =>
      finish(new NetError(e.code ?? 'EIO', `CVM ${path}: ${e.message}`)),
    )
    socket.end(request)
  })
}

function askUdp(
  target: { readonly host: string; readonly port: number },
  request: Buffer,
  random: Buffer,
  signal: AbortSignal,
  late: () => unknown,
): Promise<Buffer> {
  const socket = createSocket(target.host.includes(':') ? 'udp6' : 'udp4')
  return new Promise<Buffer>((resolve, reject) => {
    let resend: NodeJS.Timeout | undefined
    const finish = (err: unknown, packet?: Buffer) => {
      clearInterval(resend)
      signal.removeEventListener('abort', onAbort)
      socket.close()
      if (packet !== undefined) resolve(packet)
      else reject(err)
    }
    const onAbort = () => finish(late())
    signal.addEventListener('abort', onAbort, { once: true })
    socket.on('error', (e: NodeJS.ErrnoException) =>
      finish(new NetError(e.code ?? 'EIO', `CVM ${target.host}:${target.port}: ${e.message}`)),
    )
    // The socket is connected, so only the module's datagrams arrive; one that does not echo
    // our random bytes answers another request (or is forged) and does not end the wait.
    socket.on('message', (msg) => {
      if (decodeCvmAnswer(msg, random) !== undefined) finish(undefined, msg)
    })
    const send = () => socket.send(request)
    socket.connect(target.port, target.host, () => {
      send()
      resend = setInterval(send, 1000)
    })
  })
}
