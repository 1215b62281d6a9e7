#!/usr/bin/env python3
"""A strict stand-in for Plex Media Server, for the integration tests and the benchmarks.

It answers only the calls the daemon makes, the way Plex does (see the protocol notes on Plex):

  GET /identity                        no token needed; MediaContainer JSON
                                       {size, claimed, machineIdentifier, version}
  GET /library/sections                token; JSON with Accept: application/json, else XML
  GET /library/sections/{id}/refresh   token; ?path= required (400 without), 404 for an
                                       unknown section, 405 for any method but GET,
                                       200 with an empty body otherwise
  PUT /library/sections/{id}/emptyTrash
                                       token; 404 for an unknown section, 405 for any
                                       method but PUT, 200 with an empty body otherwise

Everything else is 404. The token is the X-Plex-Token header or the X-Plex-Token query
parameter; a missing or wrong one is 401.

Every request is recorded (method, raw target, path, raw query, decoded query parameters as
bytes, the decoded `path` parameter as bytes, headers, time.monotonic() at receipt, the answer's
status) in a thread-safe list. Knobs: `delay` (seconds a refresh sleeps before answering; the
server is threaded, so slow refreshes overlap), fail_next(n, status), set_down() / set_up()
(stop listening and start again on the same port), a per-request hook, and `ssl_context` (an
ssl.SSLContext with the server's certificate: the double speaks https, and `url` says https://).

Several doubles can run side by side, each with its own token, sections and
`machine_identifier` (constructor argument; default IDENTIFIER). Each section has a
`refreshing` flag (a section given as {"refreshing": true}, or set_refreshing(key, True,
polls=N)), reported by /library/sections as JSON true/false and XML "1"/"0"; with polls=N the
next N answers of /library/sections (each a "poll") say true, the later ones false.
`scan_sets_refreshing = N` makes every successful refresh set its section refreshing for the
next N polls (a scan that Plex runs in the background). emptyTrash calls are recorded with
the section's refreshing flag at their arrival (Request.section_refreshing); fail_next(n,
status, route="empty_trash") fails them.

In-process:
    plex = PlexDouble(token="t", sections=[{"key": "1", "type": "show", "title": "TV",
                                             "locations": ["/data/tv"]}])
    plex.start(); ... plex.url ... plex.refreshes() ...; plex.stop()

As a script (benchmarks):
    python3 plexdouble.py --port N --token T --sections sections.json [--delay S]
sections.json is a list of {"key", "type", "title", "locations": [...]} objects (or Plex's own
JSON answer). It prints "listening on 127.0.0.1:PORT" once ready and, on SIGTERM or SIGINT, one
JSON line of statistics.
"""

import argparse
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse

from doublebase import TrackedHandler, TrackedServer
from xml.sax.saxutils import quoteattr

__all__ = ["PlexDouble", "Request", "parse_query_bytes"]


def parse_query_bytes(query):
    """Decode a raw query string the way Plex's form decoding does: split on '&', then on the
    first '='; '+' is a space; percent escapes decode to raw bytes (no charset applied).
    Returns a list of (name_bytes, value_bytes) in order."""
    out = []
    if not query:
        return out
    for part in query.split("&"):
        if part == "":
            continue
        name, sep, value = part.partition("=")
        out.append((_form_unquote(name), _form_unquote(value)))
    return out


def _form_unquote(s):
    return urllib.parse.unquote_to_bytes(s.replace("+", " "))


