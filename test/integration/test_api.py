"""The HTTP surface behind the web page: the JSON API, /health, /metrics and the static files.

Every endpoint: authentication (401 with a Basic challenge), wrong methods (405 with Allow),
cross-site state changes (403), a hostile folder name that must come back as data, history paging,
search and filters, the /api/stats shape dashboard widgets read, /health's strict mode, the
Prometheus text format with label values from fixed lists, and static files confined to web/."""

import json
import os
import re
import shutil
import unittest
import urllib.parse

import rig
from rig import (MANUAL_PASS, MANUAL_USER, Daemon, RigTestCase, basic_auth, free_port, touch,
                 wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
WEB_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "web"))

HOSTILE = "<img src=x onerror=alert(1)>"
HOSTILE2 = "Tom & \"Jerry\" 's <b>bold</b> %2e%2e"

APPS = {"sonarr", "radarr", "lidarr", "readarr"}
EVENTS = {"download", "rename", "retag", "episode_file_delete", "movie_file_delete",
          "book_file_delete", "track_file_delete", "series_delete", "movie_delete",
          "album_delete", "artist_delete", "book_delete", "author_delete", "test", "grab",
          "health", "health_restored", "application_update", "series_add", "movie_added",
          "artist_add", "author_added", "manual_interaction_required", "album_download", "other"}
STATES = {"unresolved", "waiting", "aging", "held", "ready", "checking", "syncing", "retry",
          "parked"}
OUTCOMES = {"ok", "failed", "parked", "skipped"}
BUCKETS = {"0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "+Inf"}
# target: the configured names (here only the `plex` of PLEX_URL); kind: the fixed list of kinds
# source: /triggers/manual's callers (?dir= is autoscan's form, ?path= autopulse's)
SOURCES = {"autoscan", "manual-trigger"}
# pss_notifications_total: the destination types and the outcomes of a message
NOTIFY_TYPES = {"discord", "ntfy", "apprise", "gotify", "json"}
NOTIFY_OUTCOMES = {"sent", "failed", "dropped"}
FIXED_LABELS = {"app": APPS, "event": EVENTS, "state": STATES, "outcome": OUTCOMES | NOTIFY_OUTCOMES,
                "le": BUCKETS, "target": {"plex"}, "kind": {"plex", "jellyfin", "emby"},
                "source": SOURCES, "type": NOTIFY_TYPES}

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

AUTH = (MANUAL_USER, MANUAL_PASS)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class ApiCase(RigTestCase):
    use_rclone = False

    # ---- helpers ----
    def call(self, method, target, body=None, auth=AUTH, headers=None, json_body=None):
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = basic_auth(*auth)
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        return self.daemon.request(method, target, body=body, headers=hdrs)

    def get_json(self, target):
        r = self.call("GET", target)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"), r.headers)
        return r.json()

    def scan(self, path, **kw):
        return self.call("POST", "/api/scans", json_body={"path": path}, **kw)

    def queue(self, query=""):
        return self.get_json("/api/queue" + query)

    def entry_for(self, plex_path):
        for e in self.queue()["entries"]:
            if e["plex_path"] == plex_path:
                return e
        return None

    def history(self, query=""):
        return self.get_json("/api/history" + query)

    def history_for(self, plex_path, status=None):
        return [h for h in self.history("?limit=500")["items"]
                if h["plex_path"] == plex_path and (status is None or h["status"] == status)]

    def folder(self, *parts, root=None):
        """A folder under <media>/tv (created, with one file in it)."""
        d = os.path.join(root or self.tv, *parts)
        touch(os.path.join(d, "file.mkv"))
        return d


class AuthTest(ApiCase):
    PROTECTED = [("GET", "/"), ("GET", "/webhook/manual"), ("HEAD", "/"),
                 ("GET", "/api/queue"), ("GET", "/api/history"), ("GET", "/api/stats"),
                 ("GET", "/api/resolve?path=%2Ftv"), ("POST", "/api/scans"),
                 ("POST", "/api/queue/1/retry"), ("POST", "/webhook/manual")]

    def test_every_protected_endpoint_answers_401_with_a_basic_challenge(self):
        self.start_daemon()
        # No credentials on every endpoint; wrong ones on a few (failed logins are answered
        # after a growing delay, so not on all of them).
        cases = [(m, t, None) for m, t in self.PROTECTED] + [
            ("GET", "/api/stats", (MANUAL_USER, "wrong")),
            ("POST", "/api/scans", ("someone", MANUAL_PASS)),
            ("GET", "/", ("", "")),
            ("POST", "/webhook/manual", (MANUAL_USER, MANUAL_PASS + "x"))]
        for method, target, auth in cases:
            with self.subTest(method=method, target=target, auth=auth):
                r = self.call(method, target, auth=auth,
                              body=b"path=%2Ftv" if method == "POST" else None,
                              headers={"Content-Type": "application/x-www-form-urlencoded"}
                              if method == "POST" else None)
                self.assertEqual(r.status, 401, r)
                self.assertRegex(r.headers.get("WWW-Authenticate", ""), r'^Basic realm="[^"]+"')
        # nothing was queued by the refused POSTs
        self.assertEqual(self.queue()["depth"], 0)

    def test_malformed_authorization_headers_are_refused(self):
        self.start_daemon()
        for value in ("Basic", "Basic !!!notbase64", "Bearer abc", "Basic " + "A" * 3000,
                      basic_auth(MANUAL_USER, MANUAL_PASS).replace("Basic", "Digest")):
            with self.subTest(value=value[:40]):
                r = self.daemon.request("GET", "/api/stats", headers={"Authorization": value})
                self.assertIn(r.status, (400, 401, 431), r)
                self.assertNotEqual(r.status, 200)

    def test_open_endpoints_need_no_credentials(self):
        self.start_daemon()
        for target, ctype in (("/health", "application/json"), ("/metrics", "text/plain"),
                              ("/static/style.css", "text/css"), ("/static/app.js", "text/javascript"),
                              ("/static/favicon.svg", "image/svg+xml"), ("/favicon.ico", "image/svg+xml")):
            with self.subTest(target=target):
                r = self.daemon.request("GET", target)
                self.assertEqual(r.status, 200, r)
                self.assertTrue(r.headers.get("Content-Type", "").startswith(ctype), r.headers)
                self.assertIsNone(r.headers.get("WWW-Authenticate"))

    def test_the_page_is_served_with_credentials_and_a_strict_policy(self):
        self.start_daemon()
        r = self.call("GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"))
        # relative addresses, so the page works below URL_BASE or a proxy's path
        self.assertIn('<script src="static/app.js"', r.text)
        self.assertNotRegex(r.text, r'(?:src|href|action)="/')
        csp = r.headers.get("Content-Security-Policy", "")
        self.assertIn("default-src 'self'", csp)
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")
        # the old form still posts to webhook/manual
        self.assertIn('action="webhook/manual"', r.text)
        self.assertIn('name="path"', r.text)
        # the Python script's manual page is the dashboard, where its relative addresses work
        r = self.call("GET", "/webhook/manual")
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.headers.get("Location"), "/")

    def test_web_files_load_nothing_from_outside(self):
        # No URL with a scheme or a protocol-relative one in the page's files (the SVG namespace
        # is an identifier, not a request).
        for dirpath, _, names in os.walk(WEB_DIR):
            for name in names:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    text = f.read().replace('xmlns="http://www.w3.org/2000/svg"', "")
                with self.subTest(file=name):
                    self.assertNotRegex(text, r"(?i)\b(?:https?|wss?|ftp):")
                    self.assertNotRegex(text, r"""(?:src|href|url)\s*[=(]\s*["']?//""")
                    self.assertNotRegex(text, r"@import")


