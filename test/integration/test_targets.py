"""Several media servers ("targets"): Plex (several), Jellyfin and Emby, each getting its scan of a
folder once, after rclone's VFS was refreshed, with one target's trouble never holding back another.

Each test starts the real binary, real rclone (`rclone serve http --rc`) and the doubles it needs
(plexdouble.py, mbdouble.py), on free ports, in its own temp dir. The daemon reaches rclone
through RcRecorder, a pass-through that records every RC call and when rclone answered it, so a
test can count rclone calls and order them against what the doubles received (all times are this
process's time.monotonic()). Outcomes are awaited by polling with generous timeouts; the only
fixed waits are quiet periods proving that something does NOT happen.

The upgrade test builds an earlier version (the last commit before targets, schema 1) from
this clone's git history with rig.previous_binary(); test_upgrade.py does the same for 0.2.0."""

import http.client
import json
import os
import re
import sqlite3
import sys
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rig
from mbdouble import parse_authorization
from rig import (MANUAL_PASS, MANUAL_USER, PLEX_TOKEN, Daemon, RigTestCase, stays,
                 target_env, touch, wait_until)

AUTH = (MANUAL_USER, MANUAL_PASS)
DB_NAME = "plex-servarr-sync.db"

# The last commit before targets (one Plex server, schema 1).
PREV_COMMIT = "e906af0e1d74a190d906d0204f3ccb65362a5394"


# ---------------------------------------------------------------------------------------------
# rclone's RC, recorded

class RcCall:
    __slots__ = ("path", "body", "sent", "answered", "status", "answer")

    def __init__(self, path, body, sent):
        self.path = path          # "/vfs/refresh", ...
        self.body = body          # the request's JSON (dict) or None
        self.sent = sent          # time.monotonic() when the request came in
        self.answered = None      # time.monotonic() when rclone's answer was back
        self.status = None
        self.answer = None        # rclone's JSON answer (dict) or None

    def __repr__(self):
        return "RcCall(%s %r -> %s %r sent=%.3f answered=%s)" % (
            self.path, self.body, self.status, self.answer, self.sent,
            "%.3f" % self.answered if self.answered is not None else None)


class _RcHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        self.server.recorder._forward(self)


class _RcServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class RcRecorder:
    """A pass-through in front of rclone's RC server that records each call (RcCall)."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._calls = []
        self._server = None
        self._thread = None

    def start(self):
        self._server = _RcServer(("127.0.0.1", 0), _RcHandler)
        self._server.recorder = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        srv, self._server = self._server, None
        if srv is not None:
            srv.shutdown()
            srv.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self._server.server_address[1]

    def calls(self, path=None):
        with self._lock:
            return [c for c in self._calls if path is None or c.path == path]

    def refreshes(self):
        return self.calls("/vfs/refresh")

    def vfs_calls(self):
        """vfs/forget and vfs/refresh calls (not the daemon's rc/noop health probes)."""
        return [c for c in self.calls() if c.path.startswith("/vfs/")]

    def _forward(self, h):
        n = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(n) if n > 0 else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        call = RcCall(h.path.split("?", 1)[0], body, time.monotonic())
        with self._lock:
            self._calls.append(call)
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() in ("content-type", "authorization")}
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            conn.request("POST", h.path, body=raw, headers=headers)
            r = conn.getresponse()
            data = r.read()
            status, ctype = r.status, r.getheader("Content-Type") or "application/json"
        except OSError as e:
            status, ctype, data = 502, "text/plain", str(e).encode()
        finally:
            conn.close()
        call.answered = time.monotonic()
        call.status = status
        try:
            call.answer = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            call.answer = None
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        except OSError:
            h.close_connection = True


# ---------------------------------------------------------------------------------------------
# the tests

