#!/usr/bin/env python3
"""A fake OpenAI-compatible upstream for the gate's remote-provider tests.

The upstream model name picks the behaviour:
  up-ok      answers with usage {prompt_tokens: 7, completion_tokens: 3}
  up-nousage answers without a usage object
  up-die     (stream) sends two chunks, then drops the connection
  up-fail    answers HTTP 500
  up-slow    as up-ok, after FAKE_UPSTREAM_SLOW_S seconds (default 4): requests
             in flight for a while (tests/e2e/test_node_kill_pg.sh)
Every request body is appended to the file named by --log (one JSON a line).
"""
import http.server, json, os, socketserver, sys, time

LOG = None


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        with open(LOG, "a") as f:
            f.write(json.dumps(body) + "\n")
        model = body.get("model", "")
        chat = self.path.endswith("/chat/completions")
        usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
        if model == "up-slow":
            time.sleep(float(os.environ.get("FAKE_UPSTREAM_SLOW_S", "4")))
        if model == "up-fail":
            self.reply(500, b'{"error":{"message":"boom"}}')
            return
        if not body.get("stream"):
            out = {"id": "x", "object": "chat.completion" if chat else "text_completion",
                   "model": model, "choices": [{"index": 0, "text": "abc", "finish_reason": "stop"}]}
            if model != "up-nousage":
                out["usage"] = usage
            self.reply(200, json.dumps(out).encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in ["a", "b"]:
            chunk = {"id": "x", "model": model, "choices": [{"index": 0, "text": piece, "finish_reason": None}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.flush()
        if model == "up-die":
            self.close_connection = True
            return
        last = {"id": "x", "model": model, "choices": []}
        if model != "up-nousage":
            last["usage"] = usage
        self.wfile.write(b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n")
        self.wfile.flush()

    def reply(self, code, data):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    port, LOG = int(sys.argv[1]), sys.argv[2]
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", port), H) as srv:
        srv.serve_forever()