class MethodTest(ApiCase):
    CASES = [("DELETE", "/api/queue", "GET, HEAD"), ("POST", "/api/queue", "GET, HEAD"),
             ("POST", "/api/history", "GET, HEAD"), ("PUT", "/api/stats", "GET, HEAD"),
             ("POST", "/api/resolve", "GET, HEAD"), ("GET", "/api/scans", "POST"),
             ("PUT", "/api/scans", "POST"), ("GET", "/api/queue/1/retry", "POST"),
             ("DELETE", "/api/queue/1/retry", "POST"), ("POST", "/health", "GET, HEAD"),
             ("PUT", "/metrics", "GET, HEAD"), ("POST", "/static/style.css", "GET, HEAD"),
             ("DELETE", "/static/app.js", "GET, HEAD"), ("PUT", "/", "GET, HEAD"),
             ("POST", "/", "GET, HEAD"), ("DELETE", "/webhook/manual", "GET, HEAD, POST"),
             ("GET", "/webhook/sonarr", "POST, PUT")]

    def test_wrong_methods_get_405_with_allow(self):
        self.start_daemon()
        for method, target, allow in self.CASES:
            with self.subTest(method=method, target=target):
                r = self.call(method, target, body=b"{}" if method in ("POST", "PUT") else None,
                              headers={"Content-Type": "application/json"})
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.headers.get("Allow"), allow)
        self.assertEqual(self.queue()["depth"], 0)

    def test_unknown_api_paths_are_404(self):
        self.start_daemon()
        for target in ("/api/", "/api/nope", "/api/queue/abc/retry", "/api/queue/0/retry",
                       "/api/queue/-1/retry", "/api/queue//retry", "/api/queue/1/retry/x",
                       "/api/%71ueue", "/nope"):
            with self.subTest(target=target):
                method = "POST" if target.endswith("retry") else "GET"
                r = self.call(method, target)
                self.assertEqual(r.status, 404, r)


