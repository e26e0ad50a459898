"""A receiver for SMS Edge's delivery callbacks: checks each POST's signature, then hands the event on.

Python's standard library only. Run: SMS_EDGE_CALLBACK_SECRET=... PORT=8000 python3 receiver.py
"""

import hashlib
import hmac
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["SMS_EDGE_CALLBACK_SECRET"].encode()
TOLERANCE_SECONDS = 300
EVENTS_FILE = os.environ.get("EVENTS_FILE", "events.jsonl")


def verified(timestamp, signature, body):
    """Whether a v1= value of the signature is the HMAC of "<timestamp>.<body>", sent within 5 minutes."""
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
        return False
    mac = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256)
    expected = ("v1=" + mac.hexdigest()).encode()
    offered = (signature or "").split(",")  # one value per secret while it is being rotated
    return any(hmac.compare_digest(expected, value.strip().encode()) for value in offered)


def handle(event):
    """Your code goes here. An event may come twice (at-least-once): key what you do on event_id."""
    with open(EVENTS_FILE, "a", encoding="utf-8") as events:
        events.write(json.dumps(event, ensure_ascii=False) + "\n")


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))  # raw bytes, as signed
        if not verified(self.headers["SmsEdge-Timestamp"], self.headers["SmsEdge-Signature"], body):
            self.answer(401, "bad signature")
            return
        try:
            handle(json.loads(body))
        except Exception:
            self.answer(500, "not handled")  # the gateway will try again
            raise
        self.answer(200, "ok")

    def answer(self, status, text):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text.encode())


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Receiver).serve_forever()