@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class TargetsCase(RigTestCase):
    """The daemon talks to rclone through an RcRecorder (self.rc)."""

    def setUp(self):
        super().setUp()
        self.rc = RcRecorder(self.rclone.rc_port).start()
        self.addCleanup(self.rc.stop)

    def daemon_env(self, **overrides):
        env = super().daemon_env(**overrides)
        if "RCLONE_RC_URL" not in overrides:
            env["RCLONE_RC_URL"] = self.rc.url
        return env

    def _dump_logs_on_failure(self):
        if self._failed() and "rc" in self.__dict__:
            sys.stderr.write("--- rclone RC calls:\n%s\n"
                             % "\n".join(repr(c) for c in self.rc.calls()))
        if self._failed() and self.__dict__.get("old_daemon") is not None:
            sys.stderr.write("--- the previous version's log (last run), last 120 lines:\n%s\n"
                             % self.old_daemon.log_tail(120))
        super()._dump_logs_on_failure()

    # ---- the JSON API ----
    def api(self, target, daemon=None):
        r = (daemon or self.daemon).get(target, auth=AUTH)
        self.assertEqual(r.status, 200, "%s: %r" % (target, r))
        return r.json()

    def entry(self, path):
        """The queue entry of a folder (its arr path), or None."""
        for e in self.api("/api/queue?limit=1000")["entries"]:
            if e.get("path") == path:
                return e
        return None

    def deliveries(self, path):
        """{target name: delivery} of a folder's queue entry ({} when it is not queued)."""
        e = self.entry(path)
        return {d["target"]: d for d in (e or {}).get("deliveries", [])}

    def history(self, path):
        items = self.api("/api/history?limit=200")["items"]
        return [h for h in items if h.get("path") == path]

    def health(self):
        r = self.daemon.get("/health")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def metrics(self):
        r = self.daemon.get("/metrics")
        self.assertEqual(r.status, 200, r)
        return r.text

    def metric(self, text, name, **labels):
        """The value of the sample `name` whose labels include `labels`, or None."""
        for line in text.splitlines():
            m = re.match(r"^%s\{([^}]*)\} (\S+)$" % re.escape(name), line)
            if not m:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if all(have.get(k) == v for k, v in labels.items()):
                return float(m.group(2))
        return None

    def wait_lists(self, names, timeout=20.0):
        """Wait until the daemon has read the library list of every named target."""
        def read():
            ts = {t["name"]: t for t in self.api("/api/stats").get("targets", [])}
            return all(ts.get(n, {}).get("libraries_read_at") for n in names)
        self.assertTrue(wait_until(read, timeout, interval=0.2),
                        "library lists not read: %r" % self.api("/api/stats").get("targets"))

    # ---- folders and webhooks ----
    def new_episode(self, show, name="e01.mkv"):
        """Create <tv>/<show>/Season 01/<name>; returns (file, its folder)."""
        f = self.show_file(show, name=name)
        touch(f)
        return f, os.path.dirname(f)

    def send(self, f):
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        return self.assertWebhookAccepted(r, ("queued", "unresolved"))

    # ---- what the doubles saw ----
    @staticmethod
    def mb_scans(double, path):
        """Media/Updated requests of a Jellyfin/Emby double naming path (any answer)."""
        return [r for r in double.requests("media_updated")
                if r.updates and any(u[0] == path for u in r.updates)]

    def assertExactlyOnce(self, plexes, mbs, path, quiet=2.0):
        """Every Plex double in plexes and every Jellyfin/Emby double in mbs got exactly one scan
        request of path, and no other, over a quiet period."""
        def counts():
            return ([len(p.refreshes()) for p in plexes]
                    + [len(d.requests("media_updated")) + len(d.requests("scan_path"))
                       for d in mbs])
        self.assertTrue(stays(lambda: counts() == [1] * len(counts()), quiet),
                        "expected one scan request per target: %r" % counts())
        for p in plexes:
            self.assertEqual(p.refreshes()[0].scan_path, path.encode())
        for d in mbs:
            self.assertEqual([u[0] for u in d.updates()], [path])


