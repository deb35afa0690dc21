/**
 * domainkeys through real SMTP sessions: a DomainKeys signature is reported, never verified
 * nor refused; unsigned mail gets no entry; qpsmtpd's arguments load.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { startTestServer } from '../../testing/index.ts'
import { acceptRcpt, sendMailSession } from '../test-support.ts'
import domainkeys from './domainkeys.ts'

const signed = [
  'DomainKey-Signature: a=rsa-sha1; q=dns; c=nofws;',
  '  s=brisbane; d=Example.NET;',
  '  h=Received:From:To:Subject:Date:Message-ID;',
  '  b=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR',
  'From: Joe SixPack <joe@football.example.com>',
  'To: Suzie Q <suzie@shopping.example.net>',
  'Subject: Is dinner ready?',
  '',
  'Hi.',
  '',
].join('\r\n')

describe('domainkeys', () => {
  it('a DomainKeys signature: domainkeys=neutral with the reason and header.d, accepted even with reject 1', async () => {
    const srv = await startTestServer({
      plugins: [acceptRcpt(), domainkeys({ reject: '1', reject_type: 'temp', warn_only: 'yes' })],
    })
    try {
      const r = await sendMailSession(srv, 'joe@football.example.com', ['suzie@mx.test'], signed)
      assert.equal(r.code, 250)
      assert.match(
        srv.queued[0]?.text ?? '',
        /\r\nAuthentication-Results: mx\.test;\r\n\tdomainkeys=neutral reason="DomainKeys \(RFC 4870\) is historic; its rsa-sha1 signatures are not verified" header\.d=example\.net\r\n/,
      )
    } finally {
      await srv.close()
    }
  })

  it('an unsigned message gets no domainkeys entry', async () => {
    const srv = await startTestServer({ plugins: [acceptRcpt(), domainkeys()] })
    try {
      await sendMailSession(
        srv,
        'joe@football.example.com',
        ['suzie@mx.test'],
        signed.split('\r\n').slice(4).join('\r\n'),
      )
      assert.doesNotMatch(srv.queued[0]?.text ?? '', /domainkeys=|Authentication-Results/)
    } finally {
      await srv.close()
    }
  })
})