class Request:
    """One request as the double saw it."""

    __slots__ = ("method", "target", "path", "query", "params", "scan_path", "headers", "time",
                 "wall_time", "status", "section", "route", "note", "section_refreshing")

    def __init__(self):
        self.method = ""        # "GET", ...
        self.target = ""        # raw request target: path?query, exactly as sent
        self.path = ""          # raw path part (not decoded)
        self.query = ""         # raw query part (not decoded), "" if none
        self.params = []        # [(name bytes, value bytes)] decoded
        self.scan_path = None   # refresh: the decoded `path` parameter, bytes; else None
        self.headers = {}       # lower-case name -> value (last one wins)
        self.time = 0.0         # time.monotonic() at receipt
        self.wall_time = 0.0    # time.time() at receipt
        self.status = None      # status answered (set after the answer is decided)
        self.section = None     # refresh: section id as sent (str)
        self.route = None       # "identity", "sections", "refresh", "empty_trash" or None (404)
        self.note = None        # free text a hook may set
        self.section_refreshing = None  # empty_trash: the section's refreshing flag on arrival

    def param(self, name):
        """First decoded value (bytes) of the query parameter name (str), or None."""
        key = name.encode()
        for k, v in self.params:
            if k == key:
                return v
        return None

    def __repr__(self):
        return ("Request(%s %s status=%s scan_path=%r t=%.3f)"
                % (self.method, self.target, self.status, self.scan_path, self.time))


def _norm_sections(sections):
    """Accept a list of {"key","type","title","locations"} or Plex's JSON answer; return the list
    form with key as str."""
    if isinstance(sections, dict):
        dirs = sections.get("MediaContainer", {}).get("Directory", [])
        sections = [{"key": d["key"], "type": d.get("type", "show"), "title": d.get("title", ""),
                     "locations": [loc["path"] for loc in d.get("Location", [])],
                     "refreshing": d.get("refreshing") in (True, 1, "1")} for d in dirs]
    out = []
    for s in sections or []:
        locs = s.get("locations")
        if locs is None:
            locs = [loc["path"] if isinstance(loc, dict) else loc for loc in s.get("Location", [])]
        key = str(s["key"])
        out.append({"key": key, "type": s.get("type", "show"),
                    "title": s.get("title", "Library %s" % key), "locations": list(locs),
                    "uuid": s.get("uuid", "00000000-0000-4000-8000-%012x"
                                  % (abs(hash(key)) % (1 << 48))),
                    "refreshing": bool(s.get("refreshing", False))})
    return out


class _Server(TrackedServer):
    def __init__(self, addr, double):
        super().__init__(addr, double, _Handler)

    def get_request(self):
        """With the double's ssl_context: TLS on each accepted connection, the handshake in the
        request's own thread (a client that never completes it holds up no one else)."""
        sock, addr = super().get_request()
        ctx = self.double.ssl_context
        if ctx is not None:
            sock = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        # a refused handshake (a client without the CA, or speaking plain HTTP) is the client's
        # business, not a traceback
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)



class _Handler(TrackedHandler):
    server_version = "PlexDouble/1.0"


