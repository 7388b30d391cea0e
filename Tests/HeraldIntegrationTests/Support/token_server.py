#!/usr/bin/python3
"""OAuth2 token endpoint for Herald's integration tests (the client-credentials grant).

    token_server.py --port P --dir D --client-id ID --client-secret SECRET [--scope S]
                    [--expires-in SECONDS]

Listens on 127.0.0.1:P (plain HTTP). POST /token with an application/x-www-form-urlencoded
body: grant_type=client_credentials, client_id, client_secret and, with --scope, that scope.
A correct request gets {"access_token": "tok-<n>-<random>", "token_type": "Bearer",
"expires_in": SECONDS}; the token is written to D/tokens/<token> holding its expiry time
(Unix seconds), where smtp_server.py --xoauth2-tokens D/tokens looks it up. A wrong client
or secret gets 401 {"error": "invalid_client"}, a wrong grant or scope 400.

Every request (answered or not) is counted: D/requests holds the count, written before the
answer is sent; D/ready is written once the server listens.

D/mode, when it exists, overrides the answer: "500" (a server error), "401" (invalid_client
whatever was sent), "badjson" (200 with a body that is not JSON), "hang" (no answer for 30 s).
D/expires_in, when it exists, overrides --expires-in.
"""

import argparse
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.parse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--scope")
    parser.add_argument("--expires-in", type=int, default=3600)
    args = parser.parse_args()
    tokens = os.path.join(args.dir, "tokens")
    os.makedirs(tokens, exist_ok=True)
    lock = threading.Lock()
    state = {"requests": 0, "issued": 0}

    def read(name):
        try:
            with open(os.path.join(args.dir, name)) as f:
                return f.read().strip()
        except OSError:
            return None

    def write(name, text):
        path = os.path.join(args.dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *log_args):
            # Never the body (it holds the secret): the request line and status only.
            sys.stdout.write("%s %s\n" % (self.address_string(), format % log_args))
            sys.stdout.flush()

        def answer(self, status, body, content_type="application/json"):
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"), keep_blank_values=True)
            with lock:
                state["requests"] += 1
                write("requests", str(state["requests"]))
            mode = read("mode") or ""

            def field(name):
                values = form.get(name, [])
                return values[0] if len(values) == 1 else None

            if self.path != "/token":
                return self.answer(404, json.dumps({"error": "not_found"}))
            if mode == "500":
                return self.answer(500, "<html>internal error</html>", "text/html")
            if mode == "hang":
                time.sleep(30)
                return self.answer(503, json.dumps({"error": "temporarily_unavailable"}))
            if mode == "401" or field("client_id") != args.client_id or field("client_secret") != args.client_secret:
                return self.answer(401, json.dumps({
                    "error": "invalid_client", "error_description": "Client authentication failed (test server)."}))
            if field("grant_type") != "client_credentials":
                return self.answer(400, json.dumps({"error": "unsupported_grant_type"}))
            if args.scope is not None and field("scope") != args.scope:
                return self.answer(400, json.dumps({"error": "invalid_scope"}))
            if mode == "badjson":
                return self.answer(200, "this is not JSON", "text/plain")
            expires_in = int(read("expires_in") or args.expires_in)
            with lock:
                state["issued"] += 1
                token = "tok-%d-%s" % (state["issued"], secrets.token_urlsafe(12))
            with open(os.path.join(tokens, token), "w") as f:
                f.write(str(time.time() + expires_in))
            self.answer(200, json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    write("requests", "0")
    write("ready", str(args.port))
    print("listening on 127.0.0.1:%d" % args.port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
