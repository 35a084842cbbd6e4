"""A subscriber that checks every webhook with the README's Python snippet.

The snippet is read from README.md ("For subscribers: verifying webhooks",
the first python block) and run as it is written there, so the README
cannot drift from what works.

Usage: SUBSCRIBER_SECRET=... python3 subscriber.py
Prints "listening <port>", then one JSON line per request:
{"id", "attempt", "snippet": bool, "body"}. Answers 200 when the snippet
accepts the signature, 401 otherwise.
"""

import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def readme_snippet():
    text = open(README, encoding="utf-8").read()
    section = text.split("## For subscribers: verifying webhooks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if not match:
        sys.exit("no python block in the README's section for subscribers")
    return match.group(1)


namespace = {}
exec(readme_snippet(), namespace)
verify_webhook = namespace["verify_webhook"]
SECRET = os.environ["SUBSCRIBER_SECRET"]
# Requests are served on threads; one line at a time on stdout.
PRINTING = threading.Lock()


class Subscriber(BaseHTTPRequestHandler):
    def do_POST(self):
        payload = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        snippet = verify_webhook(payload, self.headers.get("X-Webhook-Signature", ""), SECRET)
        line = json.dumps({
            "id": self.headers.get("X-Webhook-Id"),
            "attempt": self.headers.get("X-Webhook-Attempt"),
            "snippet": snippet,
            "body": payload.decode("utf-8"),
        })
        with PRINTING:
            print(line, flush=True)
        self.send_response(200 if snippet else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Subscriber)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()