class CrossSiteTest(ApiCase):
    def test_state_changing_calls_refuse_cross_site_requests(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        folder = self.folder("Cross Site Show", "Season 01")
        hostile_headers = [{"Origin": "http://evil.example"},
                           {"Origin": "http://evil.example:%d" % self.daemon.port},
                           {"Origin": "null"},
                           {"Sec-Fetch-Site": "cross-site"},
                           {"Origin": "http://127.0.0.1:%d.evil.example" % self.daemon.port},
                           {"Origin": "https://127.0.0.1:%d" % self.daemon.port,
                            "Sec-Fetch-Site": "cross-site"}]
        for h in hostile_headers:
            with self.subTest(headers=h):
                self.assertEqual(self.scan(folder, headers=h).status, 403)
                form = self.call("POST", "/webhook/manual",
                                 body=urllib.parse.urlencode({"path": folder}).encode(),
                                 headers=dict(h, **{"Content-Type":
                                                    "application/x-www-form-urlencoded"}))
                self.assertEqual(form.status, 403, form)
                self.assertEqual(self.call("POST", "/api/queue/1/retry", headers=h).status, 403)
        self.assertEqual(self.queue()["depth"], 0, "a refused request queued something")
        # the same origin, as the page sends it, and no origin at all (curl) pass
        same = {"Origin": "http://127.0.0.1:%d" % self.daemon.port, "Sec-Fetch-Site": "same-origin"}
        self.assertEqual(self.scan(folder, headers=same).status, 202)
        self.assertEqual(self.scan(folder).status, 202)

    def test_behind_a_proxy_that_rewrites_host_the_browsers_word_decides(self):
        # nginx's default proxy_set_header Host: the daemon sees its own address, the browser
        # sends the public origin: Sec-Fetch-Site (same-origin) is what counts.
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        folder = self.folder("Proxied Show", "Season 01")
        proxied = {"Origin": "https://media.example.org", "Sec-Fetch-Site": "same-origin"}
        self.assertEqual(self.scan(folder, headers=proxied).status, 202)
        form = self.call("POST", "/webhook/manual", body=urllib.parse.urlencode({"path": folder}).encode(),
                         headers=dict(proxied, **{"Content-Type": "application/x-www-form-urlencoded"}))
        self.assertEqual(form.status, 200, form)
        # the same proxy carrying a cross-site or same-site request: refused
        for sfs in ("cross-site", "same-site"):
            h = {"Origin": "https://media.example.org", "Sec-Fetch-Site": sfs}
            self.assertEqual(self.scan(folder, headers=h).status, 403, sfs)
        # a browser without Sec-Fetch-Site: the Origin/Host comparison still refuses a mismatch
        self.assertEqual(self.scan(folder, headers={"Origin": "https://media.example.org"}).status, 403)

    def test_public_url_names_the_proxys_origin_for_browsers_without_sec_fetch_site(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h",
                          PUBLIC_URL="https://Media.Example.org/sync/")
        folder = self.folder("Public Show", "Season 01")
        self.assertEqual(self.scan(folder, headers={"Origin": "https://media.example.org"}).status, 202)
        for other in ("http://media.example.org", "https://media.example.org:8443",
                      "https://evil.example", "https://media.example.org.evil.example"):
            self.assertEqual(self.scan(folder, headers={"Origin": other}).status, 403, other)


class HostileNameTest(ApiCase):
    def test_hostile_folder_names_round_trip_as_data(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.plex.delay = 0
        for name in (HOSTILE, HOSTILE2):
            with self.subTest(name=name):
                folder = self.folder(name, "Season 01")
                # preview
                pv = self.get_json("/api/resolve?path=" + urllib.parse.quote(folder, safe=""))
                self.assertEqual(pv["plex_path"], folder)
                self.assertEqual(pv["host"]["path"], folder)
                self.assertIs(pv["host"]["exists"], True)
                # a webhook leaves it waiting (1 h): the queue shows it exactly
                r = self.daemon.webhook("sonarr", self.sonarr_for(os.path.join(folder, "file.mkv")))
                self.assertWebhookAccepted(r)
                e = self.entry_for(folder)
                self.assertIsNotNone(e, self.queue())
                self.assertEqual(e["arr_path"], folder)
                self.assertEqual(e["state"], "waiting")
                # a manual scan runs it now; the history shows it exactly
                self.assertEqual(self.scan(folder).status, 202)
                self.assertTrue(self.wait_scans(folder), "no scan of %r" % folder)
                self.assertTrue(wait_until(lambda: self.history_for(folder, "ok"), 20))
                # search finds it by its odd characters
                hits = self.history("?search=" + urllib.parse.quote(name, safe=""))["items"]
                self.assertEqual([h["plex_path"] for h in hits], [folder])
        # JSON, never HTML: the API answers are not sniffed into markup
        r = self.call("GET", "/api/history")
        self.assertTrue(r.headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(r.headers.get("X-Content-Type-Options"), "nosniff")

    def test_the_old_form_escapes_a_hostile_folder_name(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        folder = self.folder(HOSTILE)
        r = self.daemon.manual_post(folder, MANUAL_USER, MANUAL_PASS)
        self.assertEqual(r.status, 200, r)
        self.assertIn("Sync queued for:", r.text)
        self.assertIn("&lt;img src=x onerror=alert(1)&gt;", r.text)
        self.assertNotIn(HOSTILE, r.text)
        self.assertTrue(self.wait_scans(folder))


class ScansTest(ApiCase):
    def test_post_scans_queues_and_the_queue_shows_it_at_once(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.plex.delay = 2.0  # the scan takes a while: it is seen queued / syncing
        folder = self.folder("Scan Show", "Season 01")
        r = self.scan(folder)
        self.assertEqual(r.status, 202, r)
        body = r.json()
        self.assertEqual(body["status"], "queued")
        self.assertEqual(len(body["entries"]), 1)
        ent = body["entries"][0]
        self.assertEqual(ent["plex_path"], folder)
        self.assertEqual(ent["section"], 1)
        self.assertIsInstance(ent["id"], int)
        self.assertIn(ent["queued_as"], ("new", "merged", "rerun"))
        e = self.entry_for(folder)
        self.assertIsNotNone(e, "the queue does not show the folder right after the 202")
        self.assertEqual(e["id"], ent["id"])
        self.assertTrue(e["manual"])
        self.assertEqual(e["sources"], ["manual"])
        self.assertIn(e["state"], ("waiting", "ready", "checking", "syncing"))
        self.assertTrue(self.wait_scans(folder))
        self.assertTrue(wait_until(lambda: self.entry_for(folder) is None, 20))
        self.assertTrue(wait_until(lambda: self.history_for(folder, "ok"), 20))

    def test_form_body_and_refusals(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        folder = self.folder("Form Show")
        r = self.call("POST", "/api/scans", body=urllib.parse.urlencode({"path": folder}).encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(r.status, 202, r)
        for body, ctype, status in ((b"{}", "application/json", 400),
                                    (b'{"path": 5}', "application/json", 400),
                                    (b"not json", "application/json", 400),
                                    (b'{"path": "/x"}', "text/plain", 400),
                                    (b'{"path": "relative/dir"}', "application/json", 400),
                                    (b'{"path": "/tv/../etc"}', "application/json", 400),
                                    (b'{"path": "/tv/a\\nb"}', "application/json", 400),
                                    (json.dumps({"path": "/elsewhere/Show"}).encode(),
                                     "application/json", 422)):
            with self.subTest(body=body, ctype=ctype):
                r = self.call("POST", "/api/scans", body=body, headers={"Content-Type": ctype})
                self.assertEqual(r.status, status, r)
                self.assertIsInstance(r.json(), dict)
                self.assertTrue(r.json().get("message"))

    def test_old_form_post_keeps_working(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        folder = self.folder("Old Form Show", "Season 02")
        r = self.daemon.manual_post(folder, MANUAL_USER, MANUAL_PASS)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/html"))
        self.assertIn("Sync queued for: " + folder, r.text)
        self.assertTrue(self.wait_scans(folder))
        r = self.call("POST", "/webhook/manual", body=b'{"path": "/x"}',
                      headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 415, r)


class QueueViewTest(ApiCase):
    def test_entries_show_state_section_events_and_due(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="2h")
        f1 = os.path.join(self.folder("Queue Show", "Season 01"), "file.mkv")
        f2 = os.path.join(os.path.dirname(f1), "second.mkv")
        touch(f2)
        f3 = os.path.join(self.folder("Other Show", "Season 03"), "file.mkv")
        for f in (f1, f2, f3):
            self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)))
        q = self.queue()
        self.assertEqual(q["depth"], 2)
        self.assertEqual(q["matching"], 2)
        self.assertFalse(q["truncated"])
        self.assertEqual(q["by_state"]["waiting"], 2)
        self.assertEqual(set(q["by_state"]), STATES)
        self.assertIsInstance(q["now"], (int, float))
        e = [x for x in q["entries"] if x["plex_path"] == os.path.dirname(f1)][0]
        self.assertEqual(e["events"], 2, "two events for one folder merge into one entry")
        self.assertEqual(e["files"], 2)
        self.assertEqual(e["section"], 1)
        self.assertEqual(e["section_title"], "TV Shows")
        self.assertEqual(e["sources"], ["sonarr"])
        self.assertEqual(e["state"], "waiting")
        self.assertFalse(e["can_retry"])
        self.assertGreater(e["due_in_ms"], 3000 * 1000)
        self.assertLessEqual(e["due_in_ms"], 3600 * 1000)
        self.assertEqual(e["due"] - q["now"], e["due_in_ms"])
        # filters and the bounded view
        self.assertEqual(self.queue("?state=waiting")["matching"], 2)
        self.assertEqual(self.queue("?state=parked")["entries"], [])
        one = self.queue("?limit=1")
        self.assertEqual(len(one["entries"]), 1)
        self.assertTrue(one["truncated"])
        hits = self.queue("?search=other%20SHOW")["entries"]
        self.assertEqual([h["plex_path"] for h in hits], [os.path.dirname(f3)])
        for bad in ("?state=bogus", "?limit=0", "?limit=abc"):
            with self.subTest(query=bad):
                self.assertEqual(self.call("GET", "/api/queue" + bad).status, 400)


class RetryParkedTest(ApiCase):
    use_rclone = True

    def test_parked_entry_says_why_and_retry_asks_again(self):
        # rclone has no VFS by this name: a configuration error, so the entry is parked
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h", RCLONE_FS="nosuchremote:")
        folder = self.folder("Parked Show", "Season 01")
        self.assertEqual(self.scan(folder).status, 202)
        self.assertTrue(wait_until(lambda: (self.entry_for(folder) or {}).get("state") == "parked",
                                   30), self.queue())
        e = self.entry_for(folder)
        self.assertIn("RCLONE_FS", e["park_reason"])
        self.assertTrue(e["can_retry"])
        self.assertIsNone(e["due_in_ms"])
        self.assertEqual(self.plex.refreshes(), [], "a parked entry must not reach Plex")
        rows = self.history_for(folder, "parked")
        self.assertEqual(len(rows), 1)
        self.assertIn("RCLONE_FS", rows[0]["error"])
        stats = self.get_json("/api/stats")
        self.assertEqual(stats["queue"]["parked"], 1)
        health = self.get_json("/health")
        self.assertIn("1 parked folder", health["degraded"])
        # retry: accepted, runs again (and parks again: rclone still refuses)
        r = self.call("POST", "/api/queue/%d/retry" % e["id"])
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["status"], "retrying")
        # the retry is a second attempt of the same round: its row is updated, not repeated
        self.assertTrue(wait_until(lambda: [h["attempts"] for h in self.history_for(folder, "parked")] == [2],
                                   30), self.history())
        self.assertTrue(wait_until(lambda: (self.entry_for(folder) or {}).get("state") == "parked",
                                   30))
        # only a parked entry can be retried; an unknown one is 404
        waiting = self.folder("Waiting Show")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr",
                                                       self.sonarr_for(os.path.join(waiting, "file.mkv"))))
        w = self.entry_for(waiting)
        self.assertEqual(self.call("POST", "/api/queue/%d/retry" % w["id"]).status, 409)
        self.assertEqual(self.call("POST", "/api/queue/999999/retry").status, 404)


class HistoryTest(ApiCase):
    def test_paging_search_and_status_filter(self):
        self.start_daemon(RETRY_MAX_DELAY="1s")
        names = ["Alpha 100% Show", "Beta_Show", "Gamma Show", "Delta Show", "Epsilon Show"]
        folders = [self.folder(n) for n in names]
        self.plex.fail_next(2, 500)  # two attempts fail (then retry and succeed)
        for f in folders:
            self.assertEqual(self.scan(f).status, 202)
        self.assertTrue(wait_until(lambda: len(self.history("?status=ok&limit=500")["items"]) == 5,
                                   60), self.history())
        # One row per round (since 0.2.0): the two failed attempts are attempts of two rounds
        # that ended ok, not rows of their own.
        all_rows = self.history("?limit=500")["items"]
        self.assertEqual(len(all_rows), 5, all_rows)
        self.assertEqual(sorted(h["attempts"] for h in all_rows), [1, 1, 1, 2, 2], all_rows)
        ids = [h["id"] for h in all_rows]
        self.assertEqual(ids, sorted(ids, reverse=True), "newest first")
        for h in all_rows:
            self.assertEqual(set(h) >= {"id", "section", "section_title", "plex_path", "arr_path",
                                        "status", "started", "duration_ms", "sources", "events",
                                        "rclone", "plex", "attempt", "error"}, True, h)
            self.assertEqual(h["sources"], ["manual"])
            self.assertEqual(h["events"], 1)
            self.assertEqual(h["section_title"], "TV Shows")
        self.assertEqual(self.history("?status=failed")["items"], [])
        self.assertEqual(self.history("?status=retrying")["items"], [])
        self.assertTrue(all(h["error"] is None for h in self.history("?status=ok")["items"]))
        self.assertEqual(self.history("?status=all&limit=500")["items"], all_rows)
        # paging: limit 3 walks every row once, in order
        seen, before = [], None
        while True:
            page = self.history("?limit=3" + ("&before=%d" % before if before else ""))
            self.assertLessEqual(len(page["items"]), 3)
            seen += [h["id"] for h in page["items"]]
            before = page["next_before"]
            if before is None:
                break
            self.assertEqual(before, page["items"][-1]["id"])
        self.assertEqual(seen, ids)
        # search: a substring of the folder, case-insensitive; % and _ are literal characters
        q = lambda s, extra="": [h["plex_path"] for h in
                                 self.history("?search=" + urllib.parse.quote(s) + extra)["items"]]
        self.assertEqual(set(q("100%")), {folders[0]})
        self.assertEqual(set(q("A_S")), {folders[1]})
        self.assertEqual(set(q("gamma")), {folders[2]})
        self.assertEqual(q("no such folder"), [])
        self.assertEqual(set(q("show", "&status=ok")), set(folders))
        for bad in ("?status=bogus", "?limit=0", "?limit=x", "?before=abc", "?before=-5"):
            with self.subTest(query=bad):
                self.assertEqual(self.call("GET", "/api/history" + bad).status, 400)
        self.assertEqual(len(self.history("?limit=100000")["items"]), 5, "a huge limit is capped")


class StatsTest(ApiCase):
    def test_stats_keep_the_python_scripts_shape(self):
        self.start_daemon()
        s = self.get_json("/api/stats")
        for key in ("total", "ok", "failed"):
            self.assertEqual(s["syncs"][key], 0)
        self.assertEqual(s["queue"]["depth"], 0)
        self.assertIsNone(s["last_sync"])
        self.assertIs(s["plex_reachable"], True)
        self.assertIs(s["rclone_reachable"], True)
        self.assertIs(s["rclone"]["enabled"], False)
        self.assertEqual(s["plex"]["libraries"], 2)
        folder = self.folder("Stats Show")
        self.plex.fail_next(1, 500)
        self.assertEqual(self.scan(folder).status, 202)
        self.assertTrue(wait_until(lambda: self.get_json("/api/stats")["syncs"]["ok"] == 1, 30))
        s = self.get_json("/api/stats")
        # rounds, not attempts (since 0.2.0): the failed attempt is part of a round that ended ok
        self.assertEqual(s["syncs"]["total"], 1)
        self.assertEqual(s["syncs"]["failed"], 0)
        self.assertIsInstance(s["syncs"]["avg_duration_ms"], int)
        self.assertRegex(s["last_sync"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(set(s["queue"]["by_state"]), STATES)
        self.assertTrue(s["version"])

    def test_stats_say_when_plex_and_rclone_do_not_answer(self):
        self.plex_running_at_start = True
        self.start_daemon(USE_RCLONE="true", RCLONE_RC_URL="http://127.0.0.1:%d" % free_port(),
                          RCLONE_MOUNT_ROOT=self.media)
        self.plex.set_down()
        self.assertTrue(wait_until(lambda: self.get_json("/api/stats")["plex_reachable"] is False,
                                   30, interval=0.5), self.get_json("/api/stats"))
        s = self.get_json("/api/stats")
        self.assertIs(s["rclone_reachable"], False)
        self.assertEqual(s["rclone"]["mounts_answering"], 0)
        self.assertIsInstance(s["plex"]["checked_at"], (int, float))
        self.plex.set_up()
        self.assertTrue(wait_until(lambda: self.get_json("/api/stats")["plex_reachable"] is True,
                                   30, interval=0.5))


class ResolveTest(ApiCase):
    use_rclone = True

    def test_preview_of_a_folder_in_a_library(self):
        self.start_daemon()
        folder = self.folder("Preview Show", "Season 01")
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(folder))
        self.assertEqual(d["plex_path"], folder)
        self.assertEqual(d["resolution"], "matched")
        self.assertTrue(d["will_queue"])
        self.assertFalse(d["library_root"])
        self.assertEqual(d["sections"], [{"section": 1, "source": "plex", "title": "TV Shows",
                                          "outside_locations": False}])
        self.assertEqual(d["host"], {"path": folder, "exists": True})
        self.assertEqual(d["rclone"]["mount"], self.media)
        self.assertEqual(d["rclone"]["vfs_dir"], "tv/Preview Show/Season 01")
        self.assertIs(d["rclone"]["recursive"], True)
        self.assertEqual(d["warnings"], [])
        # the preview queues nothing
        self.assertEqual(self.queue()["depth"], 0)
        # a folder that is not there, a library root, and one outside every library
        missing = os.path.join(self.tv, "Not There")
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(missing))
        self.assertIs(d["host"]["exists"], False)
        self.assertEqual(d["host"]["error"], "ENOENT")
        self.assertTrue(any("does not exist" in w for w in d["warnings"]), d)
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(self.tv))
        self.assertTrue(d["library_root"])
        self.assertTrue(any("library root" in w for w in d["warnings"]), d)
        d = self.get_json("/api/resolve?path=/elsewhere/Show")
        self.assertEqual(d["resolution"], "no_match")
        self.assertFalse(d["will_queue"])
        self.assertEqual(d["sections"], [])
        self.assertIsNone(d["rclone"]["mount"])
        self.assertIn("outside every rclone mount", d["rclone"]["reason"])
        for bad in ("", "?path=", "?path=relative", "?path=/tv/../x", "?path=/tv/%0Ax"):
            with self.subTest(query=bad):
                r = self.call("GET", "/api/resolve" + bad)
                self.assertEqual(r.status, 400, r)

    def test_preview_names_section_mapping_and_flags_a_folder_outside_the_library(self):
        elsewhere = os.path.join(self.media, "elsewhere")
        self.start_daemon(SECTION_MAPPING=json.dumps({self.movies: 2, elsewhere: 1}),
                          RCLONE_RC_URL="http://user:secret@127.0.0.1:%d" % self.rclone.rc_port)
        film = self.folder("Some Film (2001)", root=self.movies)
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(film))
        self.assertEqual(d["sections"][0]["section"], 2)
        self.assertEqual(d["sections"][0]["source"], "SECTION_MAPPING")
        self.assertFalse(d["sections"][0]["outside_locations"])
        self.assertNotIn("secret", json.dumps(d), "the RC URL's credentials must not be shown")
        odd = self.folder("Odd", root=elsewhere)
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(odd))
        self.assertEqual(d["sections"][0]["section"], 1)
        self.assertTrue(d["sections"][0]["outside_locations"])
        self.assertTrue(any("outside the locations" in w for w in d["warnings"]), d)
        # /health flags the mapping too, without naming paths
        h = self.get_json("/health")
        self.assertTrue(any(x.startswith("SECTION_MAPPING:") for x in h["degraded"]), h)


