#!/usr/bin/env python3
"""A stand-in for rclone's remote-control (RC) server, for the failure cases the rclone in
Debian 12 (1.60) cannot show, and for upstream faults (hanging, endless answers, redirects).

It answers POST /vfs/forget, /vfs/refresh, /rc/noop, /rc/noopauth, /core/version and /vfs/list
the way rclone's rcserver does: a JSON object, and for errors {"error": ..., "input": ..., "path":
..., "status": N} with that HTTP status. rc/noop, core/version and vfs/list need no credentials
(rclone marks them NoAuth; `version` and `vfses` are what they answer); rc/noopauth is refused as
the vfs calls are in the "auth" and "noauth_403" modes. `mode` picks the behaviour of vfs/* calls
(rc/noop answers in every mode unless `noop_hang` is set):

  "ok"          forget: {"forgotten": [dir]}; refresh: {"result": {dir: "OK"}}
  "need_fs"     500 "more than one VFS active - need \\"fs\\" parameter" (rclone serving several
                mounts, called without fs=)
  "no_vfs"      500 "no VFS found with name \\"x:\\"" (fs= names no mount)
  "noauth_403"  403 "authentication must be set up on the rc server to use \\"vfs/refresh\\" or
                the --rc-no-auth flag must be in use" (rclone >= 1.63 without --rc-user/--rc-no-auth)
  "auth"        Basic auth required (user/pass): a missing or wrong one is 401 with
                WWW-Authenticate, as rclone's --rc-user/--rc-pass do
  "charset_400" 400 "failed to read input JSON: unsupported charset" (rclone >= 1.70 given a
                Content-Type whose charset is not UTF-8, e.g. rewritten by a proxy)
  "error_500"   500 with a generic error (a transient failure)
  "hang"        accept the connection, read the request, never answer
  "huge"        200 with an endless body (chunked, never finished)
  "redirect"    307 to another URL (must never be followed)

Every request is recorded: (method, path, headers (lower-case names), decoded JSON body or None,
time.monotonic()). `calls(path)` filters by path.

In-process:
    rc = RcloneDouble(mode="need_fs").start(); ... rc.url ...; rc.calls("/vfs/refresh"); rc.stop()
"""

import base64
import json
import socket
import threading
import time

from doublebase import TrackedHandler, TrackedServer

__all__ = ["RcloneDouble", "Call"]

MESSAGES = {
    "need_fs": (500, 'more than one VFS active - need "fs" parameter'),
    "no_vfs": (500, 'no VFS found with name "other:"'),
    "noauth_403": (403, 'authentication must be set up on the rc server to use "%s" or the '
                        '--rc-no-auth flag must be in use'),
    "charset_400": (400, "failed to read input JSON: unsupported charset"),
    "error_500": (500, "vfs cache is busy, try again"),
}


class Call:
    __slots__ = ("method", "path", "headers", "body", "time")

    def __init__(self, method, path, headers, body, t):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.time = t

    def __repr__(self):
        return "Call(%s %s %r t=%.3f)" % (self.method, self.path, self.body, self.time)


class _Server(TrackedServer):
    def __init__(self, addr, double):
        super().__init__(addr, double, _Handler)


class _Handler(TrackedHandler):
    server_version = "rclone/v1.70.0"

    def _not_allowed(self):
        self.send_error(405)  # rclone's rcserver: only POST (and GET for its file serving)

    do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _not_allowed


