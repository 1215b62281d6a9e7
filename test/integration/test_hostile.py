"""Hostile input, slow clients and upstream faults, against the real binary.

Every limit is crossed (headers, bodies per route, total buffered bytes, JSON depth, path length,
folders per event, pending entries, connections, header and idle timeouts), slow and hostile
clients are shown not to starve a real webhook (1,000 half-open connections trickling headers, a
TLS hello, pipelining, a client that never reads), failed logins are slowed down per address
without ever delaying the right credentials, a corpus of bad requests is answered as expected with
the daemon still serving, and every upstream fault (Plex or rclone hanging, sending an endless
body, refusing, not resolving, speaking plain HTTP to https://, redirecting, refusing the
credentials, rclone's "need fs", 403 without auth and charset errors) gives one clear log line and
the right next step: a retry with backoff, or parking that names the variable to fix.

Outcomes are awaited by polling with generous timeouts; nothing sleeps a fixed time to wait for
an outcome. Latencies worth watching are printed (PSS_SHOW_LOGS is not needed for those)."""

import json
import os
import re
import resource
import select
import selectors
import socket
import sys
import threading
import time
import unittest
import urllib.parse

import rig
from rclonedouble import RcloneDouble
from rig import (MANUAL_PASS, MANUAL_USER, PLEX_TOKEN, Daemon, RigTestCase, basic_auth,
                 free_port, load_fixture, stays, touch, wait_until)

WEBHOOK_USER = "sonarr"
WEBHOOK_PASS = "webhook-secret-Qp3v"


def setUpModule():
    # 1,000 half-open connections and more: this process needs the file descriptors too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def note(text):
    sys.stderr.write("\n[hostile] %s\n" % text)
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# raw HTTP

class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    def __repr__(self):
        return "RawResponse(%s, %r)" % (self.status, self.body[:200])


class Conn:
    """A raw client socket with a response reader that handles pipelining."""

    def __init__(self, port, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_response(self):
        """The next response; EOFError if the connection closes before a whole one."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return RawResponse(status, headers, body)

    def closed_by_peer(self, timeout):
        """True if the peer closes (EOF or reset) within timeout s (data read meanwhile is kept)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _complete(raw):
    """True when raw holds one whole response (head and Content-Length body)."""
    if b"\r\n\r\n" not in raw:
        return False
    try:
        resp = _parse_buffered(raw)
    except (ValueError, IndexError):
        return False
    head_len = raw.index(b"\r\n\r\n") + 4
    return len(raw) - head_len >= int(resp.headers.get("content-length", "0"))


def exchange(port, data, timeout=10.0, shut_wr=False, wait_close=False):
    """Send data on a fresh connection and read the answer: until one whole response has come
    (or, with wait_close, until the peer closes), the peer closes, or timeout s pass. Returns
    (first RawResponse or None, all bytes read, closed: bool)."""
    c = Conn(port, timeout)
    closed = False
    try:
        c.send(data)
        if shut_wr:
            c.sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not wait_close and _complete(c.buf):
                break
            c.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = c.sock.recv(65536)
            except socket.timeout:
                break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            c.buf += chunk
        raw = c.buf
        resp = None
        if raw.startswith(b"HTTP/"):
            try:
                resp = _parse_buffered(raw)
            except (ValueError, IndexError):
                resp = None
        return resp, raw, closed
    finally:
        c.close()


def _parse_buffered(raw):
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    return RawResponse(status, headers, rest[:n])


def request_bytes(method, target, body=b"", headers=None):
    h = {"Host": "127.0.0.1"}
    if body or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % kv for kv in h.items())
    return head.encode("latin-1") + b"\r\n" + body


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------------------------
# a misbehaving upstream

class FaultServer:
    """A TCP server that reads each request head and then misbehaves:
      "hang"      never answers (the connection stays open)
      "huge"      200 with an endless chunked body
      "redirect"  302 to `location` + the request target (must not be followed)
    requests() lists (time.monotonic(), request line)."""

    def __init__(self, mode, location=None):
        self.mode = mode
        self.location = location
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._requests = []
        self._socks = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(5)

    def requests(self, contains=None):
        with self._lock:
            return [r for r in self._requests if contains is None or contains in r[1]]

    def _accept_loop(self):
        self.lsock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._socks.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        s.settimeout(0.2)
        buf = b""
        try:
            while not self._stop.is_set():
                while b"\r\n\r\n" not in buf:
                    try:
                        chunk = s.recv(65536)
                    except socket.timeout:
                        if self._stop.is_set():
                            return
                        continue
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                with self._lock:
                    self._requests.append((time.monotonic(), line))
                if self.mode == "hang":
                    while not self._stop.wait(0.2):
                        pass
                    return
                if self.mode == "huge":
                    s.settimeout(5)
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n")
                    chunk = b"[" + b"0," * 32000
                    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
                    while not self._stop.is_set():
                        s.sendall(frame)
                    return
                if self.mode == "redirect":
                    target = line.split(" ")[1]
                    s.sendall(("HTTP/1.1 302 Found\r\nLocation: %s%s\r\nContent-Length: 0\r\n\r\n"
                               % (self.location, target)).encode("latin-1"))
                    continue
        except OSError:
            return
        finally:
            try:
                s.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# the base case

@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class HostileCase(RigTestCase):
    use_rclone = False

    def health_ok(self):
        try:
            return self.daemon.get("/health", timeout=10).status == 200
        except OSError:
            return False

    def assertServing(self, msg=""):
        self.assertTrue(self.daemon.running(), "the daemon died %s" % msg)
        self.assertTrue(self.health_ok(), "the daemon stopped answering /health %s" % msg)

    def log_lines_matching(self, pattern):
        rx = re.compile(pattern, re.I)
        return [line for line in self.daemon.log_lines() if rx.search(line)]

    def start_daemon_env(self, extra_process_env, **overrides):
        """Like start_daemon, but the variables go into the process environment (no env
        file), plus extra_process_env (e.g. RES_OPTIONS, which only the process env can set)."""
        workdir = os.path.join(self.tmp, "run")
        os.makedirs(workdir, exist_ok=True)
        env = self.daemon_env(**overrides)
        os.makedirs(env["STATE_DIR"], mode=0o700, exist_ok=True)
        env.update(extra_process_env)
        self.addCleanup(self._stop_daemon)
        self.daemon = Daemon(workdir, env, env_file=False)
        return self.daemon.start()

    def season(self, show):
        f = self.show_file(show)
        touch(f)
        return f, os.path.dirname(f)


# ---------------------------------------------------------------------------------------------
# 1. limits