class PlexDouble:
    IDENTIFIER = "plexdouble0000000000000000000000000000"
    VERSION = "1.41.0.8992-test"

    def __init__(self, token="plex-test-token", sections=None, host="127.0.0.1", port=0,
                 delay=0.0, record=True, machine_identifier=None, ssl_context=None):
        self.token = token
        self.ssl_context = ssl_context  # an ssl.SSLContext: serve https (url says so)
        self.machine_identifier = machine_identifier or self.IDENTIFIER
        self.host = host
        self.port = port
        self.delay = float(delay)
        self.record = record
        self.hook = None           # hook(request) -> None or an int status to answer instead
        self._lock = threading.RLock()  # the condition's predicate may call requests()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self._fail = []            # statuses to answer to the next refreshes
        self._fail_trash = []      # statuses to answer to the next emptyTrash calls
        self._sections = _norm_sections(sections)
        self._refreshing_polls = {}  # section key -> polls left that still say refreshing
        self.scan_sets_refreshing = None  # int: a 200 refresh marks its section for N polls
        self.section_polls = 0     # /library/sections answered 200
        self._server = None
        self._thread = None
        self.counts = {"requests": 0, "refreshes": 0, "refresh_ok": 0}
        self.max_concurrent_refreshes = 0
        self._in_refresh = 0

    # ---- lifecycle ----
    def start(self, port=None):
        """Listen on host:port (port 0 = any free port; after set_down(), the same port).
        Returns self."""
        if port is not None:
            self.port = port
        if self._server is not None:
            return self
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server((self.host, self.port), self)
                break
            except OSError:
                # the same port again right after set_down(): a lingering socket can make
                # bind fail briefly
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="plexdouble:%d" % self.port, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and close the socket (requests in flight finish on their threads)."""
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            srv.drop_connections()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def set_down(self):
        """Plex is down: stop listening (new connections are refused, open ones are broken) and
        keep the port."""
        self.stop()

    def set_up(self):
        """Plex is back, on the same port."""
        return self.start(self.port)

    @property
    def running(self):
        return self._server is not None

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.ssl_context else "http", self.host, self.port)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- knobs ----
    def set_sections(self, sections):
        with self._lock:
            self._sections = _norm_sections(sections)
            self._refreshing_polls.clear()

    def fail_next(self, n, status=503, route="refresh"):
        """Answer the next n refresh requests (that pass auth and validation) with status;
        route="empty_trash": the next n emptyTrash calls instead."""
        if route not in ("refresh", "empty_trash"):
            raise ValueError("fail_next: route is refresh or empty_trash, not %r" % (route,))
        with self._lock:
            (self._fail if route == "refresh" else self._fail_trash).extend([int(status)] * n)

    def _section(self, key):
        for s in self._sections:
            if s["key"] == str(key):
                return s
        raise KeyError("no section %r" % (key,))

    def set_refreshing(self, key, on=True, polls=None):
        """Section key reports refreshing=on. With on and polls=N, only the next N polls of
        /library/sections say so; from the one after, it is false again."""
        with self._cond:
            s = self._section(key)
            s["refreshing"] = bool(on)
            self._refreshing_polls.pop(s["key"], None)
            if on and polls is not None:
                if polls <= 0:
                    s["refreshing"] = False
                else:
                    self._refreshing_polls[s["key"]] = int(polls)
            self._cond.notify_all()

    def refreshing(self, key):
        """The section's refreshing flag as the next poll would report it."""
        with self._lock:
            return self._section(key)["refreshing"]

    def _polled(self):
        """One answered poll of /library/sections: count down the sections set with polls=N."""
        self.section_polls += 1
        for key in list(self._refreshing_polls):
            self._refreshing_polls[key] -= 1
            if self._refreshing_polls[key] <= 0:
                del self._refreshing_polls[key]
                self._section(key)["refreshing"] = False

    # ---- what was seen ----
    def requests(self, route=None):
        with self._lock:
            return [r for r in self._requests if route is None or r.route == route]

    def refreshes(self, path=None, section=None, status=None):
        """Recorded refresh requests, optionally only those whose decoded path (bytes or str,
        compared as UTF-8 bytes), section (str or int) or answered status match."""
        if isinstance(path, str):
            path = path.encode("utf-8")
        out = []
        for r in self.requests("refresh"):
            if path is not None and r.scan_path != path:
                continue
            if section is not None and r.section != str(section):
                continue
            if status is not None and r.status != status:
                continue
            out.append(r)
        return out

    def scans(self, path=None, section=None):
        """Refreshes answered 200 (successful scans)."""
        return self.refreshes(path=path, section=section, status=200)

    def empty_trashes(self, section=None, status=None):
        """Recorded emptyTrash calls, optionally only those for section (str or int) or answered
        status (200: the trash was emptied)."""
        return [r for r in self.requests("empty_trash")
                if (section is None or r.section == str(section))
                and (status is None or r.status == status)]

    def clear(self):
        with self._lock:
            self._requests.clear()

    def wait_for(self, predicate, timeout=30.0):
        """Block until predicate(self) is true (re-checked on every request and every 50 ms);
        returns its last value."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = predicate(self)
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    return v
                self._cond.wait(min(left, 0.05))

    # ---- answers ----
    def _sections_json(self):
        dirs = []
        for s in self._sections:
            dirs.append({
                "allowSync": True, "art": "/:/resources/show-fanart.jpg", "composite": "",
                "filters": True, "refreshing": s["refreshing"], "thumb": "", "key": s["key"],
                "type": s["type"], "title": s["title"], "agent": "tv.plex.agents.series",
                "scanner": "Plex TV Series", "language": "en-US", "uuid": s["uuid"],
                "updatedAt": 1700000000, "createdAt": 1600000000, "scannedAt": 1700000000,
                "content": True, "directory": True, "contentChangedAt": 1, "hidden": 0,
                "Location": [{"id": int(s["key"]) * 100 + i if s["key"].isdigit() else i,
                              "path": p} for i, p in enumerate(s["locations"])],
            })
        return json.dumps({"MediaContainer": {"size": len(dirs), "allowSync": False,
                                              "title1": "Plex Library", "Directory": dirs}},
                          ensure_ascii=False).encode("utf-8")

    def _sections_xml(self):
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n',
                 '<MediaContainer size="%d" allowSync="0" title1="Plex Library">\n'
                 % len(self._sections)]
        for s in self._sections:
            parts.append('<Directory allowSync="1" art="" composite="" filters="1" '
                         'refreshing="%s" thumb="" key=%s type=%s title=%s '
                         'agent="tv.plex.agents.series" scanner="Plex TV Series" '
                         'language="en-US" uuid=%s updatedAt="1700000000" '
                         'createdAt="1600000000" scannedAt="1700000000" content="1" '
                         'directory="1" contentChangedAt="1" hidden="0">\n'
                         % ("1" if s["refreshing"] else "0",
                            quoteattr(s["key"]), quoteattr(s["type"]), quoteattr(s["title"]),
                            quoteattr(s["uuid"])))
            for i, p in enumerate(s["locations"]):
                parts.append('<Location id="%d" path=%s />\n' % (i + 1, quoteattr(p)))
            parts.append('</Directory>\n')
        parts.append('</MediaContainer>\n')
        return "".join(parts).encode("utf-8")

    def _identity(self):
        return json.dumps({"MediaContainer": {
            "size": 0, "claimed": True, "machineIdentifier": self.machine_identifier,
            "version": self.VERSION}}).encode(), "application/json"

    def _dispatch(self, h):
        rec = Request()
        rec.time = time.monotonic()
        rec.wall_time = time.time()
        rec.method = h.command
        rec.target = h.path
        rec.path, _, rec.query = h.path.partition("?")
        rec.headers = {k.lower(): v for k, v in h.headers.items()}
        try:
            rec.params = parse_query_bytes(rec.query)
        except Exception:  # never: unquote_to_bytes accepts anything
            rec.params = []
        # drain a request body so the connection stays usable
        length = int(h.headers.get("Content-Length") or 0)
        if length > 0:
            h.rfile.read(length)

        with self._lock:
            self.counts["requests"] += 1
            if self.record:
                self._requests.append(rec)

        status, body, ctype, extra = self._answer(rec)
        if self.hook is not None:
            override = self.hook(rec)
            if isinstance(override, int):
                status, body, ctype = override, b"", "text/plain"
        if rec.route == "refresh" and status == 200 and self.delay > 0:
            time.sleep(self.delay)
        rec.status = status
        with self._cond:
            if rec.route == "refresh" and status == 200:
                self.counts["refresh_ok"] += 1
                if self.scan_sets_refreshing is not None and self.scan_sets_refreshing > 0:
                    sec = next((s for s in self._sections if s["key"] == rec.section), None)
                    if sec is not None:
                        sec["refreshing"] = True
                        self._refreshing_polls[sec["key"]] = int(self.scan_sets_refreshing)
            self._in_refresh -= 1 if rec.route == "refresh" else 0
            self._cond.notify_all()

        try:
            h.send_response(status)
            if ctype:
                h.send_header("Content-Type", ctype)
            for k, v in extra:
                h.send_header(k, v)
            h.send_header("X-Plex-Protocol", "1.0")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD" and body:
                h.wfile.write(body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _token_ok(self, rec):
        tok = rec.headers.get("x-plex-token")
        if tok is None:
            v = rec.param("X-Plex-Token")
            tok = v.decode("utf-8", "replace") if v is not None else None
        return tok is not None and tok == self.token

    def _answer(self, rec):
        """Decide (status, body, content type, extra headers) for rec; sets rec.route."""
        want_json = "application/json" in rec.headers.get("accept", "")
        parts = rec.path.split("/")
        unauthorized = (401, b"<html><head><title>Unauthorized</title></head><body><h1>401 "
                        b"Unauthorized</h1></body></html>", "text/html", [])
        not_found = (404, b"<html><head><title>Not Found</title></head><body><h1>404 Not "
                     b"Found</h1></body></html>", "text/html", [])
        bad_method = (405, b"", "text/html", [("Allow", "GET")])

        if rec.path == "/identity":
            rec.route = "identity"
            if rec.method != "GET":
                return bad_method
            body, ctype = self._identity()
            return 200, body, ctype, []

        if rec.path == "/library/sections":
            rec.route = "sections"
            if not self._token_ok(rec):
                return unauthorized
            if rec.method != "GET":
                return bad_method
            with self._cond:
                if want_json:
                    body, ctype = self._sections_json(), "application/json"
                else:
                    body, ctype = self._sections_xml(), "text/xml;charset=utf-8"
                self._polled()
                self._cond.notify_all()
                return 200, body, ctype, []

        if (len(parts) == 5 and parts[0] == "" and parts[1] == "library"
                and parts[2] == "sections" and parts[3] != "" and parts[4] == "emptyTrash"):
            rec.route = "empty_trash"
            rec.section = urllib.parse.unquote(parts[3])
            if not self._token_ok(rec):
                return unauthorized
            if rec.method != "PUT":
                return 405, b"", "text/html", [("Allow", "PUT")]
            with self._lock:
                sec = next((s for s in self._sections if s["key"] == rec.section), None)
                if sec is None:
                    return not_found
                rec.section_refreshing = sec["refreshing"]
                forced = self._fail_trash.pop(0) if self._fail_trash else None
            if forced is not None:
                return forced, b"", "text/html", []
            return 200, b"", None, []

        if (len(parts) == 5 and parts[0] == "" and parts[1] == "library"
                and parts[2] == "sections" and parts[3] != "" and parts[4] == "refresh"):
            rec.route = "refresh"
            rec.section = urllib.parse.unquote(parts[3])
            paths = [v for k, v in rec.params if k == b"path"]
            rec.scan_path = paths[0] if paths else None
            with self._cond:
                self.counts["refreshes"] += 1
                self._in_refresh += 1
                self.max_concurrent_refreshes = max(self.max_concurrent_refreshes,
                                                    self._in_refresh)
            if not self._token_ok(rec):
                return unauthorized
            if rec.method != "GET":
                return bad_method
            with self._lock:
                known = any(s["key"] == rec.section for s in self._sections)
            if not known:
                return not_found
            if not paths or paths[0] == b"" or len(paths) > 1:
                return 400, b"<html><head><title>Bad Request</title></head><body><h1>400 Bad " \
                            b"Request</h1></body></html>", "text/html", []
            with self._lock:
                forced = self._fail.pop(0) if self._fail else None
            if forced is not None:
                return forced, b"", "text/html", []
            return 200, b"", None, []

        return not_found


def _main(argv=None):
    ap = argparse.ArgumentParser(description="A strict Plex double (see the module docstring).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default="plex-test-token")
    ap.add_argument("--sections", help="JSON file: list of {key,type,title,locations}")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each refresh takes")
    ap.add_argument("--no-record", action="store_true",
                    help="keep counters only (long benchmarks)")
    ap.add_argument("--log", action="store_true",
                    help="print one line per refresh (monotonic time, status, section, path)")
    args = ap.parse_args(argv)

    sections = []
    if args.sections:
        with open(args.sections, encoding="utf-8") as f:
            sections = json.load(f)
    plex = PlexDouble(token=args.token, sections=sections, host=args.host, port=args.port,
                      delay=args.delay, record=not args.no_record)
    if args.log:
        out_lock = threading.Lock()

        def hook(rec):
            if rec.route == "refresh":
                with out_lock:
                    print("%.6f refresh section=%s path=%s" % (
                        rec.time, rec.section,
                        (rec.scan_path or b"").decode("utf-8", "backslashreplace")), flush=True)
        plex.hook = hook
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    plex.start()
    print("listening on %s:%d" % (args.host, plex.port), flush=True)
    while not stop.wait(0.2):
        pass
    plex.stop()
    stats = dict(plex.counts)
    stats["max_concurrent_refreshes"] = plex.max_concurrent_refreshes
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