class AllTargetsTest(TargetsCase):
    """A folder held by two Plex servers, a Jellyfin 12 and an Emby reaches all four."""

    def prepare_media(self):
        touch(self.show_file("Old Show"))

    def test_four_targets_each_once_after_rclone_with_the_right_requests(self):
        plex2, jf, emby = self.add_doubles("plex", "jellyfin12", "emby")
        env = self.media_servers_env([("plex-main", self.plex), ("plex-family", plex2),
                                      ("jellyfin", jf), ("emby", emby)])
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex-main", "plex-family", "jellyfin", "emby"])

        # rclone has listed tv/ and caches it: a new show is invisible until it is refreshed
        self.assertEqual(self.rclone.list_dir("tv"), {"Old Show"})
        f, folder = self.new_episode("New Show", "New Show - S01E01.mkv")
        self.assertEqual(self.rclone.list_dir("tv"), {"Old Show"},
                         "rclone re-listed by itself; the test would prove nothing")
        rel, name = self.rclone.rel(folder), os.path.basename(f)

        seen = {}  # double -> [visible through rclone's VFS when its scan request arrived]

        def watch(double, is_scan):
            seen[id(double)] = []

            def hook(rec):
                if is_scan(rec):
                    try:
                        seen[id(double)].append(self.rclone.lists(rel, name))
                    except Exception as e:  # the test fails with the reason
                        seen[id(double)].append(repr(e))
                return None
            double.hook = hook
        for p in (self.plex, plex2):
            watch(p, lambda rec: rec.route == "refresh" and rec.scan_path == folder.encode())
        for d in (jf, emby):
            watch(d, lambda rec: rec.route == "media_updated" and bool(rec.updates)
                  and rec.updates[0][0] == folder)

        self.send(f)
        self.assertTrue(self.wait_scans(folder), "plex-main got no scan")
        self.assertTrue(plex2.wait_for(lambda p: p.scans(path=folder), 30), "plex-family: none")
        self.assertTrue(self.wait_updates(jf, folder), "jellyfin got no scan")
        self.assertTrue(self.wait_updates(emby, folder), "emby got no scan")
        self.assertExactlyOnce([self.plex, plex2], [jf, emby], folder)

        # each after rclone's refresh of that folder: rclone had answered before each request
        # arrived, and the new file was listed through the VFS at that moment
        refreshed = [c for c in self.rc.refreshes()
                     if (c.body or {}).get("dir") == rel
                     and (c.answer or {}).get("result", {}).get(rel) == "OK"]
        self.assertTrue(refreshed, "no successful vfs/refresh of %r: %r" % (rel, self.rc.calls()))
        last_rc = max(c.answered for c in self.rc.vfs_calls())
        arrivals = {"plex-main": self.plex.refreshes()[0].time,
                    "plex-family": plex2.refreshes()[0].time,
                    "jellyfin": jf.requests("media_updated")[0].time,
                    "emby": emby.requests("media_updated")[0].time}
        for target, t in arrivals.items():
            self.assertGreaterEqual(t, last_rc, "%s was asked before rclone's last answer" % target)
        for double in (self.plex, plex2, jf, emby):
            self.assertEqual(seen[id(double)], [True],
                             "the new file was not visible through rclone's VFS when a "
                             "target was asked to scan")
        self.assertEqual(len(refreshed), 1, "one refresh of the folder: %r" % self.rc.calls())

        # Plex: GET /library/sections/1/refresh?path=<every byte outside unreserved escaped>
        for p in (self.plex, plex2):
            rec = p.refreshes()[0]
            self.assertEqual(rec.method, "GET")
            self.assertEqual(rec.target, "/library/sections/1/refresh?path="
                             + urllib.parse.quote(folder, safe=""))
            self.assertEqual(rec.headers.get("x-plex-token"), p.token)
            self.assertEqual(rec.status, 200)
        # Jellyfin 12: Authorization: MediaBrowser Token="..." and never a legacy form
        self.assertFalse(jf.legacy_auth_seen, [r.auth_forms for r in jf.requests()])
        for rec in jf.requests():
            self.assertEqual(rec.auth_forms, ["authorization:mediabrowser"], rec)
            scheme, params = parse_authorization(rec.headers["authorization"])
            self.assertEqual(scheme, "MediaBrowser")
            self.assertEqual(params.get("Token"), jf.token)
        # Emby: X-Emby-Token
        for rec in emby.requests():
            self.assertEqual(rec.auth_forms, ["x-emby-token"], rec)
            self.assertEqual(rec.headers.get("x-emby-token"), emby.token)
        # the body, UpdateType "Created" for an import
        for d in (jf, emby):
            rec = d.requests("media_updated")[0]
            self.assertEqual(rec.json, {"Updates": [{"Path": folder, "UpdateType": "Created"}]})
            self.assertEqual(rec.headers.get("content-type", "").split(";")[0],
                             "application/json")
            self.assertEqual(d.protocol_errors(), [])
        # the round's history row: one delivery per target, each ok
        rows = wait_until(lambda: [h for h in self.history(folder) if h["status"] == "ok"], 10)
        self.assertEqual(len(rows), 1, self.history(folder))
        got = {d["target"]: d["result"] for d in rows[0]["deliveries"]}
        self.assertEqual(got, {"plex-main": "ok", "plex-family": "ok", "jellyfin": "ok",
                               "emby": "ok"})


class OneTargetOnlyTest(TargetsCase):
    def libraries(self):
        return super().libraries() + [{"Name": "Anime", "Locations": [self.anime],
                                       "CollectionType": "tvshows"}]

    def prepare_media(self):
        self.anime = os.path.join(self.media, "anime")
        os.makedirs(self.anime)

    def test_a_folder_held_by_jellyfin_only_reaches_jellyfin_only(self):
        jf, emby = self.add_mb("jellyfin12"), self.add_mb("emby", libraries=[
            {"Name": "Shows", "Locations": [self.tv]}])
        env = self.media_servers_env([("plex", self.plex), ("jellyfin", jf), ("emby", emby)])
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin", "emby"])
        series = os.path.join(self.anime, "Some Anime")
        f = os.path.join(series, "Season 01", "ep1.mkv")
        touch(f)
        folder = os.path.dirname(f)
        r = self.daemon.webhook("sonarr", rig.sonarr_download(series, "Season 01/ep1.mkv"))
        body = self.assertWebhookAccepted(r)
        self.assertEqual([d["target"] for e in body["entries"] for d in e["deliveries"]],
                         ["jellyfin"], body)
        self.assertTrue(self.wait_updates(jf, folder), "jellyfin got no scan")
        self.assertTrue(stays(lambda: not self.plex.refreshes() and not emby.requests(
            "media_updated"), 2.0), "another target was asked: %r %r"
            % (self.plex.refreshes(), emby.requests("media_updated")))
        self.assertEqual(jf.updates(), [(folder, "Created")])