class LimitsTest(HostileCase):
    def sections(self):
        self.music = os.path.join(self.media, "music")
        os.makedirs(self.music, exist_ok=True)
        return super().sections() + [{"key": "3", "type": "artist", "title": "Music",
                                      "locations": [self.music]}]

    def test_header_bytes_over_the_limit_get_431(self):
        self.start_daemon(MAX_HEADER_BYTES="2048")
        ok = exchange(self.daemon.port, request_bytes("GET", "/health",
                                                       headers={"X-Pad": "a" * 1500}))[0]
        self.assertEqual(ok.status, 200, ok)
        resp, _, closed = exchange(self.daemon.port, request_bytes(
            "GET", "/health", headers={"X-Pad": "a" * 3000}), wait_close=True)
        self.assertEqual(resp.status, 431, resp)
        self.assertTrue(closed, "the connection stayed open after 431")
        resp = exchange(self.daemon.port, request_bytes("GET", "/health?" + "q" * 3000))[0]
        self.assertEqual(resp.status, 431, resp)
        many = {"X-H%d" % i: "v" for i in range(400)}  # many small headers count too
        resp = exchange(self.daemon.port, request_bytes("GET", "/health", headers=many))[0]
        self.assertEqual(resp.status, 431, resp)
        self.assertServing()

    def test_body_limit_is_per_route(self):
        self.start_daemon(MAX_WEBHOOK_BODY="65536", MAX_BODY="2048")
        auth = {"Authorization": basic_auth(MANUAL_USER, MANUAL_PASS),
                "Content-Type": "application/json"}
        # 10 KB is fine for a webhook (padding whitespace keeps it valid JSON) ...
        body = json.dumps(load_fixture("sonarr-test")).encode() + b" " * 10000
        resp = exchange(self.daemon.port, request_bytes(
            "POST", "/webhook/sonarr", body, {"Content-Type": "application/json"}))[0]
        self.assertEqual(resp.status, 200, resp)
        # ... but over MAX_BODY for every other route
        big = json.dumps({"path": "/x" + "y" * 10000}).encode()
        resp, _, closed = exchange(self.daemon.port, request_bytes("POST", "/api/scans", big,
                                                                    auth), wait_close=True)
        self.assertEqual(resp.status, 413, resp)
        self.assertTrue(closed)
        # and a webhook over MAX_WEBHOOK_BODY is refused from its Content-Length alone
        c = Conn(self.daemon.port)
        try:
            c.send(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                   b"\r\nContent-Length: 70000\r\n\r\n")
            resp = c.read_response()
            self.assertEqual(resp.status, 413, resp)
            self.assertEqual(resp.json().get("status"), "payload_too_large", resp)
        finally:
            c.close()
        # a chunked body is counted as it arrives
        chunk = b"x" * 4000
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
        resp = exchange(self.daemon.port, request_bytes(
            "POST", "/webhook/sonarr", b"", {"Content-Type": "application/json",
                                             "Transfer-Encoding": "chunked"})
                        .replace(b"Content-Length: 0\r\n", b"") + chunked)[0]
        self.assertEqual(resp.status, 413, resp)
        self.assertServing()

    def test_total_buffered_bytes_over_the_limit_get_503(self):
        self.start_daemon(MAX_BUFFERED_BYTES="1048576", MAX_WEBHOOK_BODY="700000")
        head = (b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 700000\r\n\r\n")
        a, b = Conn(self.daemon.port), Conn(self.daemon.port)
        try:
            a.send(head + b" " * 650000)  # held by the daemon: the body is not complete
            self.assertFalse(a.closed_by_peer(0.5))
            b.send(head + b" " * 650000)
            resp = b.read_response()
            self.assertEqual(resp.status, 503, resp)
            self.assertEqual(resp.json().get("status"), "service_unavailable", resp)
            # the first one was within the limit and is still served
            a.send(b" " * 50000)
            resp = a.read_response()
            self.assertEqual(resp.status, 400, resp)  # whitespace only: not a JSON object
        finally:
            a.close()
            b.close()
        self.assertTrue(self.log_lines_matching(r"bytes buffered across all connections"))
        self.assertServing()

    def test_json_nesting_deeper_than_64_is_400(self):
        self.start_daemon()
        deep = b'{"eventType": "Download", "x": ' + b"[" * 70 + b"]" * 70 + b"}"
        r = self.daemon.webhook("sonarr", deep)
        self.assertEqual(r.status, 400, r)
        self.assertIn("nested", (r.json() or {}).get("message", ""), r)
        ok = b'{"eventType": "Test", "x": ' + b"[" * 60 + b"]" * 60 + b"}"
        r = self.daemon.webhook("sonarr", ok)
        self.assertEqual(r.status, 200, r)
        self.assertServing()

    def test_path_longer_than_4096_bytes_is_400(self):
        self.start_daemon()
        long_show = os.path.join(self.tv, *(["d" * 200] * 22))  # > 4096 bytes
        r = self.daemon.webhook("sonarr", rig.sonarr_download(long_show, "Season 01/x.mkv"))
        self.assertEqual(r.status, 400, r)
        self.assertIn("too long", (r.json() or {}).get("message", ""), r)
        self.assertServing()

    def lidarr(self, artist, n_albums, album_prefix="Album"):
        p = load_fixture("lidarr-download")
        root = os.path.join(self.music, artist)
        p["artist"]["path"] = root
        p["artist"]["name"] = artist
        p["trackFiles"] = [{"id": i + 1, "path": os.path.join(root, "%s %d" % (album_prefix, i),
                                                               "01 - Track.flac"),
                            "quality": "FLAC", "qualityVersion": 1}
                           for i in range(n_albums)]
        p.pop("trackFile", None)
        return p, root

    def test_folders_per_event_over_the_limit_collapse_to_the_root(self):
        self.start_daemon(MAX_FOLDERS_PER_EVENT="3", WEBHOOK_DELAY="1h",
                          WEBHOOK_MAX_DELAY="1h")
        probe = self.show_file("Probe")
        touch(probe)
        self.wait_library_list(probe)
        payload, root = self.lidarr("Many Albums", 3)
        body = self.assertWebhookAccepted(self.daemon.webhook("lidarr", payload))
        self.assertEqual(sorted(e["plex_path"] for e in body["entries"]),
                         sorted(os.path.join(root, "Album %d" % i) for i in range(3)))
        payload, root = self.lidarr("Too Many Albums", 4)
        body = self.assertWebhookAccepted(self.daemon.webhook("lidarr", payload))
        self.assertEqual([e["plex_path"] for e in body["entries"]], [root], body)

    def test_max_pending_entries_then_503(self):
        # MAX_PENDING cannot be set below 100000: fill it with a hundred Lidarr events of 1000
        # album folders each, then one more folder is refused.
        self.start_daemon(MAX_PENDING="100000", MAX_FOLDERS_PER_EVENT="1000",
                          WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h", LOG_LEVEL="info")
        probe = self.show_file("Probe")
        touch(probe)
        self.wait_library_list(probe)  # one entry: the probe's season
        t0 = time.monotonic()
        for k in range(100):
            payload, _ = self.lidarr("Artist %d" % k, 1000 if k < 99 else 999)
            body = json.dumps(payload).encode()
            r = self.daemon.request("POST", "/webhook/lidarr", body=body, timeout=120,
                                    headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 202, r)
        note("queued 100000 folders in %.1f s" % (time.monotonic() - t0))
        auth = (MANUAL_USER, MANUAL_PASS)
        depth = self.daemon.get("/api/queue?limit=1", auth=auth).json()["depth"]
        self.assertEqual(depth, 100000)
        payload, _ = self.lidarr("One Too Many", 1)
        r = self.daemon.webhook("lidarr", payload)
        self.assertEqual(r.status, 503, r)
        self.assertEqual((r.json() or {}).get("status"), "queue_full", r)
        self.assertTrue(self.log_lines_matching(r"queue full \(MAX_PENDING=100000\)"))
        self.assertServing()

    def test_connection_limit_closes_the_oldest_header_phase_connection(self):
        self.start_daemon(MAX_CONNECTIONS="50", HEADER_TIMEOUT="60s")
        conns = []
        try:
            for i in range(60):
                c = Conn(self.daemon.port)
                c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                conns.append(c)
                time.sleep(0.01)  # accept order = age order
            f, folder = self.season("Limit Show")
            r = self.daemon.webhook("sonarr", self.sonarr_for(f))
            self.assertWebhookAccepted(r, ("queued", "unresolved"))
            # the oldest were closed to make room, the newest are still open
            closed = [i for i, c in enumerate(conns) if c.closed_by_peer(0.2)]
            self.assertGreaterEqual(len(closed), 10, closed)
            self.assertEqual(closed[:10], list(range(10)), closed)
            self.assertNotIn(59, closed)
            self.assertTrue(self.log_lines_matching(r"connections open \(limit 50\)"))
            self.assertTrue(self.wait_scans(folder), "the webhook was not scanned")
        finally:
            for c in conns:
                c.close()
        self.assertServing()

    def test_header_timeout_answers_408(self):
        self.start_daemon(HEADER_TIMEOUT="2s")
        c = Conn(self.daemon.port)
        try:
            t0 = time.monotonic()
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            resp = None
            # trickle a header byte every 0.3 s: bytes keep coming, the head never ends
            while resp is None and time.monotonic() - t0 < 20:
                try:
                    c.send(b"X")
                except OSError:
                    break
                r, _, _ = select.select([c.sock], [], [], 0.3)
                if r:
                    try:
                        resp = c.read_response()
                    except (EOFError, OSError):
                        break
            elapsed = time.monotonic() - t0
            self.assertIsNotNone(resp, "closed without an answer")
            self.assertEqual(resp.status, 408, resp)
            self.assertGreaterEqual(elapsed, 1.9)
            self.assertLess(elapsed, 10)
            self.assertTrue(c.closed_by_peer(5))
        finally:
            c.close()
        self.assertServing()

    def test_idle_timeout_closes_quiet_connections_and_stalled_bodies(self):
        self.start_daemon(IDLE_TIMEOUT="2s")
        quiet = Conn(self.daemon.port)
        keep = Conn(self.daemon.port)
        stalled = Conn(self.daemon.port)
        try:
            t0 = time.monotonic()
            keep.send(request_bytes("GET", "/health"))
            self.assertEqual(keep.read_response().status, 200)
            stalled.send(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"application/json\r\nContent-Length: 100\r\n\r\n{\"a\"")
            self.assertTrue(quiet.closed_by_peer(15), "a silent connection stayed open")
            self.assertGreaterEqual(time.monotonic() - t0, 1.9)
            self.assertTrue(keep.closed_by_peer(15), "an idle keep-alive connection stayed open")
            resp = stalled.read_response()
            self.assertEqual(resp.status, 408, resp)
            self.assertLess(time.monotonic() - t0, 15)
        finally:
            for c in (quiet, keep, stalled):
                c.close()
        self.assertServing()

    def test_open_file_limit_is_raised_to_the_hard_limit(self):
        self.start_daemon()
        with open("/proc/%d/limits" % self.daemon.proc.pid) as f:
            line = next(ln for ln in f if ln.startswith("Max open files"))
        soft, hard = line.split()[3:5]
        self.assertEqual(soft, hard, line)
        self.assertTrue(self.log_lines_matching(r"open file limit"))


# ---------------------------------------------------------------------------------------------
# 2. slow and hostile clients

class SlowClientsTest(HostileCase):
    def test_thousand_slowloris_connections_do_not_delay_a_webhook(self):
        header_timeout = 15.0
        self.start_daemon(HEADER_TIMEOUT="%ds" % header_timeout, WEBHOOK_DELAY="0")
        f, folder = self.season("Slow Show")
        payload = self.sonarr_for(f)
        socks = []
        try:
            t_open = time.monotonic()
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                s.sendall(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\n")
                socks.append(s)
            note("1000 half-open connections in %.2f s" % (time.monotonic() - t_open))
            for s in socks[:50]:  # and trickle a little
                s.sendall(b"X-T: 1\r\n")
            t0 = time.monotonic()
            r = self.daemon.webhook("sonarr", payload)
            latency = time.monotonic() - t0
            note("webhook answered in %.1f ms with 1000 slowloris connections open"
                 % (latency * 1000))
            self.assertWebhookAccepted(r, ("queued", "unresolved"))
            self.assertLess(latency, 2.0, "answered only after %.2f s" % latency)
            self.assertLess(time.monotonic() - t_open, header_timeout,
                            "precondition: the slow connections must still be open")
            self.assertTrue(self.wait_scans(folder), "the webhook was not scanned")
            # every slow connection is cut at the header timeout (408, then close)
            sel = selectors.DefaultSelector()  # select() cannot watch fds past 1023
            for i, s in enumerate(socks):
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ, i)
            pending = set(range(len(socks)))
            got_408 = 0
            deadline = t_open + header_timeout + 30
            while pending and time.monotonic() < deadline:
                for key, _ in sel.select(0.5):
                    try:
                        data = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if data.startswith(b"HTTP/1.1 408"):
                        got_408 += 1
                    sel.unregister(key.fileobj)
                    pending.discard(key.data)
            sel.close()
            cut_after = time.monotonic() - t_open
            note("the 1000 slow connections were cut %.1f s after they opened (HEADER_TIMEOUT=%ds)"
                 % (cut_after, header_timeout))
            self.assertFalse(pending, "%d connections were not cut at the header timeout"
                             % len(pending))
            self.assertGreater(got_408, 900, "only %d answered 408" % got_408)
        finally:
            for s in socks:
                s.close()
        self.assertServing()

    def test_tls_client_hello_gets_400_or_a_close(self):
        self.start_daemon()
        hello = bytes.fromhex(
            "16030100c4010000c00303" + "ab" * 32 + "20" + "cd" * 32 +
            "0008130213031301c02f0100006f000000140012000010706c65782e6578616d706c652e636f6d"
            "000b000403000102000a000c000a001d0017001e00190018002300000016000000170000000d"
            "001e001c040305030603080708080809080a080b080408050806040105010601002b0003020304"
            "002d00020101")
        resp, raw, closed = exchange(self.daemon.port, hello, timeout=10, wait_close=True)
        self.assertTrue(closed, "the connection stayed open after a TLS hello")
        if raw:
            self.assertIsNotNone(resp, raw[:100])
            self.assertEqual(resp.status, 400, resp)
        self.assertServing()

    def test_absolute_form_targets_are_served_like_their_path(self):
        # RFC 9112 3.2.2: a server accepts "GET http://host/path"; the path is what routes.
        self.start_daemon()
        port = self.daemon.port
        auth = basic_auth(MANUAL_USER, MANUAL_PASS)
        cases = [("http://127.0.0.1:%d/health" % port, {}, 200),
                 ("HTTP://example.org/health?strict=0", {}, 200),
                 ("http://127.0.0.1:%d/api/queue?limit=1" % port, {"Authorization": auth}, 200),
                 ("http://127.0.0.1:%d" % port, {}, 401),  # no path: "/", the page, which asks
                 ("https://127.0.0.1:%d/no/such/page" % port, {}, 404)]
        c = Conn(port)
        try:
            for target, headers, want in cases:
                with self.subTest(target=target):
                    c.send(request_bytes("GET", target, headers=headers))
                    self.assertEqual(c.read_response().status, want)
        finally:
            c.close()
        self.assertServing()

    def test_pipelined_requests_are_answered_in_order(self):
        self.start_daemon()
        auth = basic_auth(MANUAL_USER, MANUAL_PASS)
        batch = (request_bytes("GET", "/health") +
                 request_bytes("GET", "/no/such/page") +
                 request_bytes("GET", "/api/queue") +
                 request_bytes("GET", "/api/queue?limit=1", headers={"Authorization": auth}) +
                 request_bytes("POST", "/webhook/sonarr", b"{}",
                               {"Content-Type": "text/plain"}) +
                 request_bytes("GET", "/metrics"))
        c = Conn(self.daemon.port)
        try:
            c.send(batch)
            statuses = [c.read_response().status for _ in range(6)]
        finally:
            c.close()
        self.assertEqual(statuses, [200, 404, 401, 200, 415, 200])
        self.assertServing()

    def test_a_thousand_pipelined_webhooks_are_answered_in_order_at_once(self):
        # One write of 1,000 webhooks on one connection. Each one after the first is parsed from
        # bytes the daemon already read, when the previous answer goes out: it must reach the
        # group commit in the same breath, not when something else wakes the loop (that was a
        # minute per webhook). WEBHOOK_DELAY keeps every folder queued for the count below.
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="2h")
        n = 1000
        batch = b"".join(
            request_bytes("POST", "/webhook/sonarr",
                          json.dumps(self.sonarr_for(self.show_file("Piped %04d" % i))).encode(),
                          {"Content-Type": "application/json"})
            for i in range(n))
        c = Conn(self.daemon.port, timeout=30)
        t0 = time.monotonic()
        try:
            c.send(batch)
            statuses = [c.read_response().status for _ in range(n)]
        finally:
            c.close()
        elapsed = time.monotonic() - t0
        self.assertEqual(statuses, [202] * n)
        # Generous for a sanitizer build on a busy machine; the stall this guards against was
        # 60 s per webhook after the fourth.
        self.assertLess(elapsed, 30, "1,000 pipelined webhooks took %.1f s" % elapsed)
        q = self.daemon.get("/api/queue?limit=1", auth=(MANUAL_USER, MANUAL_PASS)).json()
        self.assertEqual(q["depth"], n)
        self.assertServing()

    def test_a_full_queue_still_takes_events_that_add_no_entry(self):
        # MAX_PENDING's least value is 100,000: fill it with manual scans (pipelined, without
        # Plex so that every folder waits unresolved and nothing is scanned), then an event for a
        # queued folder and one below it must still be taken; only a new folder is refused.
        n = 100000
        self.start_daemon(PLEX_URL=None, PLEX_TOKEN=None, MAX_PENDING=str(n), LOG_LEVEL="warn",
                          WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="2h")
        auth = basic_auth(MANUAL_USER, MANUAL_PASS)
        head = {"Content-Type": "application/json", "Authorization": auth}
        tv = self.tv
        per_conn = 25000
        for start in range(0, n, per_conn):
            batch = b"".join(
                request_bytes("POST", "/api/scans",
                              json.dumps({"path": "%s/Full %06d" % (tv, i)}).encode(), head)
                for i in range(start, start + per_conn))
            c = Conn(self.daemon.port, timeout=120)
            try:
                c.send(batch)
                statuses = {c.read_response().status for _ in range(per_conn)}
            finally:
                c.close()
            self.assertEqual(statuses, {202})
        q = self.daemon.get("/api/queue?limit=1", auth=(MANUAL_USER, MANUAL_PASS)).json()
        self.assertEqual(q["depth"], n)
        # The folder itself, and a folder below it, merge: accepted.
        same = rig.sonarr_download("%s/Full %06d" % (tv, 7), "Season 01/e1.mkv", title="Full 7")
        self.assertEqual(self.daemon.webhook("sonarr", same).status, 202)
        # A new folder would make entry 100,001: refused, and said why.
        new = rig.sonarr_download("%s/Brand New" % tv, "Season 01/e1.mkv", title="Brand New")
        r = self.daemon.webhook("sonarr", new)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["status"], "queue_full")
        q = self.daemon.get("/api/queue?limit=1", auth=(MANUAL_USER, MANUAL_PASS)).json()
        self.assertEqual(q["depth"], n)
        self.assertServing()

    def test_a_body_that_trickles_is_cut_off(self):
        # The idle timeout bounds the gap between bytes, not the body: one byte every few seconds
        # would hold a connection for days. Past the header timeout's grace, a body must average
        # 1 KiB/s.
        self.start_daemon(HEADER_TIMEOUT="1s", IDLE_TIMEOUT="60s")
        c = Conn(self.daemon.port, timeout=15)
        try:
            c.send(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100000\r\n\r\n{\"eventType\"")
            time.sleep(2.5)  # the condition is time itself: past the 1 s grace at under 1 KiB/s
            c.send(b":")
            r = c.read_response()
            self.assertEqual(r.status, 408, r)
            self.assertTrue(c.closed_by_peer(5), "the connection stayed open after the 408")
        finally:
            c.close()
        self.assertTrue(wait_until(lambda: self.daemon.log_matches(r"under 1024 bytes/s: answering 408"), 10),
                        self.daemon.log_tail(10))
        self.assertServing()

    def test_connections_stuck_in_their_body_make_room_for_new_ones(self):
        # Every slot held by a body that never comes (the attack on MAX_CONNECTIONS, scaled down):
        # a new client still gets in, the slowest body giving up its slot.
        limit = 64
        self.start_daemon(MAX_CONNECTIONS=str(limit), IDLE_TIMEOUT="60s")
        stuck = []
        try:
            for _ in range(limit):
                s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                s.sendall(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                          b"\r\nContent-Length: 16777216\r\n\r\n{")
                stuck.append(s)
            time.sleep(0.5)  # past the 250 ms grace a new body gets before it can be evicted
            t0 = time.monotonic()
            h = self.daemon.get("/health")
            self.assertEqual(h.status, 200, h)
            f = self.show_file("Room Show")
            touch(f)
            r = self.daemon.webhook("sonarr", self.sonarr_for(f))
            self.assertEqual(r.status, 202, r)
            self.assertLess(time.monotonic() - t0, 5)
        finally:
            for s in stuck:
                s.close()
        self.assertServing()

    def test_a_webhook_without_credentials_is_refused_before_its_body(self):
        self.start_daemon(WEBHOOK_USER="sonarr", WEBHOOK_PASS="secret")
        body = json.dumps(self.sonarr_for(self.show_file("Early Show"))).encode()
        head = ("POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Expect: 100-continue\r\nContent-Length: %d\r\n" % len(body))
        c = Conn(self.daemon.port)
        try:
            c.send(head.encode() + b"\r\n")  # no body yet: the answer must come without it
            r = c.read_response()
            self.assertEqual(r.status, 401, r)
            self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
        finally:
            c.close()
        # with credentials: "100 Continue", then the webhook is taken
        c = Conn(self.daemon.port)
        try:
            auth = basic_auth("sonarr", "secret")
            c.send(head.encode() + ("Authorization: %s\r\n\r\n" % auth).encode())
            cont = c.read_response()
            self.assertEqual(cont.status, 100, cont)
            c.send(body)
            self.assertEqual(c.read_response().status, 202)
        finally:
            c.close()
        self.assertServing()

    def test_a_webhook_with_wrong_credentials_is_refused_before_its_body(self):
        # A 16 MiB body announced, "Expect: 100-continue": the 401 comes instead of the 100, and
        # the connection closes, so not a byte of the body is sent. The right password (as UTF-8
        # or as ISO-8859-1 bytes) still gets its "100 Continue".
        password = "p\u00e4ssw\u00f6rd-Qp3v"
        self.start_daemon(WEBHOOK_USER="sonarr", WEBHOOK_PASS=password)
        head = ("POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Expect: 100-continue\r\nContent-Length: %d\r\nAuthorization: %s\r\n\r\n")
        took = []
        for wrong in ("wrong", password.upper()):
            c = Conn(self.daemon.port)
            try:
                t0 = time.monotonic()
                c.send((head % (16 << 20, basic_auth("sonarr", wrong))).encode())
                r = c.read_response()
                took.append(time.monotonic() - t0)
                self.assertEqual(r.status, 401, r)
                self.assertIn("basic", r.headers.get("www-authenticate", "").lower())
                self.assertTrue(c.closed_by_peer(5), "the connection stayed open after the 401")
            finally:
                c.close()
        # refused as any failed login: the second one from this address waits for its answer
        self.assertGreaterEqual(took[1], 0.2, took)
        self.assertEqual(len(self.log_lines_matching(r"webhook from .* refused: bad or missing credentials")), 2)

        for encoding in ("utf-8", "latin-1"):
            body = json.dumps(self.sonarr_for(self.show_file("Right %s" % encoding))).encode()
            c = Conn(self.daemon.port)
            try:
                c.send((head % (len(body), basic_auth("sonarr", password, encoding))).encode())
                cont = c.read_response()
                self.assertEqual(cont.status, 100, (encoding, cont))
                c.send(body)
                r = c.read_response()
                self.assertEqual(r.status, 202, (encoding, r))
            finally:
                c.close()
        self.assertServing()

    def test_a_client_that_never_reads_does_not_grow_memory(self):
        # Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) before
        # reuse, which would read as growth: keep it small (a plain build ignores the variable).
        asan = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=4"
        try:
            self.start_daemon(IDLE_TIMEOUT="60s")
        finally:
            if asan is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = asan
        pid = self.daemon.proc.pid
        for _ in range(20):  # warm up allocator arenas with ordinary traffic
            self.assertIn(self.daemon.get("/static/app.js").status, (200, 404))
        base = vm_rss_kib(pid)
        one = request_bytes("GET", "/static/app.js") + request_bytes("GET", "/metrics")
        conns = []
        pushed = 0
        try:
            for _ in range(40):
                s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.setblocking(False)
                conns.append(s)
            # push pipelined requests and never read: the daemon must stop reading once its
            # answers are not taken, so the bytes pile up in the kernel, not in the daemon
            t_end = time.monotonic() + 8
            while time.monotonic() < t_end:
                progress = False
                for s in conns:
                    try:
                        pushed += s.send(one * 64)
                        progress = True
                    except (BlockingIOError, InterruptedError):
                        pass
                if not progress:
                    time.sleep(0.05)
            peak = vm_rss_kib(pid)
            note("never-reading clients: pushed %.1f MB, daemon RSS %d -> %d KiB"
                 % (pushed / 1e6, base, peak))
            self.assertLess(peak - base, 40 * 1024,
                            "RSS grew by %d KiB for %.1f MB of unread pipelined requests"
                            % (peak - base, pushed / 1e6))
            self.assertServing("while clients do not read")
        finally:
            for s in conns:
                s.close()
        self.assertServing()


# ---------------------------------------------------------------------------------------------
# the bad-request corpus

class BodyFloodTest(HostileCase):
    """The slow-body attack at full scale, with the default MAX_CONNECTIONS=4096: every slot is
    held by a webhook head announcing a 16 MiB body that trickles one byte every 20 s. /health
    and a real webhook must still be answered, a slow body giving up its slot to each. The
    times are reported (the bound asserted is generous; the figures are in test/README.md)."""
    CONNECTIONS = 4096  # the default MAX_CONNECTIONS
    TRICKLE_S = 20.0

    def open_flood(self, n):
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.daemon.port), timeout=10)
            s.sendall(b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 16777216\r\n\r\n{")
            s.setblocking(False)
            socks.append(s)
        return socks

    @staticmethod
    def still_open(socks):
        """How many the daemon has not closed (nothing to read, no EOF)."""
        n = 0
        for s in socks:
            try:
                data = s.recv(65536)
            except BlockingIOError:
                n += 1
                continue
            except OSError:
                continue
            n += 0 if not data or data.startswith(b"HTTP/") else 1
        return n

    def test_4096_trickling_bodies_leave_health_and_a_webhook_answered(self):
        n = self.CONNECTIONS
        need = n + 512  # the flood, the rig's own sockets and files
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < need:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below the %d this test needs"
                          % (hard, need))
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        f = self.show_file("Flood Show")
        touch(f)
        payload = self.sonarr_for(f)
        stop = threading.Event()
        socks = []
        try:
            t_open = time.monotonic()
            socks = self.open_flood(n)
            opened = time.monotonic() - t_open

            def trickle():
                while not stop.wait(self.TRICKLE_S):
                    for s in socks:
                        try:
                            s.send(b" ")
                        except OSError:
                            pass
            trickler = threading.Thread(target=trickle, daemon=True)
            trickler.start()
            # every body past its first second, so each has a rate to be judged by (and past
            # the 250 ms an accepted connection has before it can be evicted)
            time.sleep(1.5)
            self.assertEqual(self.still_open(socks), n, "precondition: every slot held")

            t0 = time.monotonic()
            h = self.daemon.get("/health", timeout=30)
            t_health = time.monotonic() - t0
            t0 = time.monotonic()
            r = self.daemon.webhook("sonarr", payload)
            t_webhook = time.monotonic() - t0
            held = self.still_open(socks)
            note("%d connections opened in %.2f s; with them open, /health answered in %.1f ms "
                 "and a webhook in %.1f ms; %d still open after" % (
                     n, opened, t_health * 1000, t_webhook * 1000, held))
            self.assertEqual(h.status, 200, h)
            self.assertWebhookAccepted(r, ("queued",))
            self.assertLess(t_health, 2.0, "/health answered only after %.2f s" % t_health)
            self.assertLess(t_webhook, 2.0, "the webhook answered only after %.2f s" % t_webhook)
            self.assertGreaterEqual(held, n - 8, "more bodies evicted than requests came")
            self.assertLess(time.monotonic() - t_open, self.TRICKLE_S,
                            "precondition: measured before the first trickled byte")
        finally:
            stop.set()
            for s in socks:
                s.close()
        self.assertTrue(wait_until(self.health_ok, 30))
        self.assertServing()


class BadRequestCorpusTest(HostileCase):
    def test_bad_requests_get_the_expected_answer_and_the_daemon_keeps_serving(self):
        self.start_daemon(MAX_HEADER_BYTES="4096")
        auth = basic_auth(MANUAL_USER, MANUAL_PASS)
        js = {"Content-Type": "application/json"}
        show = os.path.join(self.tv, "Show")

        def hook(payload):
            return request_bytes("POST", "/webhook/sonarr", payload, js)

        def sonarr(series_path, rel="Season 01/x.mkv"):
            return json.dumps(rig.sonarr_download(series_path, rel)).encode()

        def manual(path):
            return request_bytes("POST", "/webhook/manual",
                                 b"path=" + urllib.parse.quote_from_bytes(path).encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded",
                                  "Authorization": auth})

        CLOSE = "close"  # closed without an answer
        corpus = [
            # truncated requests (the peer half-closes)
            ("truncated request line", b"GET /hea", {CLOSE}, True),
            ("truncated headers", b"GET /health HTTP/1.1\r\nHost: x\r\n", {CLOSE}, True),
            ("truncated body", request_bytes("POST", "/webhook/sonarr", b"{}" * 50, js)[:-60],
             {CLOSE}, True),
            # malformed HTTP
            ("garbage", b"\x00\x01\x02\x03 hello\r\n\r\n", {400}, False),
            ("NUL in the request line", b"GET /hea\x00lth HTTP/1.1\r\nHost: x\r\n\r\n", {400},
             False),
            ("bare CR in a header", b"GET /health HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", {400}, False),
            ("header without colon", b"GET /health HTTP/1.1\r\nHost x\r\n\r\n", {400}, False),
            ("space before colon", b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n", {400}, False),
            ("obsolete line folding", b"GET /health HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
             {400}, False),
            ("Transfer-Encoding with a space", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{}", {400}, False),
            ("control byte in a header", b"GET /health HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n",
             {400}, False),
            ("bad version", b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", {400, 505}, False),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 505, CLOSE}, False),
            ("unknown method", b"FOO /health HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405, 501},
             False),
            ("Content-Length and chunked", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", {400}, False),
            ("two Content-Lengths", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", {400}, False),
            ("negative Content-Length", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: -1\r\n\r\n", {400}, False),
            ("bad chunk size", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:"
             b" chunked\r\n\r\nzz\r\n", {400}, False),
            ("huge chunk size", b"POST /webhook/sonarr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:"
             b" chunked\r\n\r\nffffffffffffffffff\r\n", {400, 413}, False),
            ("oversized header", request_bytes("GET", "/health", headers={"X": "a" * 5000}),
             {431}, False),
            ("oversized URL", request_bytes("GET", "/" + "a" * 5000), {431, 414}, False),
            # bodies
            ("invalid JSON", hook(b'{"eventType": '), {400}, False),
            ("empty body", hook(b""), {400}, False),
            ("JSON array", hook(b"[1, 2]"), {400}, False),
            ("invalid UTF-8", hook(b'{"eventType": "Download", "series": {"path": "/tv/\xff\xfe"'
                                   b'}, "episodeFile": {"relativePath": "a.mkv"}}'), {400}, False),
            ("wrong types", hook(b'{"eventType": 5, "series": {"path": 7}}'), {400}, False),
            ("path as object", hook(b'{"eventType": "Download", "series": {"path": {"a": 1}}, '
                                    b'"episodeFile": {"relativePath": "a.mkv"}}'), {400}, False),
            ("'..' in a path", hook(sonarr(os.path.join(show, "..", "..", "etc"))), {400}, False),
            ("'..' in a relative path", hook(sonarr(show, "../../../../etc/passwd")), {400}, False),
            ("NUL in a path (\\u0000)", hook(sonarr(show + "\u0000x")), {400}, False),
            ("raw NUL in the body", hook(sonarr(show).replace(b"Season 01", b"Season\x0001")),
             {400}, False),
            ("CR/LF in a path", hook(sonarr(show + "\r\nInjected: 1")), {400}, False),
            ("relative path", hook(sonarr("tv/Show")), {400}, False),
            ("deep nesting", hook(b"[" * 100 + b"]" * 100), {400}, False),
            ("wrong content type", request_bytes("POST", "/webhook/sonarr", sonarr(show),
                                                 {"Content-Type": "text/plain"}), {415}, False),
            # manual trigger and API
            ("manual: NUL", manual(show.encode() + b"\x00"), {400}, False),
            ("manual: CR/LF", manual(show.encode() + b"\r\nX: y"), {400}, False),
            ("manual: '..'", manual(show.encode() + b"/../../etc"), {400}, False),
            ("manual: invalid UTF-8", manual(show.encode() + b"/\xff"), {400}, False),
            ("API: scans with NUL", request_bytes("POST", "/api/scans",
                                                  b'{"path": "/tv/a\\u0000b"}',
                                                  {"Content-Type": "application/json",
                                                   "Authorization": auth}), {400}, False),
            ("API: resolve with bad escape", request_bytes(
                "GET", "/api/resolve?path=%zz", headers={"Authorization": auth}), {400}, False),
            ("API: retry with a bad id", request_bytes(
                "POST", "/api/queue/abc/retry", headers={"Authorization": auth}), {404}, False),
            # static files: traversal in every spelling
            ("static: ..", request_bytes("GET", "/static/../../../etc/passwd"), {400, 404}, False),
            ("static: %2e%2e", request_bytes("GET", "/static/%2e%2e/%2e%2e/etc/passwd"),
             {400, 404}, False),
            ("static: ..%2f", request_bytes("GET", "/static/..%2f..%2f..%2fetc%2fpasswd"),
             {400, 404}, False),
            ("static: %00", request_bytes("GET", "/static/app.js%00.png"), {400, 404}, False),
            ("static: backslash", request_bytes("GET", "/static/..\\..\\etc\\passwd"),
             {400, 404}, False),
            ("static: absolute", request_bytes("GET", "/static//etc/passwd"), {400, 404}, False),
            ("static: CR/LF", request_bytes("GET", "/static/%0d%0aX:%20y"), {400, 404}, False),
            ("static: overlong UTF-8 dot", request_bytes("GET", "/static/%c0%ae%c0%ae/etc/passwd"),
             {400, 404}, False),
        ]
        failures = []
        for name, data, expected, shut_wr in corpus:
            resp, raw, closed = exchange(self.daemon.port, data, timeout=10, shut_wr=shut_wr)
            got = resp.status if resp is not None else (CLOSE if closed else "open")
            if got not in expected:
                failures.append("%s: expected %s, got %s (%r)" % (name, sorted(map(str, expected)),
                                                                  got, raw[:160]))
            if resp is not None and resp.status == 200:
                failures.append("%s: answered 200" % name)
            if b"root:" in raw:
                failures.append("%s: served a file outside web/" % name)
            if not self.health_ok():
                failures.append("%s: the daemon stopped serving" % name)
                break
        self.assertEqual(failures, [], "\n".join(failures))
        self.assertServing()


    def test_a_header_value_split_between_reads_at_a_space_is_not_a_fold(self):
        self.start_daemon()
        c = Conn(self.daemon.port)
        try:
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Split: a")
            self.assertFalse(c.closed_by_peer(0.3))
            c.send(b" b\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
            c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n")
            self.assertFalse(c.closed_by_peer(0.3))
            c.send(b" b\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        finally:
            c.close()


# ---------------------------------------------------------------------------------------------
# 4. auth

class AuthTest(HostileCase):
    def auth_env(self, **kw):
        env = dict(WEBHOOK_USER=WEBHOOK_USER, WEBHOOK_PASS=WEBHOOK_PASS)
        env.update(kw)
        return env

    def timed_webhook(self, payload, password, headers=None):
        t0 = time.monotonic()
        r = self.daemon.webhook("sonarr", payload, auth=(WEBHOOK_USER, password)
                                if password is not None else None, headers=headers)
        return r, time.monotonic() - t0

    def test_failed_logins_are_delayed_per_address_and_the_right_password_never(self):
        self.start_daemon(**self.auth_env(WEBHOOK_DELAY="0"))
        f, folder = self.season("Auth Show")
        payload = self.sonarr_for(f)
        # no credentials at all (a browser's first try) is answered at once and is no failure
        for _ in range(3):
            r, t = self.timed_webhook(payload, None)
            self.assertEqual(r.status, 401)
            self.assertLess(t, 0.2)
        times = []
        for i in range(6):
            r, t = self.timed_webhook(payload, "wrong-%d" % i)
            self.assertEqual(r.status, 401, r)
            self.assertRegex(r.headers.get("WWW-Authenticate", ""), r"(?i)^basic\b")
            times.append(t)
        note("failed login delays: %s" % ", ".join("%.2f" % t for t in times))
        self.assertLess(times[0], 0.2)
        for i, want in enumerate([0.25, 0.5, 1.0, 2.0, 4.0], start=1):
            self.assertGreaterEqual(times[i], want - 0.05, times)
            self.assertLess(times[i], want + 1.5, times)
        # the right credentials from the same address: at once
        r, t = self.timed_webhook(payload, WEBHOOK_PASS)
        self.assertWebhookAccepted(r, ("queued", "unresolved"))
        self.assertLess(t, 0.5)
        self.assertTrue(self.wait_scans(folder))
        # the manual UI shares the table (same address)
        t0 = time.monotonic()
        r = self.daemon.get("/api/queue", auth=(MANUAL_USER, "nope"))
        self.assertEqual(r.status, 401)
        self.assertGreaterEqual(time.monotonic() - t0, 4.5)
        # nothing secret in the log
        log = self.daemon.log()
        for secret in [WEBHOOK_PASS, MANUAL_PASS, PLEX_TOKEN] + ["wrong-%d" % i for i in range(6)]:
            self.assertNotIn(secret, log)

    def test_a_flood_of_failures_cannot_lock_sonarr_out(self):
        # 14 clients keep failing; each failure now waits 5 s and holds its connection, and 12
        # connections are all the daemon takes: without the held ones being closable first,
        # every slot would be taken by a client waiting for its 401.
        self.start_daemon(**self.auth_env(WEBHOOK_DELAY="0", MAX_CONNECTIONS="12"))
        f, folder = self.season("Flood Show")
        payload = self.sonarr_for(f)
        for i in range(7):  # from now on each failure waits 5 s
            self.timed_webhook(payload, "bad")
        stop = threading.Event()
        results = []

        def flood():
            while not stop.is_set():
                try:
                    r, _ = self.timed_webhook(payload, "bad")
                    results.append(r.status)
                except OSError:
                    results.append("closed")

        threads = [threading.Thread(target=flood, daemon=True) for _ in range(14)]
        for t in threads:
            t.start()
        try:
            self.assertTrue(wait_until(lambda: self.log_lines_matching(
                r"connections open \(limit 12\)"), 30), "the flood never filled the daemon")
            r, t = self.timed_webhook(payload, WEBHOOK_PASS)
            note("right password during a flood of 14 failing clients: %.1f ms" % (t * 1000))
            self.assertWebhookAccepted(r, ("queued", "unresolved"))
            self.assertLess(t, 1.0)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertTrue(self.wait_scans(folder))
        self.assertTrue(all(s in (401, 429, "closed") for s in results), set(results))
        self.assertServing()

    def test_forwarded_for_is_believed_only_from_trusted_proxies(self):
        self.start_daemon(**self.auth_env())
        payload = load_fixture("sonarr-test")
        # not trusted: every failure counts against 127.0.0.1 whatever the header says
        times = [self.timed_webhook(payload, "bad", {"X-Forwarded-For": "198.51.100.%d" % i})[1]
                 for i in range(4)]
        self.assertGreaterEqual(times[3], 0.9, times)
        self._stop_daemon()
        self.start_daemon(**self.auth_env(TRUSTED_PROXIES="10.9.8.7, 127.0.0.0/8"))
        # trusted: each forwarded client has its own count
        times = [self.timed_webhook(payload, "bad", {"X-Forwarded-For": "198.51.100.%d" % i})[1]
                 for i in range(5)]
        self.assertTrue(all(t < 0.2 for t in times), times)
        # one client's failures add up, whatever the trusted proxies in between
        times = [self.timed_webhook(payload, "bad", {"X-Forwarded-For": "203.0.113.9, 10.9.8.7"})[1]
                 for _ in range(4)]
        self.assertGreaterEqual(times[3], 0.9, times)
        r, t = self.timed_webhook(payload, WEBHOOK_PASS, {"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(r.status, 200, r)
        self.assertLess(t, 0.5)

    def test_stopping_while_failed_logins_wait_exits_cleanly(self):
        self.start_daemon(**self.auth_env())
        payload = load_fixture("sonarr-test")
        for _ in range(7):
            self.timed_webhook(payload, "bad")
        answers = []

        def fail_once():
            try:
                answers.append(self.timed_webhook(payload, "bad")[0].status)
            except OSError:
                answers.append("closed")

        threads = [threading.Thread(target=fail_once, daemon=True) for _ in range(5)]
        for t in threads:
            t.start()
        self.assertTrue(wait_until(lambda: len(self.log_lines_matching(
            r"auth: failure \d+ from 127\.0\.0\.1: answering in 5000 ms")) >= 6, 20))
        t0 = time.monotonic()
        self.assertEqual(self.daemon.stop(), 0)
        # the held answers do not hold the exit up for their whole delay
        self.assertLess(time.monotonic() - t0, 4.0)
        for t in threads:
            t.join(10)
        self.assertEqual(len(answers), 5)

    def test_health_and_metrics_expose_no_secret(self):
        rc = RcloneDouble(mode="auth", user="rcuser", password="rclone-secret-Hh7").start()
        self.addCleanup(rc.stop)
        self.start_daemon(**self.auth_env(USE_RCLONE="true", RCLONE_RC_URL=rc.url,
                                          RCLONE_MOUNT_ROOT=self.media, RCLONE_RC_USER="rcuser",
                                          RCLONE_RC_PASS="rclone-secret-Hh7"))
        secrets = [WEBHOOK_PASS, MANUAL_PASS, PLEX_TOKEN, "rclone-secret-Hh7"]
        for target in ("/health", "/metrics"):
            r = self.daemon.get(target)
            self.assertEqual(r.status, 200, r)
            for s in secrets:
                self.assertNotIn(s.encode(), r.body, "%s shows a secret" % target)
        r = self.daemon.get("/api/stats", auth=(MANUAL_USER, MANUAL_PASS))
        for s in secrets:
            self.assertNotIn(s.encode(), r.body, "/api/stats shows a secret")
        for s in secrets:
            self.assertNotIn(s, self.daemon.log(), "the log shows a secret")


# ---------------------------------------------------------------------------------------------
# 3. upstream faults

class UpstreamCase(HostileCase):
    def map_env(self):
        # Plex's library list may be unreachable in these tests: map the paths without it
        return {"SECTION_MAPPING": json.dumps({self.tv: 1, self.movies: 2}),
                "WEBHOOK_DELAY": "0", "RETRY_MAX_DELAY": "2s", "PLEX_TIMEOUT": "2s",
                "RCLONE_TIMEOUT": "2s"}

    def queue_one(self, show="Fault Show"):
        f, folder = self.season(show)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertWebhookAccepted(r, ("queued",))
        return folder

    def assertRetried(self, folder, what, attempts=2, timeout=60):
        rx = r"sync of '%s' failed \(attempt (\d+)\): %s.*; retry in [0-9.]+ s" % (
            re.escape(folder), what)
        ok = wait_until(lambda: len(self.log_lines_matching(rx)) >= attempts, timeout, 0.2)
        self.assertTrue(ok, "no %d retries logged matching %r" % (attempts, rx))
        self.assertEqual(self.log_lines_matching(r"parked '%s'" % re.escape(folder)), [])
        return self.log_lines_matching(rx)

    def assertParked(self, folder, variable, timeout=40):
        rx = r"parked '%s': %s\b" % (re.escape(folder), re.escape(variable))
        ok = wait_until(lambda: self.log_lines_matching(rx), timeout, 0.2)
        self.assertTrue(ok, "not parked naming %s" % variable)
        lines = self.log_lines_matching(r"parked '%s'" % re.escape(folder))
        self.assertEqual(len(lines), 1, lines)
        # parked means no more attempts
        self.assertTrue(stays(lambda: len(self.log_lines_matching(
            r"parked '%s'" % re.escape(folder))) == 1, 2.5))
        entries = self.daemon.get("/api/queue?state=parked",
                                  auth=(MANUAL_USER, MANUAL_PASS)).json()["entries"]
        self.assertIn(folder, [e.get("plex_path") for e in entries])
        return lines[0]


class PlexFaultTest(UpstreamCase):
    def test_plex_that_never_answers_is_cut_at_plex_timeout_and_retried(self):
        fs = FaultServer("hang").start()
        self.addCleanup(fs.stop)
        self.start_daemon(PLEX_URL=fs.url, **self.map_env())
        folder = self.queue_one()
        self.assertRetried(folder, r"Plex: no answer from Plex \(timed out\)")
        scans = fs.requests("/refresh")
        self.assertGreaterEqual(len(scans), 2)
        self.assertGreaterEqual(scans[1][0] - scans[0][0], 1.9, "the retry came before the timeout")
        self.assertServing()

    def test_endless_answer_from_plex_is_cut_at_the_cap(self):
        fs = FaultServer("huge").start()
        self.addCleanup(fs.stop)
        self.start_daemon(PLEX_URL=fs.url, **self.map_env())
        folder = self.queue_one()
        self.assertRetried(folder, r"Plex: no answer from Plex \(answer too large\)")
        self.assertServing()

    def test_refused_connection_is_retried(self):
        port = free_port()
        self.start_daemon(PLEX_URL="http://127.0.0.1:%d" % port, **self.map_env())
        folder = self.queue_one()
        self.assertRetried(folder, r"Plex: no answer from Plex \(connection failed\)")

    def test_dns_failure_is_retried(self):
        self.start_daemon_env({"RES_OPTIONS": "timeout:1 attempts:1"},
                              PLEX_URL="http://nonexistent.invalid:32400", **self.map_env())
        folder = self.queue_one()
        self.assertRetried(folder, r"Plex: no answer from Plex \(name did not resolve\)")

    def test_tls_spoken_to_a_plain_port_parks_naming_plex_url(self):
        self.start_daemon(PLEX_URL="https://127.0.0.1:%d" % self.plex.port, **self.map_env())
        folder = self.queue_one()
        line = self.assertParked(folder, "PLEX_URL")
        self.assertRegex(line, r"TLS")
        self.assertEqual(self.plex.refreshes(), [])

    def test_redirect_is_not_followed_and_parks_naming_plex_url(self):
        fs = FaultServer("redirect", location=self.plex.url).start()
        self.addCleanup(fs.stop)
        self.start_daemon(PLEX_URL=fs.url, **self.map_env())
        folder = self.queue_one()
        line = self.assertParked(folder, "PLEX_URL")
        self.assertRegex(line, r"redirect")
        self.assertEqual(self.plex.requests(), [], "the redirect was followed")

    def test_unauthorized_parks_naming_plex_token(self):
        self.start_daemon(PLEX_TOKEN="not-the-token", **self.map_env())
        folder = self.queue_one()
        self.assertParked(folder, "PLEX_TOKEN")
        self.assertTrue(self.log_lines_matching(r"fix PLEX_TOKEN"))
        self.assertEqual(self.plex.scans(), [])


class RcloneFaultTest(UpstreamCase):
    def rclone_env(self, url, **kw):
        env = self.map_env()
        env.update(USE_RCLONE="true", RCLONE_RC_URL=url, RCLONE_MOUNT_ROOT=self.media)
        env.update(kw)
        return env

    def start_with_double(self, mode, **kw):
        rc = RcloneDouble(mode=mode, user=kw.pop("double_user", None),
                          password=kw.pop("double_pass", None)).start()
        self.addCleanup(rc.stop)
        self.start_daemon(**self.rclone_env(rc.url, **kw))
        return rc

    def test_the_double_works_when_nothing_is_wrong(self):
        rc = self.start_with_double("ok")
        folder = self.queue_one()
        self.assertTrue(self.wait_scans(folder))
        vfs = [c.path for c in rc.calls() if c.path.startswith("/vfs/")]
        self.assertEqual(vfs[:2], ["/vfs/forget", "/vfs/refresh"])

    def test_rclone_that_never_answers_is_cut_at_rclone_timeout_and_retried(self):
        rc = self.start_with_double("hang")
        folder = self.queue_one()
        self.assertRetried(folder, r"rclone: vfs/forget .*no answer from rclone \(timed out\)")
        calls = rc.calls("/vfs/forget")
        self.assertGreaterEqual(len(calls), 2)
        self.assertGreaterEqual(calls[1].time - calls[0].time, 1.9)
        self.assertEqual(self.plex.refreshes(), [], "Plex was asked before rclone answered")

    def test_endless_answer_from_rclone_is_cut_at_the_cap(self):
        self.start_with_double("huge")
        folder = self.queue_one()
        self.assertRetried(folder, r"rclone: .*no answer from rclone \(answer too large\)")
        self.assertEqual(self.plex.refreshes(), [])

    def test_refused_connection_is_retried(self):
        self.start_daemon(**self.rclone_env("http://127.0.0.1:%d" % free_port()))
        folder = self.queue_one()
        self.assertRetried(folder, r"rclone: .*no answer from rclone \(connection failed\)")

    def test_need_fs_parks_naming_rclone_fs(self):
        self.start_with_double("need_fs")
        folder = self.queue_one()
        line = self.assertParked(folder, "RCLONE_FS")
        self.assertIn("more than one VFS active", line)
        self.assertEqual(self.plex.refreshes(), [])

    def test_403_without_auth_parks_naming_the_rc_credentials(self):
        self.start_with_double("noauth_403")
        folder = self.queue_one()
        line = self.assertParked(folder, "RCLONE_RC_USER")
        self.assertIn("--rc-no-auth", line)

    def test_wrong_rc_password_parks_naming_the_rc_credentials(self):
        self.start_with_double("auth", double_user="rc", double_pass="right-pass-1",
                               RCLONE_RC_USER="rc", RCLONE_RC_PASS="wrong-pass-2")
        folder = self.queue_one()
        line = self.assertParked(folder, "RCLONE_RC_USER/RCLONE_RC_PASS")
        self.assertIn("401", line)
        self.assertNotIn("wrong-pass-2", self.daemon.log())

    def test_charset_error_parks_naming_rclone_rc_url(self):
        self.start_with_double("charset_400")
        folder = self.queue_one()
        line = self.assertParked(folder, "RCLONE_RC_URL")
        self.assertIn("charset", line)

    def test_redirect_is_not_followed_and_parks_naming_rclone_rc_url(self):
        target = RcloneDouble(mode="ok").start()
        self.addCleanup(target.stop)
        rc = RcloneDouble(mode="redirect").start()
        rc.redirect_to = target.url + "/"
        self.addCleanup(rc.stop)
        self.start_daemon(**self.rclone_env(rc.url))
        folder = self.queue_one()
        self.assertParked(folder, "RCLONE_RC_URL")
        self.assertEqual(target.calls(), [], "the redirect was followed")

    def test_tls_to_a_plain_rclone_port_parks_naming_rclone_rc_url(self):
        rc = RcloneDouble(mode="ok").start()
        self.addCleanup(rc.stop)
        self.start_daemon(**self.rclone_env("https://127.0.0.1:%d" % rc.port))
        folder = self.queue_one()
        line = self.assertParked(folder, "RCLONE_RC_URL")
        self.assertRegex(line, r"TLS")


if __name__ == "__main__":
    unittest.main()
