import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import packet, { type Packet } from 'dns-packet'
import { encodeQuery, negativeTtl, parseResponse } from './message.ts'
import { encodeQueryName } from './name.ts'

const qname = encodeQueryName('host.example') ?? assert.fail()
const response = (p: Packet) =>
  packet.encode({
    type: 'response',
    id: 7,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name: 'host.example', type: 'A', class: 'IN' }],
    ...p,
  })
const parse = (buf: Buffer) => parseResponse(buf, 7, qname, 'A')
const a = { name: 'host.example', type: 'A', ttl: 60, data: '192.0.2.1' } as const

describe('dns/message', () => {
  it('asks one recursive question with an EDNS0 OPT record (RFC 6891)', () => {
    const q = packet.decode(encodeQuery(0x1234, qname, 'TXT', 1232))
    assert.equal(q.id, 0x1234)
    assert.ok(q.flag_rd)
    assert.deepEqual(q.questions, [{ name: 'host.example', type: 'TXT', class: 'IN' }])
    assert.equal(q.additionals?.[0]?.type, 'OPT')
    assert.equal((q.additionals?.[0] as { udpPayloadSize?: number } | undefined)?.udpPayloadSize, 1232)
    assert.equal(packet.decode(encodeQuery(1, qname, 'A', 0)).additionals?.length, 0)
  })

  it('reads the records of an answer', () => {
    const r = parse(response({ answers: [a] }))
    assert.equal(r.status, 'ok')
    assert.deepEqual(r.status === 'ok' && r.answers.map((x) => x.data), ['192.0.2.1'])
  })

  const ignored = [
    { name: 'another id', buf: () => response({ id: 8, answers: [a] }) },
    { name: 'another name', buf: () => response({ questions: [{ name: 'other.example', type: 'A' }], answers: [a] }) },
    {
      name: 'another type',
      buf: () => response({ questions: [{ name: 'host.example', type: 'AAAA' }], answers: [a] }),
    },
    { name: 'a query, not a response', buf: () => response({ type: 'query', answers: [a] }) },
    {
      name: 'two questions',
      buf: () =>
        response({
          questions: [
            { name: 'host.example', type: 'A' },
            { name: 'x', type: 'A' },
          ],
        }),
    },
    { name: 'a short datagram', buf: () => Buffer.from([0, 7, 0x80]) },
  ]
  for (const c of ignored)
    it(`ignores a datagram with ${c.name} (RFC 5452 §9.1)`, () => assert.equal(parse(c.buf()).status, 'ignore'))

  it('accepts the question in another case (0x20)', () => {
    const buf = response({ questions: [{ name: 'HOST.Example', type: 'A' }], answers: [a] })
    assert.equal(parse(buf).status, 'ok')
  })

  it('a record whose data does not fill its RDLENGTH is malformed, not shifted', () => {
    const buf = response({ answers: [a, { ...a, data: '192.0.2.2' }] })
    // The first A record's RDLENGTH (4) becomes 5: its data would swallow a byte of the next record.
    const at = buf.indexOf(Buffer.from([0, 4, 192, 0, 2, 1]))
    buf.writeUInt16BE(5, at)
    const r = parse(buf)
    assert.equal(r.status, 'malformed')
  })

  it('records past the end of the datagram are malformed', () => {
    const buf = response({ answers: [a] })
    assert.equal(parse(buf.subarray(0, buf.length - 2)).status, 'malformed')
  })

  it('a compression pointer to itself is malformed, not a hang', () => {
    const buf = response({ answers: [a] })
    const owner = 12 + qname.wire.length + 4
    buf.writeUInt16BE(0xc000 | owner, owner)
    assert.equal(parse(buf).status, 'malformed')
  })

  it('a truncated answer is reported without reading its records', () => {
    const buf = response({ flags: packet.TRUNCATED_RESPONSE, answers: [a] })
    const r = parse(buf.subarray(0, buf.length - 3))
    assert.ok(r.status === 'ok' && r.truncated)
  })

  it('FORMERR without the question is still an answer (RFC 6891 §7)', () => {
    const buf = packet.encode({ type: 'response', id: 7, flags: 1 })
    assert.ok(parse(buf).status === 'ok')
  })

  it('the negative TTL is the lower of the SOA TTL and its MINIMUM (RFC 2308 §5)', () => {
    const soa = (ttl: number, minimum: number) =>
      parse(
        response({
          authorities: [
            {
              name: 'example',
              type: 'SOA',
              ttl,
              data: { mname: 'ns', rname: 'h', serial: 1, refresh: 1, retry: 1, expire: 1, minimum },
            },
          ],
        }),
      )
    const ttl = (r: ReturnType<typeof parse>) => (r.status === 'ok' ? negativeTtl(r.authorities) : -1)
    assert.equal(ttl(soa(3600, 60)), 60)
    assert.equal(ttl(soa(30, 600)), 30)
    assert.equal(ttl(parse(response({}))), 0)
  })
})
