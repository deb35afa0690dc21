/**
 * A scriptable DNS server on a 127.0.0.1 UDP port (and optionally TCP on the same port) for the
 * cases a real server will not produce on demand: no answer at all, SERVFAIL, forged, malformed
 * or oversized answers. The handler gets each decoded query and returns what to send back: any
 * number of datagrams (raw bytes or dns-packet objects), or nothing to stay silent.
 */
import { createSocket, type RemoteInfo } from 'node:dgram'
import { createServer, type Server } from 'node:net'
import packet, { type Packet } from 'dns-packet'

export interface DnsQuery {
  readonly id: number
  readonly name: string
  readonly type: string
  readonly raw: Buffer
  readonly from: RemoteInfo | 'tcp'
}

export type Reply = Buffer | Packet

export interface DnsResponder {
  readonly address: '127.0.0.1'
  readonly port: number
  /** Queries received so far, in order. */
  readonly queries: readonly DnsQuery[]
  close(): Promise<void>
}

/** A response to `q` with its id and question: `{ answers: [...] }`, `{ rcode: 'SERVFAIL' }`, .... */
export function answer(q: DnsQuery, p: Packet & { rcode?: string } = {}): Packet {
  const rcode = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'].indexOf(p.rcode ?? 'NOERROR')
  return {
    type: 'response',
    id: q.id,
    questions: [{ name: q.name, type: q.type as 'A', class: 'IN' }],
    ...p,
    flags: (p.flags ?? 0) | packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE | rcode,
  }
}

export async function startDnsResponder(
  handler: (q: DnsQuery) => readonly Reply[] | Promise<readonly Reply[]>,
  opts: { readonly tcp?: boolean } = {},
): Promise<DnsResponder> {
  const queries: DnsQuery[] = []
  const socket = createSocket('udp4')
  const decode = (raw: Buffer, from: DnsQuery['from']): DnsQuery => {
    const p = packet.decode(raw)
    const q = p.questions?.[0]
    return { id: p.id ?? 0, name: q?.name ?? '', type: q?.type ?? '', raw, from }
  }
  const encode = (r: Reply) => (Buffer.isBuffer(r) ? r : packet.encode(r))
  socket.on('message', async (raw, from) => {
    const q = decode(raw, from)
    queries.push(q)
    for (const r of await handler(q)) socket.send(encode(r), from.port, from.address)
  })
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))
  const port = socket.address().port
  let tcp: Server | undefined
  if (opts.tcp) {
    tcp = createServer((conn) => {
      let buffered = Buffer.alloc(0)
      conn.on('error', () => undefined)
      conn.on('data', async (chunk) => {
        buffered = Buffer.concat([buffered, chunk])
        if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return
        const q = decode(buffered.subarray(2, 2 + buffered.readUInt16BE(0)), 'tcp')
        queries.push(q)
        for (const r of await handler(q)) {
          const body = encode(r)
          const prefix = Buffer.alloc(2)
          prefix.writeUInt16BE(body.length)
          conn.write(Buffer.concat([prefix, body]))
        }
        conn.end()
      })
    })
    await new Promise<void>((resolve) => tcp?.listen(port, '127.0.0.1', resolve))
  }
  return {
    address: '127.0.0.1',
    port,
    queries,
    close: async () => {
      socket.close()
      await new Promise((resolve) => (tcp === undefined ? resolve(undefined) : tcp.close(resolve)))
    },
  }
}
