#!/usr/bin/python3
"""SMTP server for Herald's integration tests (Debian's python3-aiosmtpd).

    smtp_server.py --port P --dir D [--tls-cert C --tls-key K] [--require-starttls]
                   [--implicit-tls] [--auth user:pass] [--script "451,250,rcpt:550"] [--hold]
                   [--defer-file F] [--delay SECONDS] [--xoauth2-user U --xoauth2-tokens T]
    smtp_server.py --parse FILE

Listens on 127.0.0.1:P. Each accepted message is stored as D/msg-<n>.json: the connection
id (one per TCP connection, counted from 1 at each start), the envelope, the time it was
accepted (received_at, Unix seconds) and the raw data (base64). D/ready is written once the
server listens.

SIGTERM stops the server cleanly: it stops listening, answers any message still arriving
with 421 (not stored), gives the replies already written half a second to reach their
clients, then exits. So every stored message was answered 250 before the server went away
(a client that lost the 250 would send it again, and a duplicate would not be the
client's fault).

--script: successive answers. A plain code applies to the next DATA (the end of the
message), "rcpt:CODE" to the next RCPT TO; 250 accepts, anything else is answered with that
code. Once the script is used up, everything is accepted.

--hold: the server holds each message's DATA before answering: it writes D/held-<k> (k
counts messages from 1, across restarts) and waits until D/release-<k> or D/release-all
exists; a code in that file (550, 451) answers the message instead of the script's.

--defer-file F: while the file F exists, every message is answered at DATA with the code it
holds (451 when empty) and not stored: a server that defers everything for a while.

--delay SECONDS: stores each message, then waits a random time up to SECONDS before
answering 250: a slow final reply, during which a client that dies has a message delivered
that it never saw accepted (the window in which a sender duplicates mail).

--xoauth2-user U --xoauth2-tokens T: AUTH XOAUTH2 is the only mechanism offered and is
required. It accepts exactly base64("user=U\x01auth=Bearer TOKEN\x01\x01") where T/TOKEN is
a file (the tokens the test, or token_server.py, issued) holding nothing or an expiry time
(Unix seconds) still in the future; anything else is answered 535. The token a connection
authenticated with is stored with each of its messages (auth_token).

--parse FILE: parses a stored raw message with Python's email package and prints JSON
(decoded headers, each leaf part's content type, charset, transfer encoding and decoded
text with CRLF turned into LF), so tests check what a real parser sees.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import signal
import ssl
import sys
import time


def parse(path):
    import email
    import email.policy

    with open(path, "rb") as f:
        raw = f.read()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers = [[name, str(value)] for name, value in message.items()]
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        parts.append({
            "content_type": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transfer_encoding": part.get("Content-Transfer-Encoding"),
            "text": part.get_content().replace("\r\n", "\n"),
        })
    defects = [type(d).__name__ for d in message.defects]
    for part in message.walk():
        defects += [type(d).__name__ for d in part.defects]
    print(json.dumps({
        "headers": headers,
        "content_type": message.get_content_type(),
        "boundary": message.get_boundary(),
        "parts": parts,
        "defects": defects,
    }))


def serve(args):
    try:
        from aiosmtpd.smtp import SMTP, AuthResult
    except ImportError as error:
        print(f"python3-aiosmtpd is not installed ({error}): apt-get install python3-aiosmtpd", file=sys.stderr)
        sys.exit(3)

    script = [entry.strip() for entry in (args.script or "").split(",") if entry.strip()]
    rcpt_script = [int(e.split(":", 1)[1]) for e in script if e.startswith("rcpt:")]
    data_script = [int(e) for e in script if not e.startswith("rcpt:")]
    # Numbering continues across restarts in the same directory.
    stored = [name for name in os.listdir(args.dir) if name.startswith("msg-") and name.endswith(".json")]
    counters = {"connection": 0, "message": len(stored),
                "held": len([name for name in os.listdir(args.dir) if name.startswith("held-")])}

    async def hold():
        """Waits for the test to release this message; returns the code it chose, if any."""
        counters["held"] += 1
        k = counters["held"]
        open(os.path.join(args.dir, f"held-{k}"), "w").close()
        while True:
            for name in (f"release-{k}", "release-all"):
                path = os.path.join(args.dir, name)
                if os.path.exists(path):
                    with open(path) as f:
                        code = f.read().strip()
                    return int(code) if code else None
            await asyncio.sleep(0.01)

    def reply(code, where):
        if code < 400:
            return f"{code} OK"
        if code < 500:
            return f"{code} 4.3.0 Herald test server: {where} deferred, try again later"
        return f"{code} 5.7.1 Herald test server: {where} rejected by policy"

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if rcpt_script:
                code = rcpt_script.pop(0)
                if code != 250:
                    return reply(code, "recipient")
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if closing.is_set():
                return "421 4.3.2 Herald test server: shutting down"
            if args.defer_file and os.path.exists(args.defer_file):
                try:
                    with open(args.defer_file) as f:
                        code = int(f.read().strip() or "451")
                except (OSError, ValueError):
                    code = 451
                return reply(code, "message")
            if args.hold:
                code = await hold()
                if code is not None and code != 250:
                    return reply(code, "message")
            if data_script:
                code = data_script.pop(0)
                if code != 250:
                    return reply(code, "message")
            counters["message"] += 1
            n = counters["message"]
            raw = envelope.original_content or envelope.content
            if isinstance(raw, str):
                raw = raw.encode("utf-8", "surrogateescape")
            record = {
                "sequence": n,
                "connection": session.herald_connection,
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "authenticated": bool(getattr(session, "authenticated", False)),
                "auth_token": getattr(session, "herald_token", None),
                "tls": session.ssl is not None,
                "received_at": time.time(),
                "data": base64.b64encode(raw).decode("ascii"),
            }
            path = os.path.join(args.dir, f"msg-{n:06d}.json")
            with open(path + ".tmp", "w") as f:
                json.dump(record, f)
            os.rename(path + ".tmp", path)
            if args.delay:
                await asyncio.sleep(random.uniform(0, args.delay))
            return f"250 2.0.0 OK queued as herald-test-{n}"

    def xoauth2_token_valid(token):
        if not token or not all(c.isalnum() or c in "-._~+/=" for c in token) or "/" in token or token.startswith("."):
            return False
        path = os.path.join(args.xoauth2_tokens, token)
        try:
            with open(path) as f:
                expiry = f.read().strip()
        except OSError:
            return False
        return not expiry or float(expiry) > time.time()

    class XOAUTH2Handler(Handler):
        async def auth_XOAUTH2(self, server, auth_args):
            if len(auth_args) == 2:
                try:
                    blob = base64.b64decode(auth_args[1], validate=True)
                except Exception:
                    return AuthResult(success=False, handled=False)
            else:
                blob = await server.challenge_auth("")
                if not isinstance(blob, bytes):
                    return AuthResult(success=False, handled=True)
            prefix = b"user=" + args.xoauth2_user.encode() + b"\x01auth=Bearer "
            token = None
            if blob.startswith(prefix) and blob.endswith(b"\x01\x01"):
                token = blob[len(prefix):-2].decode("ascii", "replace")
            if token is None or not xoauth2_token_valid(token):
                return AuthResult(success=False, handled=False)
            server.session.herald_token = token
            return AuthResult(success=True, auth_data=token)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, _, password = args.auth.partition(":")
        login = getattr(auth_data, "login", b"")
        secret = getattr(auth_data, "password", b"")
        ok = login == user.encode() and secret == password.encode()
        return AuthResult(success=ok, handled=False)

    class CountingSMTP(SMTP):
        def _create_session(self):
            session = super()._create_session()
            counters["connection"] += 1
            session.herald_connection = counters["connection"]
            return session

    tls_context = None
    if args.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(args.tls_cert, args.tls_key)

    def factory():
        options = {"hostname": "herald-test-smtp", "decode_data": False, "enable_SMTPUTF8": True}
        if tls_context is not None and not args.implicit_tls:
            options["tls_context"] = tls_context
            options["require_starttls"] = args.require_starttls
        if args.auth:
            options["authenticator"] = authenticator
            options["auth_required"] = True
            options["auth_require_tls"] = tls_context is not None
        if args.xoauth2_user:
            options["authenticator"] = authenticator
            options["auth_required"] = True
            options["auth_require_tls"] = tls_context is not None
            options["auth_exclude_mechanism"] = ["LOGIN", "PLAIN"]
            return CountingSMTP(XOAUTH2Handler(), **options)
        return CountingSMTP(Handler(), **options)

    closing = asyncio.Event()

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory, host="127.0.0.1", port=args.port, ssl=tls_context if args.implicit_tls else None)
        with open(os.path.join(args.dir, "ready"), "w") as f:
            f.write(str(args.port))
        print(f"listening on 127.0.0.1:{args.port}", flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        closing.set()
        server.close()
        await asyncio.sleep(0.5)
        print("stopped", flush=True)

    asyncio.run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--dir")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    parser.add_argument("--script")
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--defer-file")
    parser.add_argument("--delay", type=float)
    parser.add_argument("--xoauth2-user")
    parser.add_argument("--xoauth2-tokens")
    parser.add_argument("--parse")
    arguments = parser.parse_args()
    if arguments.parse:
        parse(arguments.parse)
    else:
        serve(arguments)