class TargetDownTest(TargetsCase):
    def test_jellyfin_down_for_a_while_gets_one_scan_when_back_and_nothing_repeats(self):
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([("plex", self.plex), ("jellyfin", jf)])
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin"])
        jf.set_down()
        f, folder = self.new_episode("Down Show")
        self.send(f)

        # Plex is done at once; Jellyfin's delivery retries, alone
        self.assertTrue(self.wait_scans(folder, timeout=15), "plex got no scan")

        def retried(n):
            d = self.deliveries(folder)
            e = self.entry(folder)
            return (e and e["attempts"] >= n and d.get("plex", {}).get("state") == "done"
                    and d.get("jellyfin", {}).get("state") == "retry")
        self.assertTrue(wait_until(lambda: retried(1), 15), self.entry(folder))
        rclone_calls = len(self.rc.vfs_calls())
        self.assertGreaterEqual(len(self.rc.refreshes()), 1)
        e = self.entry(folder)
        ds = self.deliveries(folder)
        jd = ds["jellyfin"]
        self.assertTrue(jd["error"], jd)
        self.assertEqual(jd["path"], folder)
        self.assertEqual(jd["library"], jf.libraries()[0]["ItemId"], jd)
        self.assertEqual((ds["plex"]["library"], ds["plex"]["path"], ds["plex"]["error"]),
                         ("1", folder, None), ds["plex"])
        self.assertEqual(e["state"], "retry", e)

        # what a person sees while it is down
        self.assertIn("jellyfin: not reachable", self.health()["degraded"])
        m = self.metrics()
        self.assertEqual(self.metric(m, "pss_target_up", target="jellyfin"), 0.0, m)
        self.assertEqual(self.metric(m, "pss_target_up", target="plex"), 1.0, m)
        self.assertEqual(self.metric(m, "pss_deliveries_total", target="plex", outcome="ok"), 1.0)
        self.assertGreaterEqual(
            self.metric(m, "pss_deliveries_total", target="jellyfin", outcome="failed"), 1.0)

        # down for a while: several attempts, none of them calls Plex or rclone again
        self.assertTrue(wait_until(lambda: retried(3), 30), self.entry(folder))
        self.assertEqual(len(self.plex.refreshes(path=folder)), 1)
        self.assertEqual(len(self.rc.vfs_calls()), rclone_calls, self.rc.calls())

        jf.set_up()
        self.assertTrue(self.wait_updates(jf, folder, timeout=30), "jellyfin got no scan")
        self.assertTrue(stays(lambda: len(jf.updates()) == 1
                              and len(self.plex.refreshes()) == 1
                              and len(self.rc.vfs_calls()) == rclone_calls, 2.0),
                        "something was repeated: jellyfin %r, plex %r, rclone %r"
                        % (jf.updates(), self.plex.refreshes(), self.rc.calls()))
        self.assertTrue(wait_until(lambda: self.entry(folder) is None, 10), self.entry(folder))

        # one history row for the round, counting its attempts, with each delivery's result
        rows = self.history(folder)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["status"], "ok", rows[0])
        self.assertGreaterEqual(rows[0]["attempts"], 4, rows[0])
        got = {d["target"]: d for d in rows[0]["deliveries"]}
        self.assertEqual(set(got), {"plex", "jellyfin"})
        self.assertEqual({k: d["result"] for k, d in got.items()},
                         {"plex": "ok", "jellyfin": "ok"})
        self.assertEqual(got["jellyfin"]["path"], folder)
        self.assertEqual(got["plex"]["library"], "1")
        m = self.metrics()
        self.assertEqual(self.metric(m, "pss_target_up", target="jellyfin"), 1.0, m)
        self.assertEqual(self.metric(m, "pss_deliveries_total", target="jellyfin", outcome="ok"),
                         1.0, m)
        self.assertEqual(self.metric(m, "pss_deliveries_total", target="plex", outcome="ok"), 1.0)
        self.assertNotIn("jellyfin: not reachable", self.health()["degraded"])


class TokenRefusedTest(TargetsCase):
    def test_emby_refusing_its_token_parks_emby_alone_and_resumes_by_itself(self):
        jf, emby = self.add_mb("jellyfin12"), self.add_mb("emby")
        env = dict(target_env(jf), **target_env(emby))
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin", "emby"])
        emby.refuse_auth()
        f, folder = self.new_episode("Refused Show")
        self.send(f)

        self.assertTrue(self.wait_scans(folder), "plex got no scan")
        self.assertTrue(self.wait_updates(jf, folder), "jellyfin got no scan")

        def parked():
            e = self.entry(folder)
            d = {x["target"]: x for x in (e or {}).get("deliveries", [])}
            return (e if e and e["state"] == "parked"
                    and d.get("emby", {}).get("state") == "parked" else None)
        e = wait_until(parked, 20)
        self.assertTrue(e, self.entry(folder))
        d = {x["target"]: x for x in e["deliveries"]}
        self.assertEqual(d["plex"]["state"], "done", d)
        self.assertEqual(d["jellyfin"]["state"], "done", d)
        self.assertIn("EMBY_TOKEN", d["emby"]["error"] or "", d)
        self.assertIn("EMBY_TOKEN", e.get("park_reason") or "", e)
        self.assertIn("emby: token refused (EMBY_TOKEN)", self.health()["degraded"])
        self.assertEqual(len(emby.requests("media_updated")), 1, emby.requests())

        # the token is accepted again: within about a minute (the re-probe), with nothing asked
        # of the daemon meanwhile, Emby gets its scan and nobody else is asked again
        emby.accept_auth()
        self.assertTrue(self.wait_updates(emby, folder, timeout=90),
                        "emby's delivery did not resume by itself")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1
                              and len(jf.requests("media_updated")) == 1
                              and len(emby.updates()) == 1, 2.0),
                        "repeated: plex %r, jellyfin %r, emby %r"
                        % (self.plex.refreshes(), jf.requests(), emby.requests()))
        self.assertTrue(wait_until(lambda: self.entry(folder) is None, 10), self.entry(folder))
        self.assertEqual(emby.updates(), [(folder, "Created")])
        self.assertNotIn("emby: token refused (EMBY_TOKEN)", self.health()["degraded"])