class UnresolvedResolveTest(ApiCase):
    plex_running_at_start = False

    def test_preview_while_no_library_list_was_read(self):
        self.start_daemon()
        folder = self.folder("Early Show")
        d = self.get_json("/api/resolve?path=" + urllib.parse.quote(folder))
        self.assertEqual(d["resolution"], "unresolved")
        self.assertTrue(d["will_queue"])
        self.assertTrue(any("library list" in w for w in d["warnings"]), d)
        r = self.scan(folder)
        self.assertEqual(r.status, 202)
        self.assertEqual(r.json()["status"], "unresolved")
        self.assertEqual(self.entry_for(folder)["state"], "unresolved")
        self.assertIsNone(self.entry_for(folder)["section"])


class HealthTest(ApiCase):
    plex_running_at_start = False

    def test_health_is_200_but_strict_is_503_while_degraded(self):
        self.start_daemon(SECTION_REFRESH="2s")
        r = self.daemon.request("GET", "/health")
        self.assertEqual(r.status, 200, r)
        h = r.json()
        self.assertEqual(h["status"], "degraded")
        self.assertIn("plex: not reachable", h["degraded"])
        self.assertIs(h["plex"]["reachable"], False)
        for q in ("?strict=1", "?strict=true"):
            self.assertEqual(self.daemon.request("GET", "/health" + q).status, 503)
        self.assertEqual(self.daemon.request("GET", "/health?strict=0").status, 200)
        self.assertEqual(self.daemon.request("HEAD", "/health?strict=1").status, 503)
        # Plex comes up: the library list is read and nothing is degraded any more
        self.plex.start(self.plex.port)

        def healthy():
            r = self.daemon.request("GET", "/health?strict=1")
            return r.status == 200 and r.json()["status"] == "ok"
        self.assertTrue(wait_until(healthy, 90, interval=0.5), self.daemon.get("/health"))
        self.assertEqual(self.daemon.get("/health").json()["degraded"], [])


