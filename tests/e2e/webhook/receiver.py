#!/usr/bin/env python3
"""receiver.py PORTFILE LOG CONTROL — a webhook receiver for the e2e tests.

Listens on a free loopback port (written to PORTFILE), appends each POST as
one JSON line to LOG: {"id", "timestamp", "signature", "body", "status"}
(the webhook-* headers and the raw body), and answers with the status read
from the file CONTROL at that moment (default 200): the test switches it to
500 to see retries.  Signatures are checked by the test with the OpenSSL
command line, not here.
"""
import http.server
import json
import sys

portfile, log, control = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode("utf-8")
        try:
            with open(control) as f:
                status = int(f.read().strip() or "200")
        except (OSError, ValueError):
            status = 200
        entry = {
            "id": self.headers.get("webhook-id"),
            "timestamp": self.headers.get("webhook-timestamp"),
            "signature": self.headers.get("webhook-signature"),
            "body": body,
            "status": status,
        }
        with open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os  # noqa: E402

os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