class BurstTest(TargetsCase):
    def test_25_webhooks_for_one_folder_give_one_scan_per_target(self):
        plex2, jf, emby = self.add_doubles("plex", "jellyfin12", "emby")
        env = self.media_servers_env([("plex", self.plex), ("plex2", plex2), ("jellyfin", jf),
                                      ("emby", emby)])
        # WEBHOOK_DELAY=2: the 25 requests must all land inside one window (checked below)
        self.start_daemon(WEBHOOK_DELAY="2", **env)
        self.wait_lists(["plex", "plex2", "jellyfin", "emby"])
        files = [self.show_file("Burst Show", name="Burst Show - S01E%02d.mkv" % i)
                 for i in range(1, 26)]
        for f in files:
            touch(f)
        folder = os.path.dirname(files[0])
        answers, answered_at = [None] * 25, [0.0] * 25

        def send(k):
            for i in range(k, 25, 5):
                try:
                    answers[i] = self.daemon.webhook("sonarr", self.sonarr_for(files[i]))
                except OSError as e:
                    answers[i] = e
                answered_at[i] = time.monotonic()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for a in answers:
            self.assertIsInstance(a, rig.Response, a)
            self.assertWebhookAccepted(a, ("queued",))
        self.assertTrue(self.wait_scans(folder), "plex got no scan")
        for d in (jf, emby):
            self.assertTrue(self.wait_updates(d, folder), "%s got no scan" % d.kind)
        self.assertTrue(plex2.wait_for(lambda p: p.scans(path=folder), 30), "plex2: none")
        self.assertLess(max(answered_at), self.plex.refreshes()[0].time,
                        "precondition: the burst was slower than WEBHOOK_DELAY")
        self.assertExactlyOnce([self.plex, plex2], [jf, emby], folder, quiet=3.0)
        self.assertEqual(len([c for c in self.rc.refreshes()
                              if (c.body or {}).get("dir") == self.rclone.rel(folder)]), 1,
                         self.rc.calls())


class RestartMidRoundTest(TargetsCase):
    def test_kill_9_in_the_middle_of_a_round_repeats_nothing_done(self):
        self.restart_mid_round(lambda d: d.kill())

    def test_sigterm_in_the_middle_of_a_round_repeats_nothing_done(self):
        self.restart_mid_round(lambda d: self.assertEqual(d.stop(), 0))

    def restart_mid_round(self, stop):
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([("plex", self.plex), ("jellyfin", jf)])
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin"])
        jf.fail_until_cleared(503)
        f, folder = self.new_episode("Restart Show")
        self.send(f)
        self.assertTrue(self.wait_scans(folder), "plex got no scan")

        def mid_round():
            e = self.entry(folder)
            d = {x["target"]: x for x in (e or {}).get("deliveries", [])}
            return (e and e["attempts"] >= 1 and e["rclone_done"]
                    and d.get("plex", {}).get("state") == "done"
                    and d.get("jellyfin", {}).get("state") == "retry")
        self.assertTrue(wait_until(mid_round, 15), self.entry(folder))
        rclone_calls = len(self.rc.vfs_calls())
        failed_before = len(jf.requests("media_updated"))
        stop(self.daemon)

        self.start_daemon(WEBHOOK_DELAY="0", **env)
        # still failing after the restart: the delivery is tried again, alone
        self.assertTrue(jf.wait_for(
            lambda d: len(d.requests("media_updated")) > failed_before, 20),
            "jellyfin was not tried again after the restart")
        self.assertEqual(len(self.plex.refreshes(path=folder)), 1)
        jf.clear_failures()
        self.assertTrue(self.wait_updates(jf, folder), "jellyfin got no scan")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1
                              and len(jf.updates()) == 1, 2.0),
                        "repeated: plex %r, jellyfin %r" % (self.plex.refreshes(), jf.updates()))
        self.assertEqual(len(self.rc.vfs_calls()), rclone_calls,
                         "rclone was called again although its step was done in this round: %r"
                         % self.rc.calls())
        self.assertTrue(wait_until(lambda: self.entry(folder) is None, 10), self.entry(folder))
        rows = self.history(folder)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0]["status"], "ok", rows)
        self.assertEqual({d["target"]: d["result"] for d in rows[0]["deliveries"]},
                         {"plex": "ok", "jellyfin": "ok"})


