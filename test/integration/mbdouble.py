#!/usr/bin/env python3
"""A strict stand-in for Jellyfin and Emby (the "MediaBrowser" family), for the integration tests.

One class, MBDouble, whose `kind` picks the server:

  "jellyfin"    Jellyfin 10.x: the token from `Authorization: MediaBrowser Token="<key>"` (also
                the scheme `Emby`; `X-Emby-Authorization` when there is no `Authorization`),
                else `X-Emby-Token`, else `X-MediaBrowser-Token`, else `?ApiKey=`, else
                `?api_key=` (the first form present decides: a wrong token there is 401 even if
                a later form holds the right one)
  "jellyfin12"  Jellyfin 12 (legacy authorization disabled): only
                `Authorization: MediaBrowser Token="<key>"` and `?ApiKey=`. A legacy form
                (`X-Emby-Token`, `X-MediaBrowser-Token`, `X-Emby-Authorization`, the `Emby`
                scheme, `?api_key=`) carries no token; with `refuse_mixed_legacy` (the default)
                a request holding one is 401 even when the new form is right too
  "emby"        Emby: `X-Emby-Token: <key>`, else `?api_key=`; nothing else. Every route is
                served at `/...` and at `/emby/...`

`Authorization` is parsed as Jellyfin does: the scheme up to the first space, then
comma-separated key=value parameters, values optionally in double quotes (commas inside quotes
are kept) and percent-decoded; parameter names are case-sensitive (`Token`). A malformed header
(no scheme, no `=`, an unterminated quote, text after a closing quote) yields no token. Query
parameter names are matched case-insensitively (as ASP.NET does); route paths exactly.

Routes (checked in this order: route 404, method 405, auth 401, admin 403, Content-Type 415,
body 400, forced failures, answer):

  GET  /Library/VirtualFolders  [{"Name", "Locations", "CollectionType", "LibraryOptions",
                                 "ItemId", ...}] from `libraries`; a key that is not an
                                 administrator's (`user_token`) gets 403
  POST /Library/Media/Updated   Content-Type application/json (an optional `charset=utf-8`
                                 is accepted; anything else 415); the body exactly
                                 {"Updates": [{"Path": str, "UpdateType": "Created" |
                                 "Modified" | "Deleted"}, ...]}: no other key, no duplicate
                                 key, at least one update, each Path absolute and normalized
                                 (no "//", ".", "..", trailing "/"). Else 400, recorded as a
                                 protocol error. Any authenticated key; 204 (Jellyfin) or 200
                                 with an empty body (Emby)
  POST /Library/ScanPath        only with `scan_path_plugin=True` (the Targeted Scans plugin;
                                 without it 404 with an empty body, for any method):
                                 {"Path": str, "LibraryId"?: str}; 200 {"ItemId", "ItemName",
                                 "Status": "Created" (first scan of that path) | "Refreshed",
                                 "Message"} when the path is a library location or below one,
                                 else 404 {"Status": "PathNotFound", ...}

Anything else is 404, a wrong method 405. Every request is recorded (see Request). Knobs:
`delay` (seconds a scan route sleeps before answering), `library_delay` (the same for
VirtualFolders), fail_next(n, status) / fail_until_cleared(status) / clear_failures() (scan
routes by default), refuse_auth() / accept_auth() (401 even for the right token),
set_token() / set_user_token() (switch the accepted keys at run time), force_scan_status()
(the plugin's next answers), set_libraries(), set_down() / set_up(), `base_path` (a URL prefix
such as "/jellyfin", as Jellyfin's base URL setting), and a per-request hook.

In-process:
    jf = MBDouble("jellyfin12", token="k", libraries=[{"Name": "TV", "Locations": ["/data/tv"]}])
    jf.start(); ... jf.url ... jf.updates() ...; jf.stop()
"""

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
import urllib.parse

from doublebase import TrackedHandler, TrackedServer

__all__ = ["MBDouble", "MBRequest", "parse_authorization", "KINDS", "UPDATE_TYPES",
           "LEGACY_AUTH_FORMS"]