class MetricsTest(ApiCase):
    def parse(self, text):
        """{(name, frozenset(labels.items())): value}; checks the format on the way."""
        samples = {}
        typed = {}
        for line in text.splitlines():
            self.assertTrue(line, "no empty lines")
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                parts = line.split(" ", 3)
                self.assertEqual(len(parts), 4, line)
                if parts[1] == "TYPE":
                    self.assertIn(parts[3], ("counter", "gauge", "histogram"), line)
                    typed[parts[2]] = parts[3]
                continue
            self.assertFalse(line.startswith("#"), line)
            m = SAMPLE_RE.match(line)
            self.assertIsNotNone(m, "not a Prometheus sample line: %r" % line)
            name, labels = m.group(1), dict(LABEL_RE.findall(m.group(3) or ""))
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            self.assertTrue(name in typed or base in typed, "no # TYPE for %s" % name)
            for k, v in labels.items():
                self.assertIn(k, FIXED_LABELS, line)
                self.assertIn(v, FIXED_LABELS[k], "label value outside its fixed list: %s" % line)
            key = (name, frozenset(labels.items()))
            self.assertNotIn(key, samples, "duplicate sample: %s" % line)
            samples[key] = float(m.group(4))
        return samples

    def test_metrics_format_and_fixed_labels(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        r = self.daemon.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"))
        self.parse(r.text)
        # a download, a test, an event type nobody knows (its name must not become a label), a
        # grab, and a manual scan
        f = os.path.join(self.folder("Metrics Show", "Season 01"), "file.mkv")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)))
        self.assertEqual(self.daemon.webhook("radarr", rig.load_fixture("radarr-test")).status, 200)
        odd = rig.load_fixture("sonarr-grab")
        odd["eventType"] = 'Weird"} 1\n<script>'
        self.assertEqual(self.daemon.webhook("sonarr", odd).status, 200)
        self.assertEqual(self.daemon.webhook("sonarr", rig.load_fixture("sonarr-grab")).status, 200)
        self.assertEqual(self.scan(self.folder("Manual Metrics")).status, 202)
        self.assertTrue(self.wait_scans(os.path.dirname(f)))
        self.assertTrue(wait_until(lambda: len(self.plex.scans()) >= 2, 20))

        def sample(name, **labels):
            return s.get((name, frozenset(labels.items())))
        self.assertTrue(wait_until(lambda: self.parse(self.daemon.get("/metrics").text).get(
            ("pss_scans_total", frozenset({"outcome": "ok"}.items()))) == 2, 20))
        s = self.parse(self.daemon.get("/metrics").text)
        self.assertEqual(sample("pss_webhooks_total", app="sonarr", event="download"), 1)
        self.assertEqual(sample("pss_webhooks_total", app="sonarr", event="grab"), 1)
        self.assertEqual(sample("pss_webhooks_total", app="sonarr", event="other"), 1)
        self.assertEqual(sample("pss_webhooks_total", app="radarr", event="test"), 1)
        self.assertEqual(sample("pss_webhooks_total", app="lidarr", event="download"), 0)
        self.assertEqual(sample("pss_manual_requests_total"), 1)
        for src in SOURCES:
            self.assertEqual(sample("pss_triggers_total", source=src), 0, src)
        self.assertEqual(sample("pss_scans_total", outcome="ok"), 2)
        self.assertEqual(sample("pss_plex_calls_total", outcome="ok"), 2)
        self.assertIsNotNone(sample("pss_rclone_calls_total", outcome="ok"))
        for st in STATES:
            self.assertIsNotNone(sample("pss_queue_entries", state=st), st)
        self.assertEqual(sample("pss_plex_up"), 1)
        self.assertEqual(sample("pss_rclone_up"), 1)
        # the histogram: cumulative buckets, +Inf equals the count
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in s.items()
                          if k[0] == "pss_sync_duration_seconds_bucket"), key=lambda x: x[0])
        self.assertEqual([b for b, _ in buckets][-1], float("inf"))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(counts[-1], sample("pss_sync_duration_seconds_count"))
        self.assertEqual(counts[-1], 2)
        self.assertGreater(sample("pss_sync_duration_seconds_sum"), 0)
        self.assertNotIn("Weird", self.daemon.get("/metrics").text)


