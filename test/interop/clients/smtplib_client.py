#!/usr/bin/env python3
"""A small Python smtplib client for the interoperability tests (test/interop/python.test.ts).

It connects to 127.0.0.1 only, sends one message and prints one JSON object on stdout:
the EHLO keywords, the AUTH reply, the DATA reply, and the exact bytes handed to DATA
(before dot-stuffing) as base64 plus their SHA-256, so the test can compare them with what
the server stored. Any SMTP error is printed as {"error": ...} with exit status 1.
"""
import argparse
import base64
import hashlib
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage


class Recorder:
    """Keeps the DATA reply and the bytes handed to data(), which smtplib does not return."""

    last_data = None
    sent = b''

    def data(self, msg):
        self.sent = msg if isinstance(msg, bytes) else msg.encode('ascii')
        reply = super().data(msg)
        self.last_data = reply
        return reply


class SMTP(Recorder, smtplib.SMTP):
    pass


class SMTPS(Recorder, smtplib.SMTP_SSL):
    pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--tls', choices=['none', 'starttls', 'implicit'], default='none')
    p.add_argument('--user')
    p.add_argument('--password')
    p.add_argument('--auth-mech', choices=['default', 'PLAIN', 'LOGIN'], default='default')
    p.add_argument('--from', dest='sender', required=True)
    p.add_argument('--to', action='append', required=True)
    p.add_argument('--raw-file', help='send these bytes with sendmail() (CRLF line endings expected)')
    p.add_argument('--subject', default='smtplib test')
    p.add_argument('--body', default='Hello from smtplib.\n')
    p.add_argument('--smtputf8', action='store_true', help="send_message(..., mail_options=['SMTPUTF8'])")
    p.add_argument('--repeat', type=int, default=1, help='send the message this many times on one connection')
    p.add_argument('--timeout', type=float, default=20.0)
    a = p.parse_args()

    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the test server's certificate is self-signed

    out = {}
    if a.tls == 'implicit':
        s = SMTPS('127.0.0.1', a.port, local_hostname='py.client.test', timeout=a.timeout, context=ctx)
    else:
        s = SMTP('127.0.0.1', a.port, local_hostname='py.client.test', timeout=a.timeout)
    try:
        s.ehlo()
        out['features'] = sorted(s.esmtp_features)
        if a.tls == 'starttls':
            out['starttls'] = list(decode(s.starttls(context=ctx)))
            s.ehlo()
            out['features_tls'] = sorted(s.esmtp_features)
        if a.user is not None:
            if a.auth_mech == 'default':
                out['auth'] = list(decode(s.login(a.user, a.password)))
            else:
                s.user, s.password = a.user, a.password
                fn = s.auth_plain if a.auth_mech == 'PLAIN' else s.auth_login
                out['auth'] = list(decode(s.auth(a.auth_mech, fn, initial_response_ok=a.auth_mech == 'PLAIN')))
        if a.raw_file is not None:
            with open(a.raw_file, 'rb') as f:
                data = f.read()
            for _ in range(max(1, min(a.repeat, 1000))):
                out['refused'] = s.sendmail(a.sender, a.to, data)
        else:
            msg = EmailMessage()
            msg['From'] = a.sender
            msg['To'] = ', '.join(a.to)
            msg['Subject'] = a.subject
            msg.set_content(a.body)
            opts = ['SMTPUTF8'] if a.smtputf8 else []
            for _ in range(max(1, min(a.repeat, 1000))):
                out['refused'] = s.send_message(msg, mail_options=opts)
        out['data'] = list(decode(s.last_data))
        out['sent_sha256'] = hashlib.sha256(s.sent).hexdigest()
        out['sent_length'] = len(s.sent)
        if len(s.sent) <= 1 << 20:
            out['sent_b64'] = base64.b64encode(s.sent).decode('ascii')
        out['quit'] = list(decode(s.quit()))
    except (smtplib.SMTPException, OSError) as e:
        out['error'] = f'{type(e).__name__}: {e}'
        print(json.dumps(out))
        sys.exit(1)
    print(json.dumps(out))


def decode(reply):
    code, text = reply
    return code, text.decode('utf-8', 'replace') if isinstance(text, bytes) else text


if __name__ == '__main__':
    main()