KINDS = ("jellyfin", "jellyfin12", "emby")
UPDATE_TYPES = ("Created", "Modified", "Deleted")
SCAN_ROUTES = ("media_updated", "scan_path")
ROUTES = {  # path (after the base path and Emby's /emby) -> (route, method)
    "/Library/VirtualFolders": ("virtual_folders", "GET"),
    "/Library/Media/Updated": ("media_updated", "POST"),
    "/Library/ScanPath": ("scan_path", "POST"),
}
# The forms Jellyfin 12 no longer reads (names as in MBRequest.auth_forms).
LEGACY_AUTH_FORMS = ("authorization:emby", "x-emby-authorization", "x-emby-token",
                     "x-mediabrowser-token", "query:api_key")


def parse_authorization(value):
    """Parse an `Authorization` value such as `MediaBrowser Client="x", Token="abc"`.
    Returns (scheme, {name: value}) with values unquoted and percent-decoded, or None when the
    value is malformed: no scheme, a parameter without '=', an unterminated quote, text after a
    closing quote, an empty name or a name given twice."""
    value = value.strip(" \t")
    sp = value.find(" ")
    if sp <= 0:
        return None
    scheme, rest = value[:sp], value[sp + 1:]
    params = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            return None
        name = rest[i:eq].strip(" \t")
        if not name or any(c in name for c in ' \t",'):
            return None
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            end = rest.find('"', i + 1)
            if end < 0:
                return None
            raw = rest[i + 1:end]
            i = end + 1
            while i < n and rest[i] in " \t":
                i += 1
            if i < n and rest[i] != ",":
                return None
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            raw = rest[i:end].strip(" \t")
            if '"' in raw:
                return None
            i = end
        if name in params:
            return None
        params[name] = urllib.parse.unquote_plus(raw)
    return scheme, params


def _norm_path_ok(p):
    """An absolute, normalized path: what the daemon must send as a target path."""
    if not isinstance(p, str) or not p.startswith("/") or "\x00" in p:
        return False
    if p == "/":
        return True
    if p.endswith("/") or "//" in p:
        return False
    return not any(c in (".", "..") for c in p.split("/")[1:])


def _under(path, loc):
    loc = loc.rstrip("/") or "/"
    return path == loc or path.startswith(loc + "/") or loc == "/"