class PythonEnvTest(TargetsCase):
    """The Python script's .env, unchanged: the same Plex requests, byte for byte, as the
    previous version sent (recorded from it: request line and headers)."""

    SHOW = "Amélie & Co's #1 100% ?+x (2001)"
    FILM = "Film, The [2020] {tmdb-1}"
    # recorded from the previous version (commit e906af0) with this configuration
    EXPECTED_TARGETS = [
        "/library/sections/4/refresh?path=%2Fdata%2Ftv%2FAm%C3%A9lie%20%26%20Co%27s%20%231%20"
        "100%25%20%3F%2Bx%20%282001%29%2FSeason%2001",
        "/library/sections/7/refresh?path=%2Fdata%2Fmovies%2FFilm%2C%20The%20%5B2020%5D%20"
        "%7Btmdb-1%7D",
    ]
    EXPECTED_HEADERS = {"accept": "application/json",
                        "x-plex-client-identifier": "plex-servarr-sync",
                        "x-plex-product": "plex-servarr-sync",
                        "x-plex-token": PLEX_TOKEN}
    EXPECTED_HEADER_NAMES = {"accept", "host", "x-plex-client-identifier", "x-plex-product",
                             "x-plex-token", "x-plex-version"}

    def sections(self):
        return [{"key": "4", "type": "show", "title": "TV", "locations": ["/data/tv"]},
                {"key": "7", "type": "movie", "title": "Movies", "locations": ["/data/movies"]}]

    def test_the_scripts_env_gives_the_same_plex_requests_as_before(self):
        self.start_daemon(
            WEBHOOK_DELAY="0",
            PATH_REPLACEMENTS=json.dumps({self.tv: "/data/tv", self.movies: "/data/movies"}),
            SECTION_MAPPING=json.dumps({"/data/tv": 4}),
            SECTION_REFRESH="15m")
        show = os.path.join(self.tv, self.SHOW)
        touch(os.path.join(show, "Season 01", "e1.mkv"))
        film = os.path.join(self.movies, self.FILM)
        touch(os.path.join(film, "film.mkv"))
        self.wait_lists(["plex"])
        self.assertWebhookAccepted(self.daemon.webhook(
            "sonarr", rig.sonarr_download(show, "Season 01/e1.mkv")), ("queued",))
        self.assertWebhookAccepted(self.daemon.webhook(
            "radarr", rig.radarr_download(film, "film.mkv")), ("queued",))
        self.assertTrue(wait_until(lambda: len(self.plex.scans()) >= 2, 30),
                        self.plex.refreshes())
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 2, 1.5),
                        self.plex.refreshes())
        recs = sorted(self.plex.refreshes(), key=lambda r: r.target)
        self.assertEqual([(r.method, r.target) for r in recs],
                         [("GET", t) for t in self.EXPECTED_TARGETS])
        for r in recs + self.plex.requests("sections"):
            self.assertEqual(set(r.headers), self.EXPECTED_HEADER_NAMES, r.headers)
            self.assertEqual({k: r.headers[k] for k in self.EXPECTED_HEADERS},
                             self.EXPECTED_HEADERS)
            self.assertEqual(r.headers["host"], "127.0.0.1:%d" % self.plex.port)
        for r in self.plex.requests("sections"):
            self.assertEqual((r.method, r.target), ("GET", "/library/sections"))
        # only the configured Plex: no other target appears
        st = self.api("/api/stats")
        self.assertEqual([(t["name"], t["kind"]) for t in st["targets"]], [("plex", "plex")])


class ShorthandTest(TargetsCase):
    def test_jellyfin_and_emby_shorthands_and_jellyfins_own_replacements(self):
        jf_root = "/jf/media"
        jf = self.add_mb("jellyfin", libraries=[
            {"Name": "Shows", "Locations": [jf_root + "/tv"], "CollectionType": "tvshows"}])
        emby = self.add_mb("emby")
        env = dict(target_env(jf, path_replacements={self.media: jf_root}), **target_env(emby))
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin", "emby"])
        f, folder = self.new_episode("Short Show")
        jf_folder = jf_root + folder[len(self.media):]
        body = self.send(f)
        self.assertEqual(sorted(d["target"] for e in body.get("entries", [])
                                for d in e.get("deliveries", [])),
                         ["emby", "jellyfin", "plex"], body)
        self.assertTrue(self.wait_scans(folder), "plex got no scan of the arr path")
        self.assertTrue(self.wait_updates(jf, jf_folder), "jellyfin got no scan of its path")
        self.assertTrue(self.wait_updates(emby, folder), "emby got no scan of the arr path")
        self.assertExactlyOnce([self.plex], [], folder)
        self.assertEqual(jf.updates(), [(jf_folder, "Created")])
        self.assertEqual(emby.updates(), [(folder, "Created")])
        for rec in jf.requests():
            self.assertEqual(rec.auth_form, "authorization:mediabrowser", rec)
            self.assertEqual(rec.token, jf.token)
            self.assertEqual(rec.auth_forms, ["authorization:mediabrowser"], rec)
        for rec in emby.requests():
            self.assertEqual(rec.auth_form, "x-emby-token", rec)
        st = {t["name"]: t["kind"] for t in self.api("/api/stats")["targets"]}
        self.assertEqual(st, {"plex": "plex", "jellyfin": "jellyfin", "emby": "emby"})
        d = self.api("/api/resolve?path=" + urllib.parse.quote(folder))
        paths = {x["target"]: x["path"] for x in d["deliveries"]}
        self.assertEqual(paths, {"plex": folder, "jellyfin": jf_folder, "emby": folder}, d)


