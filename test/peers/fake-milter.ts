/**
 * A scripted milter (filter side) on a loopback port or a Unix socket, for the protocol's edge
 * cases that real filters never produce: every modification, an action it did not negotiate,
 * malformed and oversized packets, a filter that accepts and never answers, one that dies in
 * the middle of a message. It records every packet it received (macros included), per
 * connection, and answers each command through `reply` (default: continue).
 */
import { createServer, type Server, type Socket } from 'node:net'

export interface Received {
  readonly letter: string
  readonly data: Buffer
  /** The data split at NULs (the last, empty piece dropped): the arguments of most commands. */
  readonly strings: string[]
}

/**
 * What the fake does after a command: send these packets, say nothing, close at once, or stop
 * reading from the socket and say nothing (`stall`: what a filter stuck in a scan looks like).
 */
export type FakeAnswer = readonly Buffer[] | 'silent' | 'die' | 'stall'

export interface NegotiationOffer {
  readonly version: number
  readonly actions: number
  readonly protocol: number
}

export interface FakeMilterScript {
  /** The negotiation reply (default: version 6, all offered actions, no protocol bits). */
  readonly negotiate?: (offer: NegotiationOffer) => FakeAnswer
  /** The answer to each command other than negotiation, macros, abort and quit. */
  readonly reply?: (command: Received, connection: FakeConnection) => FakeAnswer | Promise<FakeAnswer>
}

export interface FakeConnection {
  readonly received: Received[]
  /** Commands only, without macro packets: `['C', 'H', 'M', ...]`. */
  letters(): string[]
  /** Macros received for a command letter, by name. */
  macros(letter: string): Record<string, string>
  /** Writes a packet now (progress while a reply is being prepared). */
  send(p: Buffer): void
  readonly closed: Promise<void>
}

export interface FakeMilter {
  /** `inet:PORT@127.0.0.1`, or `unix:/path` with `unixPath`. */
  readonly socket: string
  readonly port: number
  readonly connections: FakeConnection[]
  /** Resolves when `n` connections have been accepted. */
  connected(n?: number): Promise<FakeConnection>
  close(): Promise<void>
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}
const str = (s: string | Buffer) => Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.of(0)])

/** A packet from a letter and data parts. */
export function packet(letter: string, ...parts: Buffer[]): Buffer {
  const data = Buffer.concat(parts)
  return Buffer.concat([u32(data.length + 1), Buffer.from(letter, 'latin1'), data])
}

/** Reply packets, filter to MTA. */
export const milterReply = {
  negotiate: (version: number, actions: number, protocol: number, symbolLists: [number, string][] = []) =>
    packet(
      'O',
      u32(version),
      u32(actions),
      u32(protocol),
      ...symbolLists.map(([s, l]) => Buffer.concat([u32(s), str(l)])),
    ),
  continue: () => packet('c'),
  accept: () => packet('a'),
  reject: () => packet('r'),
  tempfail: () => packet('t'),
  discard: () => packet('d'),
  skip: () => packet('s'),
  progress: () => packet('p'),
  shutdown: () => packet('4'),
  replyCode: (text: string) => packet('y', str(text)),
  addHeader: (name: string, value: string) => packet('h', str(name), str(value)),
  insertHeader: (index: number, name: string, value: string) => packet('i', u32(index), str(name), str(value)),
  changeHeader: (index: number, name: string, value: string) => packet('m', u32(index), str(name), str(value)),
  addRecipient: (address: string) => packet('+', str(address)),
  addRecipientWithArgs: (address: string, args: string) => packet('2', str(address), str(args)),
  removeRecipient: (address: string) => packet('-', str(address)),
  changeSender: (address: string, args?: string) =>
    args === undefined ? packet('e', str(address)) : packet('e', str(address), str(args)),
  replaceBody: (chunk: string | Buffer) => packet('b', typeof chunk === 'string' ? Buffer.from(chunk) : chunk),
  quarantine: (reason: string) => packet('q', str(reason)),
}

export async function startFakeMilter(
  script: FakeMilterScript = {},
  opts: { unixPath?: string } = {},
): Promise<FakeMilter> {
  const connections: FakeConnection[] = []
  const sockets = new Set<Socket>()
  const waiters: { n: number; resolve: (c: FakeConnection) => void }[] = []
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    const conn = serve(socket, script)
    connections.push(conn)
    for (const w of [...waiters]) {
      if (connections.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve(connections[w.n - 1] as FakeConnection)
      }
    }
    socket.once('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => {
    if (opts.unixPath !== undefined) server.listen(opts.unixPath, resolve)
    else server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return {
    socket: opts.unixPath !== undefined ? `unix:${opts.unixPath}` : `inet:${port}@127.0.0.1`,
    port,
    connections,
    connected: (n = 1) =>
      connections.length >= n
        ? Promise.resolve(connections[n - 1] as FakeConnection)
        : new Promise((resolve) => waiters.push({ n, resolve })),
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function serve(socket: Socket, script: FakeMilterScript): FakeConnection {
  const received: Received[] = []
  let buffered = Buffer.alloc(0)
  let chain = Promise.resolve()
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const conn: FakeConnection = {
    received,
    letters: () => received.filter((r) => r.letter !== 'D').map((r) => r.letter),
    macros: (letter) => {
      const out: Record<string, string> = {}
      for (const r of received) {
        if (r.letter !== 'D' || r.data.toString('latin1', 0, 1) !== letter) continue
        const pieces = splitStrings(r.data.subarray(1))
        for (let i = 0; i + 1 < pieces.length; i += 2) out[pieces[i] as string] = pieces[i + 1] as string
      }
      return out
    },
    send: (p) => {
      if (!socket.destroyed) socket.write(p)
    },
    closed,
  }
  const answer = (a: FakeAnswer) => {
    if (a === 'die') socket.destroy()
    else if (a === 'stall') socket.pause()
    else if (a !== 'silent' && !socket.destroyed) for (const p of a) socket.write(p)
  }
  socket.on('error', () => {})
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const length = buffered.readUInt32BE(0)
      const letter = buffered.toString('latin1', 4, 5)
      const data = Buffer.from(buffered.subarray(5, 4 + length))
      buffered = buffered.subarray(4 + length)
      const r: Received = { letter, data, strings: splitStrings(data) }
      received.push(r)
      chain = chain.then(async () => {
        if (letter === 'O') {
          const offer = { version: data.readUInt32BE(0), actions: data.readUInt32BE(4), protocol: data.readUInt32BE(8) }
          answer(script.negotiate?.(offer) ?? [milterReply.negotiate(6, offer.actions, 0)])
        } else if (letter === 'Q') socket.end()
        else if (letter !== 'D' && letter !== 'A') answer((await script.reply?.(r, conn)) ?? [milterReply.continue()])
      })
    }
  })
  return conn
}

function splitStrings(data: Buffer): string[] {
  const pieces = data.toString('utf8').split('\0')
  if (pieces[pieces.length - 1] === '') pieces.pop()
  return pieces
}
