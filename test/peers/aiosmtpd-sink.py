"""A recording SMTP sink for outbound tests, on aiosmtpd (Debian python3-aiosmtpd).

Binds 127.0.0.1 on the given port (0: any), prints "READY <port>", and writes every accepted
message as <dir>/msg-<n>.json (written to a temp name, then renamed). Behaviour per
recipient local part: perm* -> 550 at RCPT, temp* -> 451 at RCPT, slow* -> never answers RCPT,
die* -> the connection is aborted after the final dot without a reply (nothing stored),
reject* -> 554 after DATA, tempdata* -> 452 after DATA.
"""
import argparse
import asyncio
import base64
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("perm"):
            return "550 5.1.1 No such user here"
        if local.startswith("temp") and not local.startswith("tempdata"):
            return "451 4.2.1 Mailbox busy, try later"
        if local.startswith("slow"):
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        locals_ = [r.split("@")[0] for r in envelope.rcpt_tos]
        if any(l.startswith("die") for l in locals_):
            server.transport.abort()
            return "451 4.3.0 gone"
        if any(l.startswith("reject") for l in locals_):
            return "554 5.7.1 Content rejected by policy"
        if any(l.startswith("tempdata") for l in locals_):
            return "452 4.3.1 Insufficient system storage"
        self.count += 1
        record = {
            "peer": list(session.peer),
            "helo": session.host_name,
            "tls": session.ssl is not None,
            "auth": session.authenticated,
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "data": base64.b64encode(envelope.original_content or envelope.content).decode(),
        }
        path = os.path.join(self.directory, "msg-%04d.json" % self.count)
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(path + ".tmp", path)
        return "250 2.0.0 OK: stored as sink-%d" % self.count


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--dir", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-tls", action="store_true")
    p.add_argument("--auth", help="user:password")
    a = p.parse_args()
    handler = Handler(a.dir)
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    authenticator = None
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
            return AuthResult(success=ok, handled=False)

    def factory():
        return SMTP(
            handler,
            hostname="sink.test",
            tls_context=context,
            require_starttls=a.require_tls,
            authenticator=authenticator,
            auth_require_tls=True,
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=a.port))
    print("READY %d" % server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
