import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseMilterSocket } from './socket-spec.ts'

describe('parseMilterSocket: the syntaxes of Sendmail, Postfix and qpsmtpd', () => {
  const cases = [
    { name: 'Sendmail inet:PORT@HOST', spec: 'inet:8891@localhost', want: { host: 'localhost', port: 8891 } },
    { name: 'Sendmail inet6:PORT@HOST', spec: 'inet6:8891@::1', want: { host: '::1', port: 8891 } },
    { name: 'Sendmail inet6:PORT@[HOST]', spec: 'inet6:8891@[::1]', want: { host: '::1', port: 8891 } },
    { name: 'Postfix inet:HOST:PORT', spec: 'inet:127.0.0.1:11332', want: { host: '127.0.0.1', port: 11332 } },
    { name: 'Postfix inet:[IPv6]:PORT', spec: 'inet:[::1]:11332', want: { host: '::1', port: 11332 } },
    { name: 'unix:/path', spec: 'unix:/run/opendkim/opendkim.sock', want: { path: '/run/opendkim/opendkim.sock' } },
    { name: 'local:/path', spec: 'local:/var/run/milter.sock', want: { path: '/var/run/milter.sock' } },
    { name: 'a bare path', spec: '/run/clamav/clamav-milter.ctl', want: { path: '/run/clamav/clamav-milter.ctl' } },
    { name: 'qpsmtpd PORT (localhost)', spec: '5513', want: { host: '127.0.0.1', port: 5513 } },
    { name: 'qpsmtpd HOST:PORT', spec: 'bmcluster:5513', want: { host: 'bmcluster', port: 5513 } },
  ] as const
  for (const c of cases) it(c.name, () => assert.deepEqual(parseMilterSocket(c.spec), c.want))

  const bad = ['inet:', 'inet:host', 'tcp:1@h', 'inet:70000@localhost', 'inet:0@localhost', 'host:port']
  for (const spec of bad)
    it(`refuses ${JSON.stringify(spec)}`, () => assert.throws(() => parseMilterSocket(spec), /milter socket/))
})