class SkippedTest(TargetsCase):
    def test_a_folder_no_target_holds_is_skipped_naming_paths_and_variables(self):
        jf, emby = self.add_mb("jellyfin12"), self.add_mb("emby")
        env = dict(target_env(jf, path_replacements={self.media: "/jf"}), **target_env(emby))
        self.start_daemon(WEBHOOK_DELAY="0", **env)
        self.wait_lists(["plex", "jellyfin", "emby"])
        other = os.path.join(self.media, "other", "Thing (1999)")
        touch(os.path.join(other, "thing.mkv"))
        r = self.daemon.webhook("radarr", rig.radarr_download(other, "thing.mkv"))
        self.assertEqual(r.status, 200, r)
        body = r.json()
        self.assertEqual(body.get("status"), "skipped", body)
        self.assertEqual([s["arr_path"] for s in body["skipped"]], [other], body)
        reason = body["skipped"][0]["reason"]
        expect = ["plex sees '%s' (check PATH_REPLACEMENTS)" % other,
                  "jellyfin sees '/jf/other/Thing (1999)' (check JELLYFIN_PATH_REPLACEMENTS)",
                  "emby sees '%s' (check PATH_REPLACEMENTS)" % other]
        for part in expect:
            self.assertIn(part, reason)
        self.assertIn("'%s'" % self.tv, reason)        # the libraries' locations are listed
        self.assertTrue(wait_until(lambda: "skipped: " in self.daemon.own_log(), 5))
        logged = [ln for ln in self.daemon.own_log().splitlines() if "skipped: " in ln]
        self.assertTrue(any(all(p in ln for p in expect) for ln in logged), logged)
        self.assertTrue(stays(lambda: not self.plex.refreshes() and not jf.requests(
            "media_updated") and not emby.requests("media_updated") and not self.rc.vfs_calls(),
            1.5), "something was asked for a skipped folder")
        rows = wait_until(lambda: self.history(other), 5)
        self.assertEqual([h["status"] for h in rows], ["skipped"], rows)


