import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { assertLinear } from '../../test/linear-time.ts'
import { asciiUpperCase, isHttpLike, splitCommand } from './command-line.ts'

describe('splitCommand', () => {
  const cases = [
    ['verb only', 'QUIT', 'QUIT', ''],
    ['lower-case verb', 'quit', 'QUIT', ''],
    ['mixed-case verb', 'eHlO client.test', 'EHLO', 'client.test'],
    ['args keep inner spaces', 'MAIL FROM:<a@b>  SIZE=1', 'MAIL', 'FROM:<a@b>  SIZE=1'],
    ['only one space is the separator', 'MAIL  FROM:<a@b>', 'MAIL', ' FROM:<a@b>'],
    ['trailing spaces trimmed', 'RCPT TO:<a@b>   ', 'RCPT', 'TO:<a@b>'],
    ['trailing tab trimmed', 'NOOP\t', 'NOOP', ''],
    ['verb with trailing spaces', 'NOOP   ', 'NOOP', ''],
    ['empty line', '', '', ''],
    ['leading space: empty verb', ' HELO x', '', 'HELO x'],
    ['tab is not a separator', 'HELO\tx', 'HELO\tX', ''],
    ['ASCII-only upper-casing', 'straße x', 'STRAßE', 'x'],
    ['dotless i stays', 'ıncoming', 'ıNCOMING', ''],
  ] as const
  for (const [name, line, verb, args] of cases) {
    it(name, () => assert.deepEqual(splitCommand(line), { verb, args }))
  }
})

describe('isHttpLike', () => {
  const cases = [
    ['GET /', 'GET /', true],
    ['POST with version', 'POST / HTTP/1.1', true],
    ['HEAD', 'HEAD / HTTP/1.0', true],
    ['CONNECT', 'CONNECT mx.example:25 HTTP/1.1', true],
    ['CONNECT without version', 'CONNECT host:443', true],
    ['PUT with nothing after the space', 'PUT ', true],
    ['OPTIONS', 'OPTIONS * HTTP/1.1', true],
    ['DELETE', 'DELETE /x', true],
    ['lower-case method', 'get /', true],
    ['POP3 USER', 'USER x', true],
    ['HTTP/2 preface', 'PRI * HTTP/2.0', true],
    ['any request line', 'FOO /bar HTTP/1.1', true],
    ['HTTP/2 short', 'BREW /pot HTTP/2', true],
    ['HELO', 'HELO client.test', false],
    ['EHLO named GET', 'EHLO GET', false],
    ['MAIL', 'MAIL FROM:<a@b>', false],
    ['bare GET', 'GET', false],
    ['HTTP/ in the middle', 'HELO HTTP/1.1.example', false],
    ['HTTP version only', 'HTTP/1.1', false],
    ['HTTP/1.x with junk', 'NOOP HTTP/1.1x', false],
    ['empty', '', false],
  ] as const
  for (const [name, line, want] of cases) it(name, () => assert.equal(isHttpLike(line), want))

  const long = [
    ['GET and spaces', (n: number) => `GET${' '.repeat(n)}`],
    ['many words', (n: number) => 'a '.repeat(n / 2)],
    ['one long word before HTTP/1.1', (n: number) => `${'x'.repeat(n)} HTTP/1.1`],
  ] as const
  for (const [name, make] of long)
    it(`is linear on lines up to 64 KB: ${name}`, () => {
      assertLinear(name, make, (line) => {
        isHttpLike(line)
        splitCommand(line)
      })
    })
})

describe('asciiUpperCase', () => {
  it('maps a-z only', () => assert.equal(asciiUpperCase('abz AZ 09 éß'), 'ABZ AZ 09 éß'))
})