class RcloneDouble:
    def __init__(self, mode="ok", user=None, password=None, host="127.0.0.1", port=0,
                 version="v1.74.0", vfses=("gdrive:media",)):
        self.mode = mode
        self.version = version
        self.vfses = list(vfses)
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.redirect_to = "http://127.0.0.1:9/"
        self.noop_hang = False  # True: /rc/noop never answers either (in any mode)
        self._lock = threading.Lock()
        self._calls = []
        self._server = None
        self._thread = None
        self._stop = threading.Event()

    # ---- lifecycle ----
    def start(self):
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="rclonedouble:%d" % self.port)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def set_down(self):
        """rclone is down: stop listening (new connections are refused, open ones are broken)
        and keep the port."""
        srv = self._server
        self.stop()
        if srv is not None:
            srv.drop_connections()

    def set_up(self):
        """rclone is back, on the same port."""
        self._stop.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                return self.start()
            except OSError:
                # the same port again right after set_down(): a lingering socket can make
                # bind fail briefly
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    # ---- what was seen ----
    def calls(self, path=None):
        with self._lock:
            return [c for c in self._calls if path is None or c.path == path]

    # ---- answers ----
    def _send_json(self, h, status, obj, extra=()):
        body = (json.dumps(obj, indent="\t") + "\n").encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        for k, v in extra:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()

    def _dispatch(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length > 0 else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            body = None
        path = h.path.split("?", 1)[0]
        with self._lock:
            self._calls.append(Call(h.command, path, {k.lower(): v for k, v in h.headers.items()},
                                    body, time.monotonic()))
        mode = self.mode
        rcpath = path.lstrip("/")
        h.server_version = "rclone/" + self.version
        try:
            if path == "/rc/noop":
                if self.noop_hang:  # an rclone that accepts and never answers, even its noop
                    self._stop.wait(3600)
                    h.close_connection = True
                    return
                self._send_json(h, 200, body if isinstance(body, dict) else {})
                return
            if path == "/core/version":
                self._send_json(h, 200, {"version": self.version, "isGit": False, "os": "linux"})
                return
            if path == "/vfs/list":
                self._send_json(h, 200, {"vfses": self.vfses})
                return
            if path == "/rc/noopauth" and mode not in ("auth", "noauth_403"):
                self._send_json(h, 200, body if isinstance(body, dict) else {})
                return
            if path not in ("/vfs/forget", "/vfs/refresh", "/rc/noopauth"):
                self._send_json(h, 404, {"error": "couldn't find method %r" % rcpath,
                                         "input": body, "path": rcpath, "status": 404})
                return
            if mode == "auth" and not self._auth_ok(h):
                msg = b"Unauthorized\n"
                h.send_response(401)
                h.send_header("WWW-Authenticate", 'Basic realm="rclone"')
                h.send_header("Content-Type", "text/plain; charset=utf-8")
                h.send_header("Content-Length", str(len(msg)))
                h.end_headers()
                h.wfile.write(msg)
                return
            if path == "/rc/noopauth" and mode == "auth":
                self._send_json(h, 200, body if isinstance(body, dict) else {})
                return
            if mode in MESSAGES:
                status, text = MESSAGES[mode]
                if "%s" in text:
                    text = text % rcpath
                self._send_json(h, status, {"error": text, "input": body, "path": rcpath,
                                            "status": status})
                return
            if mode == "hang":
                # hold the connection open without a byte of answer until stopped
                self._stop.wait(3600)
                h.close_connection = True
                return
            if mode == "huge":
                h.send_response(200)
                h.send_header("Content-Type", "application/json")
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                chunk = b'{"result": {"' + b"x" * 65000 + b'": "OK"}},'
                line = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                while not self._stop.is_set():
                    h.wfile.write(line)
                return
            if mode == "redirect":
                h.send_response(307)
                h.send_header("Location", self.redirect_to + rcpath)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            d = body.get("dir", "") if isinstance(body, dict) else ""
            if path == "/vfs/forget":
                self._send_json(h, 200, {"forgotten": [d] if d else []})
            else:
                self._send_json(h, 200, {"result": {d: "OK"}})
        except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
            h.close_connection = True

    def _auth_ok(self, h):
        got = h.headers.get("Authorization") or ""
        if not got.startswith("Basic "):
            return False
        try:
            dec = base64.b64decode(got[6:].strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        return dec == "%s:%s" % (self.user, self.password)