class StaticTest(ApiCase):
    def start_with_web_copy(self):
        """The daemon serving a copy of web/ with symlinks planted in it: one to a file outside,
        one to a directory outside, one to a file inside."""
        web = os.path.join(self.tmp, "web")
        shutil.copytree(WEB_DIR, web)
        self.secret = os.path.join(self.tmp, "secret.txt")
        with open(self.secret, "w") as f:
            f.write("top secret")
        os.symlink(self.secret, os.path.join(web, "static", "escape.css"))
        os.symlink(self.tmp, os.path.join(web, "static", "outside"))
        os.symlink(os.path.join(web, "static", "style.css"), os.path.join(web, "static", "alias.css"))
        os.symlink("../index.html", os.path.join(web, "static", "up.html"))
        env = self.daemon_env(PSS_WEB_DIR=web)
        os.makedirs(env["STATE_DIR"], mode=0o700, exist_ok=True)
        workdir = os.path.join(self.tmp, "run")
        os.makedirs(workdir, exist_ok=True)
        self.daemon = Daemon(workdir, env, env_file=False)
        self.addCleanup(self._stop_daemon)
        self.daemon.start()
        return web

    def test_traversal_and_symlink_escapes_are_404(self):
        self.start_with_web_copy()
        for target in ("/static/../index.html", "/static/%2e%2e/index.html",
                       "/static/%2E%2E/%2e%2e/secret.txt", "/static/..%2f..%2fsecret.txt",
                       "/static/%2fetc%2fpasswd", "/static//etc/passwd", "/static/",
                       "/static/.%2e/index.html", "/static/..\\index.html",
                       "/static/%5c..%5cindex.html", "/static/escape.css",
                       "/static/outside/secret.txt", "/static/outside/web/index.html",
                       "/static/up.html", "/static/nope.css", "/static/%zz",
                       "/static/../../../../etc/passwd"):
            with self.subTest(target=target):
                r = self.daemon.request("GET", target)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"top secret", r.body)
                self.assertNotIn(b"<!DOCTYPE html>", r.body)
        # a symlink that stays inside web/ is fine
        r = self.daemon.request("GET", "/static/alias.css")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("Content-Type", "").startswith("text/css"))

    def test_get_and_head_only(self):
        self.start_daemon()
        g = self.daemon.request("GET", "/static/app.js")
        self.assertEqual(g.status, 200)
        self.assertEqual(g.headers.get("X-Content-Type-Options"), "nosniff")
        h = self.daemon.request("HEAD", "/static/app.js")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.body, b"")
        self.assertEqual(h.headers.get("Content-Length"), str(len(g.body)))
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            with self.subTest(method=method):
                r = self.daemon.request(method, "/static/app.js", body=b"" if method != "OPTIONS" else None)
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.headers.get("Allow"), "GET, HEAD")


if __name__ == "__main__":
    unittest.main()
