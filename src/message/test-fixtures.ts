/** Sample messages and helpers shared by the message tests (not a test file itself). */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export interface Sample {
  readonly name: string
  readonly message: Buffer
  readonly names: readonly string[] // field names, in order
  readonly body: Buffer
  readonly hasSeparator: boolean
}

const b = (s: string): Buffer => Buffer.from(s, 'latin1')

export const samples: readonly Sample[] = [
  {
    name: 'simple',
    message: b('From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello\r\n'),
    names: ['From', 'To', 'Subject'],
    body: b('Hello\r\n'),
    hasSeparator: true,
  },
  {
    name: 'folded headers',
    message: b('Subject: a long\r\n  folded\r\n\tsubject\r\nX-A: 1\r\n\r\nline 1\r\n\r\nline 3\r\n'),
    names: ['Subject', 'X-A'],
    body: b('line 1\r\n\r\nline 3\r\n'),
    hasSeparator: true,
  },
  {
    name: '8-bit headers (UTF-8 and latin1 bytes)',
    message: Buffer.concat([
      Buffer.from('Subject: Grüße ☃\r\nX-Latin: caf', 'utf8'),
      Buffer.from([0xe9, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]),
      Buffer.from([0x80, 0x81, 0x0d, 0x0a]),
    ]),
    names: ['Subject', 'X-Latin'],
    body: Buffer.from([0x80, 0x81, 0x0d, 0x0a]),
    hasSeparator: true,
  },
  {
    name: 'separator, empty body',
    message: b('Subject: x\r\n\r\n'),
    names: ['Subject'],
    body: b(''),
    hasSeparator: true,
  },
  {
    name: 'no separator, headers only',
    message: b('Subject: x\r\nFrom: y\r\n z\r\n'),
    names: ['Subject', 'From'],
    body: b(''),
    hasSeparator: false,
  },
  {
    name: 'body-looking first line',
    message: b('Hello there, no headers\r\nSubject: not a header\r\n'),
    names: [],
    body: b('Hello there, no headers\r\nSubject: not a header\r\n'),
    hasSeparator: false,
  },
  {
    name: 'non-field line ends the header section',
    message: b('Subject: x\r\nthis is body\r\n\r\nmore\r\n'),
    names: ['Subject'],
    body: b('this is body\r\n\r\nmore\r\n'),
    hasSeparator: false,
  },
  {
    name: 'mbox From_ line is body',
    message: b('From a@example.com Mon Jan  1 00:00:00 2001\r\nSubject: x\r\n'),
    names: [],
    body: b('From a@example.com Mon Jan  1 00:00:00 2001\r\nSubject: x\r\n'),
    hasSeparator: false,
  },
  {
    name: 'continuation before any field is body',
    message: b(' indented\r\nSubject: x\r\n'),
    names: [],
    body: b(' indented\r\nSubject: x\r\n'),
    hasSeparator: false,
  },
  {
    name: 'empty line first: no headers, separator',
    message: b('\r\nbody\r\n'),
    names: [],
    body: b('body\r\n'),
    hasSeparator: true,
  },
  {
    name: 'obsolete WSP before colon',
    message: b('Subject  : x\r\nX-Y:\r\n\r\nb\r\n'),
    names: ['Subject', 'X-Y'],
    body: b('b\r\n'),
    hasSeparator: true,
  },
  {
    name: 'unterminated last line is body',
    message: b('Subject: x\r\nX-Last: y'),
    names: ['Subject'],
    body: b('X-Last: y'),
    hasSeparator: false,
  },
  {
    name: 'bare CR line ends the headers',
    message: b('Subject: x\r\n\rjunk\r\n'),
    names: ['Subject'],
    body: b('\rjunk\r\n'),
    hasSeparator: false,
  },
  {
    name: 'empty message',
    message: b(''),
    names: [],
    body: b(''),
    hasSeparator: false,
  },
]

/**
 * Bytes held by the JS heap and by Buffers after a full garbage collection: for tests that bound
 * what a session may pin (issue 18 F1). Works without `--expose-gc` on the command line.
 */
export function retainedBytes(): number {
  collectGarbage()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

let gc: (() => void) | undefined
function collectGarbage(): void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
  gc()
}