def _no_dup_pairs(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def _reject_constant(name):
    raise ValueError("not JSON: %s" % name)


class MBRequest:
    """One request as the double saw it."""

    __slots__ = ("method", "target", "path", "route_path", "query", "params", "headers",
                 "header_list", "body", "json", "time", "wall_time", "status", "route",
                 "emby_prefix", "auth_forms", "auth_form", "token", "admin", "error",
                 "updates", "scan_path", "scan_status", "answer", "note")

    def __init__(self):
        self.method = ""          # "GET", "POST", ...
        self.target = ""          # raw request target, exactly as sent
        self.path = ""            # raw path part
        self.route_path = None    # the path after base_path and /emby (None: outside base_path)
        self.query = ""           # raw query part, "" if none
        self.params = []          # [(name, value)] decoded (str, '+' as space)
        self.headers = {}         # lower-case name -> value (last one wins)
        self.header_list = []     # [(name, value)] as received, duplicates kept
        self.body = b""           # the request body (bytes)
        self.json = None          # the body decoded as JSON, if it is
        self.time = 0.0           # time.monotonic() at receipt
        self.wall_time = 0.0      # time.time() at receipt
        self.status = None        # status answered
        self.route = None         # "virtual_folders", "media_updated", "scan_path" or None (404)
        self.emby_prefix = False  # Emby: the request came under /emby/
        self.auth_forms = []      # every credential form present (see LEGACY_AUTH_FORMS)
        self.auth_form = None     # the form the token was taken from
        self.token = None         # the token taken from it
        self.admin = None         # True/False once authenticated
        self.error = None         # protocol error (why a 400/415 was answered)
        self.updates = None       # media_updated: [(path, update_type)] once the body is valid
        self.scan_path = None     # scan_path: the Path once the body is valid
        self.scan_status = None   # scan_path: the plugin's "Status" answered
        self.answer = None        # the body answered (bytes)
        self.note = None          # free text a hook may set

    def param(self, name):
        """First decoded value of the query parameter name (compared case-insensitively)."""
        for k, v in self.params:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return ("MBRequest(%s %s status=%s auth=%s error=%r t=%.3f)"
                % (self.method, self.target, self.status, self.auth_form, self.error, self.time))


class _Server(TrackedServer):
    def __init__(self, addr, double):
        super().__init__(addr, double, _Handler)


class _Handler(TrackedHandler):
    def version_string(self):
        return self.server.double.server_header


def _default_item_id(kind, i, name):
    if kind == "emby":
        return str(3 + i)  # Emby's ids are small integers as strings
    return hashlib.md5(("library:" + name).encode("utf-8")).hexdigest()


def _norm_libraries(kind, libraries):
    out = []
    for i, lib in enumerate(libraries or []):
        name = lib.get("Name", lib.get("name"))
        locs = lib.get("Locations", lib.get("locations"))
        if not isinstance(name, str) or not isinstance(locs, list):
            raise ValueError("a library is {Name, Locations[, ItemId, CollectionType]}: %r"
                             % (lib,))
        out.append({
            "Name": name,
            "Locations": list(locs),
            "ItemId": str(lib.get("ItemId", lib.get("item_id")) or _default_item_id(kind, i, name)),
            "CollectionType": lib.get("CollectionType", lib.get("collection_type", "tvshows")),
        })
    return out


class MBDouble:
    """See the module docstring. token: the administrator's key; user_token: a key that
    authenticates but is not an administrator's (403 on VirtualFolders)."""

    def __init__(self, kind="jellyfin", token="mb-test-token", libraries=None, user_token=None,
                 scan_path_plugin=False, host="127.0.0.1", port=0, delay=0.0, library_delay=0.0,
                 base_path="", refuse_mixed_legacy=True, record=True):
        if kind not in KINDS:
            raise ValueError("kind is one of %s, not %r" % (", ".join(KINDS), kind))
        if base_path and (not base_path.startswith("/") or base_path.endswith("/")):
            raise ValueError("base_path is '' or /name (no trailing slash): %r" % base_path)
        self.kind = kind
        self.token = token
        self.user_token = user_token
        self.scan_path_plugin = bool(scan_path_plugin)
        self.host = host
        self.port = port
        self.delay = float(delay)
        self.library_delay = float(library_delay)
        self.base_path = base_path
        self.refuse_mixed_legacy = bool(refuse_mixed_legacy)
        self.record = record
        self.hook = None           # hook(request) -> None or an int status to answer instead
        self.server_header = ("UPnP/1.0 DLNADOC/1.50 Emby/4.8.10.0" if kind == "emby"
                              else "Kestrel")
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._requests = []
        self._protocol_errors = []   # [(request, reason)]
        self._libraries = _norm_libraries(kind, libraries)
        self._fail = []              # [(status, routes)] for the next requests of those routes
        self._fail_always = None     # (status, routes) until clear_failures()
        self._refusing = False
        self._scan_forced = []       # plugin statuses to answer next
        self._known_paths = set()    # paths the plugin has scanned: "Refreshed" next time
        self.legacy_auth_seen = False
        self.counts = {"requests": 0, "media_updated_ok": 0, "scan_path_ok": 0}
        self.max_concurrent_scans = 0
        self._in_scan = 0
        self._server = None
        self._thread = None

    # ---- lifecycle ----
    def start(self, port=None):
        """Listen on host:port (0 = any free port; after set_down(), the same port)."""
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
                if self.port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the same port again right after set_down()
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="mbdouble-%s:%d" % (self.kind, self.port),
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
            srv.drop_connections()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def set_down(self):
        """The server is down: stop listening, break open connections, keep the port."""
        self.stop()

    def set_up(self):
        return self.start(self.port)

    @property
    def running(self):
        return self._server is not None

    @property
    def url(self):
        """The server's URL, with base_path (what the daemon is configured with)."""
        return "http://%s:%d%s" % (self.host, self.port, self.base_path)

    @property
    def server_type(self):
        """The `type` of a MEDIA_SERVERS entry: "jellyfin" or "emby"."""
        return "emby" if self.kind == "emby" else "jellyfin"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- knobs ----
    def set_libraries(self, libraries):
        with self._lock:
            self._libraries = _norm_libraries(self.kind, libraries)

    def libraries(self):
        with self._lock:
            return [dict(lib) for lib in self._libraries]

    def set_token(self, token):
        """Accept token (the administrator's key) from now on; the old one gets 401."""
        with self._lock:
            self.token = token

    def set_user_token(self, token):
        """The non-administrator key (None: none)."""
        with self._lock:
            self.user_token = token

    def refuse_auth(self, on=True):
        """Answer 401 to every request that needs a key, even with the right one."""
        with self._lock:
            self._refusing = bool(on)

    def accept_auth(self):
        self.refuse_auth(False)

    def _routes(self, route):
        if route is None:
            return SCAN_ROUTES
        routes = (route,) if isinstance(route, str) else tuple(route)
        for r in routes:
            if r not in ("virtual_folders",) + SCAN_ROUTES:
                raise ValueError("unknown route %r" % (r,))
        return routes

    def fail_next(self, n, status=503, route=None):
        """Answer the next n requests of route (default: Media/Updated and ScanPath) that pass
        auth and validation with status (and an empty body)."""
        routes = self._routes(route)
        with self._lock:
            self._fail.extend([(int(status), routes)] * n)

    def fail_until_cleared(self, status=503, route=None):
        """Answer every such request with status until clear_failures()."""
        with self._lock:
            self._fail_always = (int(status), self._routes(route))

    def clear_failures(self):
        with self._lock:
            self._fail.clear()
            self._fail_always = None

    def force_scan_status(self, status, n=1):
        """The plugin answers its next n valid ScanPath calls with this Status: "PathNotFound" or
        "ParentNotFound" (404), "Failed", "Created" or "Refreshed" (200)."""
        if status not in ("Created", "Refreshed", "PathNotFound", "ParentNotFound", "Failed"):
            raise ValueError("unknown plugin status %r" % (status,))
        with self._lock:
            self._scan_forced.extend([status] * n)

    def reset_knobs(self):
        """No failures, no refusal, no forced plugin status, no delays."""
        with self._lock:
            self.clear_failures()
            self._refusing = False
            self._scan_forced.clear()
            self.delay = self.library_delay = 0.0

    # ---- what was seen ----
    def requests(self, route=None):
        with self._lock:
            return [r for r in self._requests if route is None or r.route == route]

    def protocol_errors(self):
        """[(request, reason)] for every request answered 400 or 415 for its body or headers."""
        with self._lock:
            return list(self._protocol_errors)

    def updates(self, ok_only=True):
        """[(path, update_type)] from Media/Updated requests with a valid body, in order; by
        default only those answered 2xx (those the server acted on)."""
        out = []
        for r in self.requests("media_updated"):
            if r.updates is None or (ok_only and not 200 <= (r.status or 0) < 300):
                continue
            out.extend(r.updates)
        return out

    def scan_paths(self, ok_only=True):
        """Paths of ScanPath requests with a valid body; by default only those the plugin
        scanned (200 with Status Created or Refreshed)."""
        return [r.scan_path for r in self.requests("scan_path")
                if r.scan_path is not None and (not ok_only or (
                    r.status == 200 and r.scan_status in ("Created", "Refreshed")))]

    def scan_results(self):
        """[(path, HTTP status, plugin Status)] of every ScanPath request with a valid body."""
        return [(r.scan_path, r.status, r.scan_status) for r in self.requests("scan_path")
                if r.scan_path is not None]

    def clear(self):
        """Forget what was seen (requests, protocol errors, legacy_auth_seen); knobs stay."""
        with self._lock:
            self._requests.clear()
            self._protocol_errors.clear()
            self.legacy_auth_seen = False

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

    def wait_requests(self, n, route=None, timeout=30.0):
        """Wait until at least n requests (of route) were answered; returns them ([] if fewer
        came in time)."""
        def done(d):
            rs = [r for r in d.requests(route) if r.status is not None]
            return rs if len(rs) >= n else None
        return self.wait_for(done, timeout) or []

    # ---- the request ----
    def _read_body(self, h):
        if "chunked" in (h.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                line = h.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline(1024)
        length = int(h.headers.get("Content-Length") or 0)
        return h.rfile.read(length) if length > 0 else b""

    def _dispatch(self, h):
        rec = MBRequest()
        rec.time = time.monotonic()
        rec.wall_time = time.time()
        rec.method = h.command
        # the target as sent: http.server collapses a leading "//" in h.path
        words = h.requestline.split(" ")
        rec.target = words[1] if len(words) == 3 else h.path
        rec.path, _, rec.query = rec.target.partition("?")
        rec.header_list = list(h.headers.items())
        rec.headers = {k.lower(): v for k, v in rec.header_list}
        rec.params = urllib.parse.parse_qsl(rec.query, keep_blank_values=True)
        try:
            rec.body = self._read_body(h)
        except (ValueError, OSError):
            rec.body = None
            h.close_connection = True

        with self._lock:
            self.counts["requests"] += 1
            if self.record:
                self._requests.append(rec)

        status, body, ctype, extra = self._answer(rec)
        if self.hook is not None:
            override = self.hook(rec)
            if isinstance(override, int):
                status, body, ctype, extra = override, b"", None, []
        if rec.route in SCAN_ROUTES and 200 <= status < 300 and self.delay > 0:
            with self._lock:
                self._in_scan += 1
                self.max_concurrent_scans = max(self.max_concurrent_scans, self._in_scan)
            time.sleep(self.delay)
            with self._lock:
                self._in_scan -= 1
        elif rec.route in SCAN_ROUTES and 200 <= status < 300:
            with self._lock:
                self.max_concurrent_scans = max(self.max_concurrent_scans, 1)
        if rec.route == "virtual_folders" and self.library_delay > 0:
            time.sleep(self.library_delay)
        with self._cond:
            rec.status = status
            rec.answer = body
            if rec.route == "media_updated" and 200 <= status < 300:
                self.counts["media_updated_ok"] += 1
            if rec.route == "scan_path" and status == 200:
                self.counts["scan_path_ok"] += 1
            self._cond.notify_all()
        try:
            h.send_response(status)
            if ctype:
                h.send_header("Content-Type", ctype)
            for k, v in extra:
                h.send_header(k, v)
            if status != 204:
                h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if h.command != "HEAD" and body and status != 204:
                h.wfile.write(body)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _auth_forms(self, rec):
        """Every credential form in rec, in Jellyfin's order, as (form, token or None)."""
        forms = []
        for name in ("authorization", "x-emby-authorization"):
            value = rec.headers.get(name)
            if value is None:
                continue
            parsed = parse_authorization(value)
            scheme = parsed[0].lower() if parsed else ""
            token = parsed[1].get("Token") if scheme in ("mediabrowser", "emby") else None
            if name == "authorization":
                form = "authorization:" + (scheme if scheme in ("mediabrowser", "emby")
                                           else "other")
            else:
                form = name
            forms.append((form, token or None))
        for name in ("x-emby-token", "x-mediabrowser-token"):
            if name in rec.headers:
                forms.append((name, rec.headers[name] or None))
        for k, v in rec.params:
            if k.lower() == "apikey":
                forms.append(("query:ApiKey", v or None))
            elif k.lower() == "api_key":
                forms.append(("query:api_key", v or None))
        return forms

    def _token_from(self, forms):
        """(form, token) the kind reads, or (None, None)."""
        have = dict(reversed(forms))  # first occurrence of each form wins
        if self.kind == "jellyfin":
            # Authorization first; X-Emby-Authorization only when there is no Authorization
            if "authorization:mediabrowser" in have or "authorization:emby" in have:
                order = ("authorization:mediabrowser", "authorization:emby")
            elif "authorization:other" in have:
                order = ()
            else:
                order = ("x-emby-authorization",)
            order += ("x-emby-token", "x-mediabrowser-token", "query:ApiKey", "query:api_key")
        elif self.kind == "jellyfin12":
            order = ("authorization:mediabrowser", "query:ApiKey")
        else:
            order = ("x-emby-token", "query:api_key")
        for form in order:
            if have.get(form):
                return form, have[form]
        return None, None

    def _authenticate(self, rec):
        """None when authenticated (rec.admin set), else the 401 answer."""
        forms = self._auth_forms(rec)
        rec.auth_forms = [f for f, _ in forms]
        legacy = any(f in LEGACY_AUTH_FORMS for f in rec.auth_forms)
        names = [n.lower() for n, _ in rec.header_list]
        dup = any(names.count(n) > 1 for n in ("authorization", "x-emby-authorization",
                                               "x-emby-token", "x-mediabrowser-token"))
        rec.auth_form, rec.token = self._token_from(forms)
        with self._lock:
            if legacy:
                self.legacy_auth_seen = True
            refused = self._refusing
            token, user_token = self.token, self.user_token
        denied = (401, b"", None, [])
        if self.kind == "emby":
            denied = (401, b"Access token is invalid or expired.", "text/html", [])
        if dup:
            rec.note = "a credential header sent twice"
            return denied
        if self.kind == "jellyfin12" and legacy and self.refuse_mixed_legacy:
            rec.note = "legacy authorization (disabled in Jellyfin 12)"
            return denied
        if refused or rec.token is None:
            return denied
        if rec.token == token:
            rec.admin = True
        elif user_token is not None and rec.token == user_token:
            rec.admin = False
        else:
            return denied
        return None

    def _protocol_error(self, rec, status, reason):
        rec.error = reason
        with self._lock:
            self._protocol_errors.append((rec, reason))
        body = json.dumps({"type": "https://tools.ietf.org/html/rfc9110#section-15.5.1",
                           "title": "One or more validation errors occurred.",
                           "status": status, "errors": {"$": [reason]}}).encode()
        return status, body, "application/problem+json; charset=utf-8", []

    def _json_body(self, rec):
        """The decoded body, or (None, reason)."""
        ctype = rec.headers.get("content-type")
        if ctype is None:
            return None, (415, "no Content-Type")
        mtype, *params = [p.strip() for p in ctype.split(";")]
        if mtype.lower() != "application/json":
            return None, (415, "Content-Type %r is not application/json" % ctype)
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() != "charset" or v.strip().strip('"').lower() != "utf-8":
                return None, (415, "Content-Type parameter %r" % p)
        if rec.body is None:
            return None, (400, "unreadable body")
        try:
            text = rec.body.decode("utf-8")
            if text.startswith("\ufeff"):
                raise ValueError("byte order mark")
            rec.json = json.loads(text, object_pairs_hook=_no_dup_pairs,
                                  parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as e:
            return None, (400, "body is not JSON: %s" % e)
        return rec.json, None

    def _forced_failure(self, route):
        with self._lock:
            for i, (status, routes) in enumerate(self._fail):
                if route in routes:
                    del self._fail[i]
                    return status
            if self._fail_always and route in self._fail_always[1]:
                return self._fail_always[0]
        return None

    def _answer(self, rec):
        """Decide (status, body, content type, extra headers) for rec; sets rec.route."""
        not_found = (404, b"", None, [])
        path = rec.path
        if self.base_path:
            if not path.startswith(self.base_path + "/"):
                return not_found
            path = path[len(self.base_path):]
        if self.kind == "emby" and path.startswith("/emby/"):
            path = path[len("/emby"):]
            rec.emby_prefix = True
        rec.route_path = path
        route, method = ROUTES.get(path, (None, None))
        if route is None or (route == "scan_path" and not self.scan_path_plugin):
            return not_found
        rec.route = route
        if rec.method != method:
            return 405, b"", None, [("Allow", method)]
        denied = self._authenticate(rec)
        if denied is not None:
            return denied
        if route == "virtual_folders":
            return self._virtual_folders(rec)
        body, err = self._json_body(rec)
        if err is not None:
            return self._protocol_error(rec, *err)
        if route == "media_updated":
            return self._media_updated(rec, body)
        return self._scan_path(rec, body)

    def _virtual_folders(self, rec):
        if not rec.admin:
            return 403, b"", None, []
        forced = self._forced_failure("virtual_folders")
        if forced is not None:
            return forced, b"", None, []
        with self._lock:
            libs = [dict(lib) for lib in self._libraries]
        out = []
        for lib in libs:
            item = {"Name": lib["Name"], "Locations": lib["Locations"],
                    "CollectionType": lib["CollectionType"],
                    "LibraryOptions": {"Enabled": True, "EnableRealtimeMonitor": False,
                                       "PathInfos": [{"Path": p} for p in lib["Locations"]]},
                    "ItemId": lib["ItemId"], "PrimaryImageItemId": lib["ItemId"],
                    "RefreshProgress": 0, "RefreshStatus": "Idle"}
            if self.kind == "emby":
                item.update({"Id": lib["ItemId"],
                             "Guid": hashlib.md5(lib["Name"].encode()).hexdigest()})
            out.append(item)
        return (200, json.dumps(out, ensure_ascii=False).encode("utf-8"),
                "application/json; charset=utf-8", [])

    def _media_updated(self, rec, body):
        if not isinstance(body, dict) or list(body) != ["Updates"]:
            return self._protocol_error(rec, 400, 'the body is not {"Updates": [...]} alone')
        ups = body["Updates"]
        if not isinstance(ups, list) or not ups:
            return self._protocol_error(rec, 400, "Updates is not a non-empty list")
        out = []
        for u in ups:
            if not isinstance(u, dict) or sorted(u) != ["Path", "UpdateType"]:
                return self._protocol_error(rec, 400, "an update is not {Path, UpdateType}: %r"
                                            % (u,))
            if not _norm_path_ok(u["Path"]):
                return self._protocol_error(rec, 400, "Path is not an absolute normalized "
                                            "path: %r" % (u["Path"],))
            if u["UpdateType"] not in UPDATE_TYPES:
                return self._protocol_error(rec, 400, "UpdateType %r" % (u["UpdateType"],))
            out.append((u["Path"], u["UpdateType"]))
        rec.updates = out
        forced = self._forced_failure("media_updated")
        if forced is not None:
            return forced, b"", None, []
        if self.kind == "emby":
            return 200, b"", None, []
        return 204, b"", None, []

    def _scan_path(self, rec, body):
        if not isinstance(body, dict) or "Path" not in body or \
                not set(body) <= {"Path", "LibraryId"}:
            return self._protocol_error(rec, 400, 'the body is not {"Path"[, "LibraryId"]}')
        path = body["Path"]
        if not _norm_path_ok(path):
            return self._protocol_error(rec, 400, "Path is not an absolute normalized path: %r"
                                        % (path,))
        with self._lock:
            libs = [dict(lib) for lib in self._libraries]
        if "LibraryId" in body:
            libs = [lib for lib in libs if lib["ItemId"] == body["LibraryId"]]
            if not isinstance(body["LibraryId"], str) or not libs:
                return self._protocol_error(rec, 400, "unknown LibraryId %r"
                                            % (body["LibraryId"],))
        rec.scan_path = path
        forced = self._forced_failure("scan_path")
        if forced is not None:
            return forced, b"", None, []
        with self._lock:
            status = self._scan_forced.pop(0) if self._scan_forced else None
            under = any(_under(path, loc) for lib in libs for loc in lib["Locations"])
            is_root = any(path == loc.rstrip("/") for lib in libs for loc in lib["Locations"])
            if status is None:
                if not under:
                    status = "PathNotFound"
                elif path in self._known_paths or is_root:
                    status = "Refreshed"
                else:
                    status = "Created"
            if status in ("Created", "Refreshed"):
                self._known_paths.add(path)
        rec.scan_status = status
        name = path.rstrip("/").rsplit("/", 1)[-1]
        found = status not in ("PathNotFound", "ParentNotFound")
        answer = {"ItemId": hashlib.md5(path.encode("utf-8")).hexdigest() if found else None,
                  "ItemName": name if found else None, "Status": status,
                  "Message": {"Created": "Item created and scanned.",
                              "Refreshed": "Item refreshed.",
                              "PathNotFound": "No library contains the path %s." % path,
                              "ParentNotFound": "No parent item found for %s." % path,
                              "Failed": "The scan failed."}[status]}
        return ((200 if found else 404), json.dumps(answer, ensure_ascii=False).encode("utf-8"),
                "application/json; charset=utf-8", [])


def _main(argv=None):
    ap = argparse.ArgumentParser(description="A strict Jellyfin/Emby double (see the module "
                                             "docstring).")
    ap.add_argument("--kind", choices=KINDS, default="jellyfin")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--token", default="mb-test-token")
    ap.add_argument("--libraries", help="JSON file: list of {Name, Locations, ...}")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds each scan call takes")
    ap.add_argument("--scan-path-plugin", action="store_true")
    args = ap.parse_args(argv)
    libraries = []
    if args.libraries:
        with open(args.libraries, encoding="utf-8") as f:
            libraries = json.load(f)
    mb = MBDouble(args.kind, token=args.token, libraries=libraries, host=args.host,
                  port=args.port, delay=args.delay, scan_path_plugin=args.scan_path_plugin)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    mb.start()
    print("listening on %s:%d" % (args.host, mb.port), flush=True)
    while not stop.wait(0.2):
        pass
    mb.stop()
    stats = dict(mb.counts)
    stats["max_concurrent_scans"] = mb.max_concurrent_scans
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main())
