#!/usr/bin/env python3
"""Logs in with Python's smtplib over STARTTLS, for test/interop/auth-clients.test.ts.

PLAIN, LOGIN and CRAM-MD5 are smtplib's own; SCRAM-SHA-256 is written here from RFC 5802 and
RFC 7677 (Debian ships no Python SCRAM client), driven by smtplib.SMTP.auth's challenge loop.
Prints one JSON object: the AUTH reply, and for SCRAM whether the server proved it holds the key.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import unicodedata


class Scram:
    """RFC 5802 client, no channel binding (gs2 flag n)."""

    def __init__(self, user, password):
        self.user = user.replace('=', '=3D').replace(',', '=2C')
        self.password = unicodedata.normalize('NFKC', password)
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.step = 0
        self.server_verified = False

    def __call__(self, challenge=None):
        self.step += 1
        if self.step == 1:
            self.bare = f'n={self.user},r={self.nonce}'
            return 'n,,' + self.bare
        if self.step == 2:
            first = challenge.decode()
            attrs = dict(kv.split('=', 1) for kv in first.split(','))
            if not attrs['r'].startswith(self.nonce):
                raise ValueError('server nonce does not extend ours')
            salted = hashlib.pbkdf2_hmac('sha256', self.password.encode(), base64.b64decode(attrs['s']), int(attrs['i']))
            client_key = hmac.digest(salted, b'Client Key', 'sha256')
            stored_key = hashlib.sha256(client_key).digest()
            without_proof = f"c=biws,r={attrs['r']}"
            self.message = f'{self.bare},{first},{without_proof}'.encode()
            signature = hmac.digest(stored_key, self.message, 'sha256')
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            self.server_key = hmac.digest(salted, b'Server Key', 'sha256')
            return f'{without_proof},p={base64.b64encode(proof).decode()}'
        expected = 'v=' + base64.b64encode(hmac.digest(self.server_key, self.message, 'sha256')).decode()
        self.server_verified = challenge.decode() == expected
        return ''


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--mechanism', choices=['PLAIN', 'LOGIN', 'CRAM-MD5', 'SCRAM-SHA-256'], required=True)
    p.add_argument('--user', required=True)
    p.add_argument('--password', required=True)
    a = p.parse_args()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed
    out = {}
    s = smtplib.SMTP('127.0.0.1', a.port, local_hostname='py.client.test', timeout=20)
    try:
        s.ehlo()
        s.starttls(context=ctx)
        s.ehlo()
        out['offered'] = s.esmtp_features.get('auth', '').split()
        s.user, s.password = a.user, a.password
        if a.mechanism == 'SCRAM-SHA-256':
            scram = Scram(a.user, a.password)
            code, msg = s.auth('SCRAM-SHA-256', scram, initial_response_ok=True)
            out['server_verified'] = scram.server_verified
        else:
            fn = {'PLAIN': s.auth_plain, 'LOGIN': s.auth_login, 'CRAM-MD5': s.auth_cram_md5}[a.mechanism]
            code, msg = s.auth(a.mechanism, fn, initial_response_ok=a.mechanism != 'CRAM-MD5')
        out['auth'] = [code, msg.decode()]
    except smtplib.SMTPAuthenticationError as e:
        out['auth'] = [e.smtp_code, e.smtp_error.decode()]
    finally:
        try:
            s.quit()
        except smtplib.SMTPException:
            pass
    print(json.dumps(out))


if __name__ == '__main__':
    main()
