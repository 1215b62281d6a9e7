#!/usr/bin/env python3
"""Strict stand-ins for the notification services the daemon posts to, for the integration tests.

One class, NotifyDouble, whose `kind` picks the service:

  "discord"  a Discord webhook: POST /api/webhooks/<id>/<token>, Content-Type application/json,
             the body exactly {"content": str, "embeds": [{"title": str, "description": str,
             "color": int}, ...]} (content at most 2000 characters, a description at most 4096,
             at most 10 embeds); 204 with an empty body
  "ntfy"     an ntfy server: POST /<topic> (one path segment of [A-Za-z0-9_-]), the text as the
             body (not empty, at most 4096 bytes), headers Title, Priority (1-5 or min, low,
             default, high, urgent, max) and Tags (comma-separated words); with `token`,
             `Authorization: Bearer <token>` is required (401 without, 403 for another);
             200 {"id", "time", "event": "message", "topic", "message", "title"}
  "gotify"   a Gotify server: POST /message with `X-Gotify-Key: <token>` (401 without or for
             another), Content-Type application/json, the body {"message": str (required, not
             empty), "title"?: str, "priority"?: int 0-10}, no other key; 200 with the message
             as Gotify answers it
  "apprise"  an Apprise API server: POST /notify/<key> (or the stateless /notify), Content-Type
             application/json, the body {"body": str (required), "title"?: str, "type"?: "info" |
             "success" | "warning" | "failure"}, no other key; 200 {"success": true}

Anything else is 404, a wrong method 405, a wrong Content-Type 415, a body of the wrong shape
400 (recorded with the reason in `error`). Every request is recorded (see Received). Knobs:
`delay` (seconds before each answer), fail_with(status) / clear_failures() (answer that status
to every well-formed request), hang() / unhang() (hold each request without an answer until
unhang() or stop()).

In-process:
    d = NotifyDouble("ntfy", token="tk").start()
    ... d.url ... d.messages() ...; d.stop()
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["NotifyDouble", "Received", "KINDS"]

KINDS = ("discord", "ntfy", "gotify", "apprise")
NTFY_PRIORITIES = {"1", "2", "3", "4", "5", "min", "low", "default", "high", "urgent", "max"}
APPRISE_TYPES = {"info", "success", "warning", "failure"}


class Received:
    """One request: method, path, headers (a dict, names lower-case), body (bytes), json (the
    parsed body or None), status (what was answered, None while held) and error (why it was
    refused, or None)."""

    def __init__(self, method, path, headers, body):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.json = None
        self.status = None
        self.error = None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300

    @property
    def text(self):
        """What a person reads: ntfy's body, Gotify's message, Apprise's body, Discord's
        description."""
        j = self.json or {}
        if "embeds" in j:
            return "\n".join(e.get("description", "") for e in j["embeds"])
        for k in ("message", "body"):
            if k in j:
                return j[k]
        return self.body.decode("utf-8", "replace")

    @property
    def title(self):
        j = self.json or {}
        if "embeds" in j:
            return j["embeds"][0].get("title", "")
        return j.get("title", self.headers.get("title", ""))

    def __repr__(self):
        return "Received(%s %s -> %s%s)" % (self.method, self.path, self.status,
                                            ", " + self.error if self.error else "")


def _json_body(r):
    ct = r.headers.get("content-type", "")
    if ct.split(";")[0].strip().lower() != "application/json":
        return 415, "Content-Type must be application/json, not %r" % ct
    try:
        r.json = json.loads(r.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        return 400, "body is not JSON: %s" % e
    if not isinstance(r.json, dict):
        return 400, "body is not a JSON object"
    return None


def _only_keys(j, allowed, required=()):
    extra = set(j) - set(allowed)
    if extra:
        return "unknown keys %s" % sorted(extra)
    missing = [k for k in required if k not in j]
    if missing:
        return "missing keys %s" % missing
    return None


def _check_discord(d, r):
    if not re.fullmatch(r"/api/webhooks/\d+/[A-Za-z0-9_-]+", r.path):
        return 404, "not a webhook path"
    bad = _json_body(r)
    if bad:
        return bad
    j = r.json
    why = _only_keys(j, ("content", "embeds"), ("content", "embeds"))
    if why:
        return 400, why
    if not isinstance(j["content"], str) or len(j["content"]) > 2000:
        return 400, "content must be a string of at most 2000 characters"
    if not isinstance(j["embeds"], list) or not 1 <= len(j["embeds"]) <= 10:
        return 400, "embeds must be a list of 1 to 10 objects"
    for e in j["embeds"]:
        if not isinstance(e, dict) or _only_keys(e, ("title", "description", "color"),
                                                 ("title", "description", "color")):
            return 400, "an embed must be exactly {title, description, color}"
        if not isinstance(e["title"], str) or len(e["title"]) > 256:
            return 400, "an embed's title must be a string of at most 256 characters"
        if not isinstance(e["description"], str) or len(e["description"]) > 4096:
            return 400, "an embed's description must be a string of at most 4096 characters"
        if not isinstance(e["color"], int) or not 0 <= e["color"] <= 0xFFFFFF:
            return 400, "an embed's color must be an integer 0..0xFFFFFF"
    return 204, None


def _check_ntfy(d, r):
    if not re.fullmatch(r"/[A-Za-z0-9_-]{1,64}", r.path):
        return 404, "not a topic path"
    if d.token is not None:
        auth = r.headers.get("authorization")
        if auth is None:
            return 401, "no Authorization"
        if auth != "Bearer " + d.token:
            return 403, "wrong Authorization"
    for h in ("title", "priority", "tags"):
        if not r.headers.get(h):
            return 400, "header %s missing" % h
    if r.headers["priority"] not in NTFY_PRIORITIES:
        return 400, "bad Priority %r" % r.headers["priority"]
    if not re.fullmatch(r"[A-Za-z0-9_,-]+", r.headers["tags"]):
        return 400, "bad Tags %r" % r.headers["tags"]
    if not r.body or len(r.body) > 4096:
        return 400, "the message must be 1 to 4096 bytes"
    try:
        r.body.decode("utf-8")
    except UnicodeDecodeError:
        return 400, "the message is not UTF-8"
    return 200, None


def _check_gotify(d, r):
    if r.path != "/message":
        return 404, "not /message"
    key = r.headers.get("x-gotify-key")
    if key is None or key != d.token:
        return 401, "X-Gotify-Key missing or wrong"
    bad = _json_body(r)
    if bad:
        return bad
    j = r.json
    why = _only_keys(j, ("title", "message", "priority", "extras"), ("message",))
    if why:
        return 400, why
    if not isinstance(j["message"], str) or not j["message"]:
        return 400, "message must be a non-empty string"
    if "title" in j and not isinstance(j["title"], str):
        return 400, "title must be a string"
    if "priority" in j and (not isinstance(j["priority"], int) or not 0 <= j["priority"] <= 10):
        return 400, "priority must be an integer 0..10"
    return 200, None


def _check_apprise(d, r):
    if not re.fullmatch(r"/notify(/[A-Za-z0-9_-]{1,64})?", r.path):
        return 404, "not a notify path"
    bad = _json_body(r)
    if bad:
        return bad
    j = r.json
    why = _only_keys(j, ("title", "body", "type", "format", "tag", "urls"), ("body",))
    if why:
        return 400, why
    if not isinstance(j["body"], str) or not j["body"]:
        return 400, "body must be a non-empty string"
    if "type" in j and j["type"] not in APPRISE_TYPES:
        return 400, "type must be one of %s" % sorted(APPRISE_TYPES)
    return 200, None


CHECKS = {"discord": _check_discord, "ntfy": _check_ntfy, "gotify": _check_gotify,
          "apprise": _check_apprise}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _answer(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _handle(self):
        d = self.server.double
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        r = Received(self.command, self.path.split("?", 1)[0],
                     {k.lower(): v for k, v in self.headers.items()}, body)
        with d.lock:
            d.received.append(r)
        if self.command != "POST":
            r.status, r.error = 405, "method %s" % self.command
        else:
            status, error = CHECKS[d.kind](d, r)
            r.error = error
            if error is None and d.fail_status:
                status, r.error = d.fail_status, "forced failure"
            if d.delay:
                time.sleep(d.delay)
            while d.hanging.is_set() and not d.stopping.is_set():
                d.stopping.wait(0.05)
            if d.stopping.is_set():
                return
            r.status = status
        out = b""
        if r.ok and d.kind == "ntfy":
            out = json.dumps({"id": "x%d" % len(d.received), "time": int(time.time()),
                              "event": "message", "topic": r.path[1:],
                              "message": r.body.decode("utf-8"),
                              "title": r.headers.get("title")}).encode()
        elif r.ok and d.kind == "gotify":
            out = json.dumps(dict(r.json, id=len(d.received), appid=1)).encode()
        elif r.ok and d.kind == "apprise":
            out = b'{"success": true}'
        elif not r.ok:
            out = json.dumps({"error": r.error}).encode()
        self._answer(r.status, out)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class NotifyDouble:
    def __init__(self, kind, token=None, host="127.0.0.1", port=0, delay=0.0):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        self.kind, self.token, self.host, self.port, self.delay = kind, token, host, port, delay
        self.fail_status = None
        self.hanging = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received = []
        self._server = None
        self._thread = None

    def start(self):
        self._server = ThreadingHTTPServer((self.host, self.port), _Handler)
        self._server.daemon_threads = True
        self._server.double = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self):
        """The URL a NOTIFY item names for this double (its secret parts included)."""
        base = "http://%s:%d" % (self.host, self.port)
        return {"discord": base + "/api/webhooks/123456/d1sc0rd-s3cret-path",
                "ntfy": base + "/pss-topic-s3cret",
                "gotify": base,
                "apprise": base + "/notify/appr1se-s3cret-key"}[self.kind]

    def notify_item(self, **extra):
        item = {"type": self.kind, "url": self.url}
        if self.token is not None:
            item["token"] = self.token
        item.update(extra)
        return item

    def fail_with(self, status):
        self.fail_status = status

    def clear_failures(self):
        self.fail_status = None

    def hang(self):
        self.hanging.set()

    def unhang(self):
        self.hanging.clear()

    def requests(self):
        with self.lock:
            return list(self.received)

    def messages(self):
        """The requests answered with a 2xx."""
        return [r for r in self.requests() if r.ok]

    def errors(self):
        """The requests refused as malformed (not the forced failures)."""
        return [r for r in self.requests() if r.status and r.status >= 400
                and r.error != "forced failure"]

    def wait_for(self, predicate, timeout=30.0, interval=0.05):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            v = predicate(self)
            if v:
                return v
            time.sleep(interval)
        return predicate(self)
