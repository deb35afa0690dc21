import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { withTestServer } from '../../testing/index.ts'
import { acceptRcpt, plainMessage, sendMailSession } from '../test-support.ts'
import klezFilter from './klez-filter.ts'

/** Klez's shape: an audio or application part whose base64 starts with a Windows executable header. */
const klez = (linesBefore: number, padding: number) =>
  plainMessage(
    [
      ...Array.from({ length: linesBefore }, (_, i) => `line ${i}`),
      '--b1',
      'Content-Type: audio/x-wav; name="setup.exe"',
      'Content-Transfer-Encoding: base64',
      '',
      'TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      ...Array.from(
        { length: padding },
        () => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      ),
      '--b1--',
      '',
    ].join('\r\n'),
    { 'MIME-Version': '1.0', 'Content-Type': 'multipart/alternative; boundary="b1"' },
  )

describe('virus/klez_filter', () => {
  it("refuses Klez's shape in a message of 60,000 bytes or more, among the first 41 body lines only", async () => {
    await withTestServer({ plugins: [acceptRcpt(), klezFilter()] }, async (srv) => {
      const send = (m: string) => sendMailSession(srv, 'a@sender.test', ['b@local.test'], m)
      assert.equal((await send(klez(2, 1000))).raw, '554 5.7.1 Klez Virus Detected\r\n')
      assert.equal((await send(klez(2, 10))).code, 250, 'under 60,000 bytes')
      assert.equal((await send(klez(40, 1000))).code, 250, 'the executable header after line 41')
    })
  })

  it('loads under qpsmtpd name', () => {
    assert.deepEqual(klezFilter.definition.aliases, ['virus/klez_filter'])
  })
})