class UpgradeTest(TargetsCase):
    """A state database of the previous version (schema 1) with entries waiting, retrying,
    parked and unresolved, and history: the new version migrates it and delivers everything."""

    def test_previous_versions_database_is_migrated_and_its_folders_delivered(self):
        old = rig.previous_binary(PREV_COMMIT)
        state_dir = os.path.join(self.tmp, "state")
        folders = {}
        for key, root, name in (("done", self.tv, "Done Show"), ("parked", self.tv, "Parked Show"),
                                ("retry", self.movies, "Retry Film (1999)"),
                                ("waiting", self.movies, "Waiting Film (2001)"),
                                ("unresolved", self.tv, "Unresolved Show")):
            if root == self.tv:
                f = os.path.join(root, name, "Season 01", "e1.mkv")
            else:
                f = os.path.join(root, name, "film.mkv")
            touch(f)
            folders[key] = (f, os.path.dirname(f))

        def hook(rec):
            if rec.route == "refresh" and rec.scan_path == folders["parked"][1].encode():
                return 401
            if rec.route == "refresh" and rec.scan_path == folders["retry"][1].encode():
                return 503
            return None
        self.plex.hook = hook

        def run_old(workdir, **overrides):
            d = Daemon(os.path.join(self.tmp, workdir), self.daemon_env(**overrides),
                       binary=old)
            os.makedirs(state_dir, exist_ok=True)
            self.addCleanup(lambda: d.stop(check=False) if d.running() else None)
            self.old_daemon = d
            return d.start()

        def old_states(d):
            es = self.api("/api/queue?limit=1000", daemon=d)["entries"]
            return {e.get("arr_path"): e.get("state") for e in es}

        # 1: Plex answers: one folder done, then one parked by a 401 (after which the previous
        # version calls Plex no more)
        d = run_old("run-old-1", WEBHOOK_DELAY="0")
        self.assertEqual(d.webhook("sonarr", self.sonarr_for(folders["done"][0])).status, 202)
        self.assertTrue(self.wait_scans(folders["done"][1]), "the old version scanned nothing")
        self.assertEqual(d.webhook("sonarr", self.sonarr_for(folders["parked"][0])).status, 202)
        self.assertTrue(wait_until(lambda: old_states(d).get(folders["parked"][1]) == "parked",
                                   20), old_states(d))
        self.assertEqual(d.stop(), 0)

        # 2: Plex down: a folder of an unread library list is unresolved; with SECTION_MAPPING,
        # a manual scan (no debounce) retries and a webhook's folder waits its window
        self.plex.set_down()
        d = run_old("run-old-2", WEBHOOK_DELAY="8s",
                    SECTION_MAPPING=json.dumps({self.movies: 2}))
        self.assertEqual(d.webhook("sonarr", self.sonarr_for(folders["unresolved"][0])).status,
                         202)
        r = d.manual_post(folders["retry"][1], MANUAL_USER, MANUAL_PASS)
        self.assertIn(r.status, (200, 202, 303), r)
        f, folder = folders["waiting"]
        self.assertEqual(d.webhook("radarr", rig.radarr_download(
            folder, os.path.basename(f))).status, 202)
        self.assertTrue(wait_until(lambda: old_states(d) == {
            folders[k][1]: k for k in ("parked", "retry", "waiting", "unresolved")}, 7),
            old_states(d))
        self.assertEqual(d.stop(), 0)

        db = sqlite3.connect(os.path.join(state_dir, DB_NAME))
        try:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 1)
            states = dict(db.execute("SELECT arr_path, state FROM entries").fetchall())
            old_history = db.execute("SELECT arr_path, status FROM history").fetchall()
        finally:
            db.close()
        self.assertEqual(states, {folders[k][1]: k for k in
                                  ("parked", "retry", "waiting", "unresolved")},
                         "precondition: the old database's entries")
        self.assertIn((folders["done"][1], "ok"), old_history)
        self.assertIn("parked", {s for p, s in old_history if p == folders["parked"][1]},
                      old_history)

        # 3: the new version on the same STATE_DIR, Plex up and answering
        self.plex.hook = None
        self.plex.clear()
        self.plex.set_up()
        self.start_daemon(WEBHOOK_DELAY="1")
        pending = [folders[k][1] for k in ("parked", "retry", "waiting", "unresolved")]
        self.assertTrue(wait_until(lambda: all(self.plex.scans(path=p) for p in pending), 40),
                        "not delivered after the upgrade: %r"
                        % [p for p in pending if not self.plex.scans(path=p)])
        self.assertTrue(stays(lambda: all(len(self.plex.refreshes(path=p)) == 1
                                          for p in pending), 1.5), self.plex.refreshes())
        self.assertEqual(self.plex.refreshes(path=folders["done"][1]), [])
        self.assertTrue(wait_until(lambda: not self.api("/api/queue")["entries"], 10),
                        self.api("/api/queue"))
        # the old rows are still listed, next to the new rounds
        items = self.api("/api/history?limit=200")["items"]
        by_path = {}
        for h in items:
            by_path.setdefault(h["path"], []).append(h)
        self.assertIn("ok", [h["status"] for h in by_path.get(folders["done"][1], [])], items)
        self.assertEqual(len(items), len(old_history) + len(pending), items)
        for p in pending:
            self.assertIn("ok", [h["status"] for h in by_path.get(p, [])], (p, items))
        done_row = [h for h in by_path[folders["done"][1]] if h["status"] == "ok"][0]
        self.assertEqual([(d["target"], d["result"]) for d in done_row["deliveries"]],
                         [("plex", "ok")], done_row)
        db = sqlite3.connect(os.path.join(state_dir, DB_NAME))
        try:
            self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 3)  # this version's schema
        finally:
            db.close()


if __name__ == "__main__":
    unittest.main()


class SlowTargetTest(TargetsCase):
    def test_a_slow_jellyfin_delays_no_other_folder_on_plex(self):
        """A server that takes seconds per request holds up only its own deliveries: each folder
        gives its sync slot back after its rclone step, and each server bounds its own requests."""
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([("plex", self.plex), ("jellyfin", jf)])
        self.start_daemon(WEBHOOK_DELAY="0", MAX_CONCURRENT_SYNCS="2", **env)
        self.wait_lists(["plex", "jellyfin"])
        jf.delay = 4.0  # every scan request takes 4 s
        folders = []
        for i in range(8):
            f, folder = self.new_episode("Slow Show %d" % i)
            self.send(f)
            folders.append(folder)
        began = time.monotonic()
        # Plex has every folder long before Jellyfin could have answered a quarter of them
        # (2 at a time, 4 s each: 16 s for the 8)
        self.assertTrue(wait_until(lambda: all(self.plex.refreshes(path=f) for f in folders), 30,
                                   interval=0.1), "plex scans: %r" % [len(self.plex.refreshes(path=f))
                                                                      for f in folders])
        plex_done = time.monotonic() - began
        self.assertLess(plex_done, 10.0, "Plex waited for the slow Jellyfin: %.1f s" % plex_done)
        self.assertLess(len(jf.updates(ok_only=True)), len(folders),
                        "Jellyfin already answered every folder: it was not slow")
        # and Jellyfin gets each folder once
        self.assertTrue(wait_until(lambda: len(jf.updates(ok_only=True)) == len(folders), 60),
                        jf.updates(ok_only=False))
        self.assertEqual(sorted(p for p, _ in jf.updates()), sorted(folders))
        for f in folders:
            self.assertEqual(len(self.plex.refreshes(path=f)), 1, f)
