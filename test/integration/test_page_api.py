"""What the page's first hour asks of the API (issue: the newcomer's first hour, items 7 to 9):
entries and history rows that lead with what they are (title, event, app) across a restart; the
senders (GET /api/sources) after a Test and a Download, refusals included, across a restart;
cancel, scan now and retry every parked entry (authentication, cross-site refusal, 404 and 409,
their effect through /api/queue and /api/history); /api/stats' setup block; and URL_BASE (the
page, the API, the webhooks and /health below it, 404 outside it, --health following it)."""

import json
import os
import re
import subprocess
import unittest
import urllib.parse

import rig
from rig import (MANUAL_PASS, MANUAL_USER, Daemon, DaemonError, RigTestCase, basic_auth, load_fixture,
                 rewrite_paths, touch, wait_until)

AUTH = (MANUAL_USER, MANUAL_PASS)
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FIXTURE_MEDIA = "/home/user/media"
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class PageApiCase(RigTestCase):
    use_rclone = False
    base = ""  # URL_BASE as the requests spell it

    def call(self, method, target, body=None, auth=AUTH, headers=None, json_body=None):
        hdrs = dict(headers or {})
        if auth is not None:
            hdrs["Authorization"] = basic_auth(*auth)
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        return self.daemon.request(method, self.base + target, body=body, headers=hdrs)

    def get_json(self, target):
        r = self.call("GET", target)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def queue(self):
        return self.get_json("/api/queue")["entries"]

    def entry(self, path):
        return next((e for e in self.queue() if e["path"] == path), None)

    def history(self, query=""):
        return self.get_json("/api/history?limit=500" + query)["items"]

    def sources(self):
        return {s["app"]: s for s in self.get_json("/api/sources")["sources"]}

    def fixture(self, name):
        """A fixture payload with its paths moved into this test's media tree."""
        return rewrite_paths(load_fixture(name), FIXTURE_MEDIA, self.media)

    def send(self, app, payload, via="webhook", auth=None, status=None):
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        hdrs = {"Content-Type": "application/json"}
        if auth is not None:
            hdrs["Authorization"] = basic_auth(*auth)
        r = self.daemon.request("POST", "%s/%s/%s" % (self.base, via, app), body=body, headers=hdrs)
        if status is not None:
            self.assertEqual(r.status, status, r)
        return r

    def wait_lists(self):
        """Until the daemon has read Plex's library list (a folder is then queued or skipped, not
        unresolved)."""
        def read():
            return all(t["libraries_read_at"] for t in self.get_json("/api/stats")["targets"])
        self.assertTrue(wait_until(read, 30), self.get_json("/api/stats"))

    def restart(self):
        env = self.daemon.env
        self.daemon.stop()
        self.daemon = Daemon(self.daemon.workdir, env)
        self.daemon.start()


class TitlesTest(PageApiCase):
    def test_entries_and_rounds_lead_with_what_they_are_across_a_restart(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.wait_lists()
        bb = os.path.join(self.tv, "Breaking Bad (2008)", "Season 01")
        grey = os.path.join(self.tv, "Grey's Anatomy (2005)", "Season 20")
        amelie = os.path.join(self.movies, "Am\u00e9lie (2001)")
        self.send("sonarr", self.fixture("sonarr-download"), status=202)
        self.send("sonarr", self.fixture("sonarr-download-upgrade"), status=202)
        self.send("radarr", self.fixture("radarr-download"), via="triggers", status=202)
        manual = os.path.join(self.tv, "Hand Picked")
        touch(os.path.join(manual, "x.mkv"))
        self.assertEqual(self.call("POST", "/api/scans", json_body={"path": manual}).status, 202)
        # a folder no library holds: its skipped round still says what it was
        r = self.send("lidarr", self.fixture("lidarr-download"), status=200)
        self.assertEqual(r.json()["status"], "skipped")

        want = {
            bb: ("Breaking Bad S01E01 \u00b7 Pilot", "import", "sonarr"),
            grey: ("Grey's Anatomy S20E01 \u00b7 We've Only Just Begun", "upgrade", "sonarr"),
            amelie: ("Am\u00e9lie (2001)", "import", "radarr"),
        }

        def check(entries):
            for path, (title, event, app) in want.items():
                e = next(e for e in entries if e["path"] == path)
                self.assertEqual((e["title"], e["event"], e["app"]), (title, event, app), e)

        check(self.queue())
        # an entry the manual scan made shows it as such; the scan is done at once (manual skips the
        # delay), so its round is in the history
        self.assertTrue(wait_until(lambda: any(h["path"] == manual and h["status"] == "ok" for h in self.history()),
                                   30), self.history())
        row = next(h for h in self.history() if h["path"] == manual)
        self.assertEqual((row["title"], row["event"], row["app"]), (None, "manual", None))
        skipped = next(h for h in self.history() if h["status"] == "skipped")
        self.assertEqual((skipped["title"], skipped["event"], skipped["app"]),
                         ("Sigur R\u00f3s \u2013 \u00c1g\u00e6tis byrjun", "import", "lidarr"))
        # a manual scan of a folder Sonarr named: the folder is still what Sonarr said it was
        self.assertEqual(self.call("POST", "/api/scans", json_body={"path": bb},
                                   headers={"Sec-Fetch-Site": "same-origin"}).status, 202)
        self.assertTrue(wait_until(lambda: any(h["path"] == bb for h in self.history()), 30), self.history())
        row = next(h for h in self.history() if h["path"] == bb)
        self.assertEqual((row["title"], row["event"], row["app"]),
                         ("Breaking Bad S01E01 \u00b7 Pilot", "manual", None))
        del want[bb]

        # a restart keeps them: the queue's entries and the history's rows
        self.restart()
        check(self.queue())
        row = next(h for h in self.history() if h["path"] == bb)
        self.assertEqual(row["title"], "Breaking Bad S01E01 \u00b7 Pilot")
        # the searches find a folder by what it is
        hits = self.get_json("/api/queue?search=anatomy")["entries"]
        self.assertEqual([e["path"] for e in hits], [grey])
        self.assertEqual([h["path"] for h in self.history("&search=pilot")], [bb])


class SourcesTest(PageApiCase):
    def test_a_test_then_a_download_then_a_restart(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        d = self.get_json("/api/sources")
        self.assertEqual([s["app"] for s in d["sources"]], ["sonarr", "radarr", "lidarr", "readarr", "manual"])
        for s in d["sources"]:
            self.assertIsNone(s["last_event"], s)
            self.assertIsNone(s["last_test_at"], s)
            self.assertIsNone(s["last_refused"], s)
            self.assertEqual(s["events"], 0)
        self.assertEqual(d["sources"][0]["path"], "/webhook/sonarr")
        self.assertEqual(d["sources"][4]["path"], "/triggers/manual")

        # Sonarr's Test button: the question "did Sonarr reach it?" is answered
        self.send("sonarr", self.fixture("sonarr-test"), status=200)
        s = self.sources()["sonarr"]
        self.assertEqual(s["last_event"]["type"], "Test")
        self.assertRegex(s["last_test_at"], ISO)
        self.assertEqual(s["last_event"]["at"], s["last_test_at"])
        self.assertEqual(s["events"], 1)
        test_at = s["last_test_at"]
        self.assertIsNone(self.sources()["radarr"]["last_event"])

        # then a real import, at /webhook/ and at autoscan's address alike
        self.send("sonarr", self.fixture("sonarr-download"), status=202)
        self.send("sonarr", self.fixture("sonarr-grab"), via="triggers", status=200)
        s = self.sources()["sonarr"]
        self.assertEqual(s["last_event"]["type"], "Grab")
        self.assertEqual(s["last_event"]["title"], "Breaking Bad S01E02 \u00b7 Cat's in the Bag...")
        self.assertRegex(s["last_event"]["at"], ISO)
        self.assertEqual(s["last_test_at"], test_at)
        self.assertEqual(s["events"], 3)
        self.send("radarr", self.fixture("radarr-download"), status=202)
        r = self.sources()["radarr"]
        self.assertEqual((r["last_event"]["type"], r["last_event"]["title"], r["events"]),
                         ("Download", "Am\u00e9lie (2001)", 1))

        # the manual trigger: autoscan's probe counts as its Test, a trigger as its event
        folder = os.path.join(self.tv, "Triggered", "Season 01")
        self.assertEqual(self.daemon.request("HEAD", "/triggers/manual").status, 200)
        m = self.sources()["manual"]
        self.assertEqual(m["last_event"]["type"], "probe")
        self.assertRegex(m["last_test_at"], ISO)
        r = self.daemon.request("POST", "/triggers/manual?dir=" + folder.replace(" ", "%20"))
        self.assertEqual(r.status, 202, r)
        m = self.sources()["manual"]
        self.assertEqual((m["last_event"]["type"], m["last_event"]["title"], m["events"]), ("autoscan", folder, 2))

        # all of it survives a restart
        before = self.sources()
        self.restart()
        self.assertEqual(self.sources(), before)

    def test_a_refused_webhook_says_why(self):
        self.start_daemon(WEBHOOK_USER="arr", WEBHOOK_PASS="arr-pass-7")
        payload = self.fixture("sonarr-test")
        self.send("sonarr", payload, status=401)  # no credentials: refused before the body
        s = self.sources()["sonarr"]
        self.assertEqual(s["last_refused"]["status"], 401)
        self.assertIn("WEBHOOK_USER", s["last_refused"]["reason"])
        self.assertRegex(s["last_refused"]["at"], ISO)
        self.assertIsNone(s["last_event"])
        self.assertEqual(s["events"], 0)
        self.send("radarr", load_fixture("radarr-test"), auth=("arr", "wrong"), status=401)
        self.assertIn("WEBHOOK_PASS", self.sources()["radarr"]["last_refused"]["reason"])
        # a body that is not JSON: the reason is the parser's
        r = self.daemon.request("POST", "/webhook/lidarr", body=b"{not json",
                                headers={"Content-Type": "application/json",
                                         "Authorization": basic_auth("arr", "arr-pass-7")})
        self.assertEqual(r.status, 400, r)
        lid = self.sources()["lidarr"]
        self.assertEqual((lid["last_refused"]["status"], lid["last_refused"]["reason"]),
                         (400, "body is not valid JSON"))
        # then the right credentials: it reached the daemon, and the refusal is still shown
        self.send("sonarr", payload, auth=("arr", "arr-pass-7"), status=200)
        s = self.sources()["sonarr"]
        self.assertEqual((s["last_event"]["type"], s["events"], s["last_refused"]["status"]), ("Test", 1, 401))
        # a Download naming a library's root: it arrived, and was refused for that
        self.wait_lists()
        self.send("sonarr", rig.sonarr_download(self.tv, "x.mkv", title="Rooted"), auth=("arr", "arr-pass-7"),
                  status=400)
        s = self.sources()["sonarr"]
        self.assertEqual((s["last_event"]["type"], s["events"], s["last_refused"]["status"]), ("Download", 2, 400))
        self.assertIn("library location", s["last_refused"]["reason"])
        # refusals are not written to disk: a restart forgets them, not the events
        self.restart()
        s = self.sources()["sonarr"]
        self.assertIsNone(s["last_refused"])
        self.assertEqual(s["events"], 2)

    def test_sources_need_the_page_credentials(self):
        self.start_daemon()
        self.assertEqual(self.call("GET", "/api/sources", auth=None).status, 401)
        r = self.call("POST", "/api/sources", body=b"{}", headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.headers.get("Allow"), "GET, HEAD")


class ActionsTest(PageApiCase):
    def sonarr_entry(self, show):
        f = self.show_file(show)
        self.send("sonarr", self.sonarr_for(f), status=202)
        e = self.entry(os.path.dirname(f))
        self.assertIsNotNone(e, self.queue())
        return e

    def test_every_action_needs_credentials_and_refuses_cross_site_calls(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.wait_lists()
        e = self.sonarr_entry("Guarded Show")
        for target in ("/api/queue/%d/cancel" % e["id"], "/api/queue/%d/now" % e["id"], "/api/retry-parked"):
            with self.subTest(target=target):
                self.assertEqual(self.call("POST", target, auth=None).status, 401)
                self.assertEqual(self.call("POST", target, headers=CROSS_SITE).status, 403)
                r = self.call("GET", target)
                self.assertEqual(r.status, 405, r)
                self.assertEqual(r.headers.get("Allow"), "POST")
        for target in ("/api/queue/%d/bogus" % e["id"], "/api/queue/0/cancel", "/api/queue/x/now",
                       "/api/queue/%d/cancel/x" % e["id"]):
            self.assertEqual(self.call("POST", target).status, 404, target)
        # nothing happened to it
        self.assertEqual(self.entry(e["path"])["state"], "waiting")
        self.assertEqual(self.entry(e["path"])["due"], e["due"])

    def test_cancel_removes_an_entry_for_good_and_closes_its_round(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.wait_lists()
        e = self.sonarr_entry("Unwanted Show")
        keep = self.sonarr_entry("Wanted Show")
        r = self.call("POST", "/api/queue/%d/cancel" % e["id"], headers={"Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"cancelled": e["id"]})
        self.assertEqual([x["path"] for x in self.queue()], [keep["path"]])
        rows = [h for h in self.history() if h["path"] == e["path"]]
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual((rows[0]["status"], rows[0]["title"], rows[0]["event"], rows[0]["app"]),
                         ("cancelled", "Unwanted Show S01E01 \u00b7 Pilot", "import", "sonarr"))
        self.assertRegex(rows[0]["error"], r"^cancelled by admin from 127\.0\.0\.1$")
        self.assertEqual(rows[0]["rclone"], "skipped")
        self.assertEqual(self.get_json("/api/stats")["syncs"]["cancelled"], 1)
        self.assertEqual([h["path"] for h in self.history("&status=cancelled")], [e["path"]])
        self.assertTrue(self.daemon.log_matches(r"INFO .*cancelled '%s' \(entry %d, waiting\) by admin from "
                                                r"127\.0\.0\.1" % (re.escape(e["path"]), e["id"])))
        # gone for good: again is 404, and a restart does not bring it back
        self.assertEqual(self.call("POST", "/api/queue/%d/cancel" % e["id"]).status, 404)
        self.restart()
        self.assertEqual([x["path"] for x in self.queue()], [keep["path"]])
        self.assertEqual(self.plex.scans(path=e["path"]), [])

    def test_scan_now_skips_the_delay(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.wait_lists()
        e = self.sonarr_entry("Impatient Show")
        r = self.call("POST", "/api/queue/%d/now" % e["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["id"], e["id"])
        self.assertRegex(r.json()["due"], ISO)
        self.assertTrue(self.wait_scans(e["path"]), "no scan after 'now'")
        self.assertTrue(wait_until(lambda: self.entry(e["path"]) is None, 30), self.queue())
        self.assertTrue(self.daemon.log_matches(r"INFO .*scan of '%s' \(entry %d, waiting\) asked now by admin" %
                                                (re.escape(e["path"]), e["id"])))
        self.assertEqual(self.call("POST", "/api/queue/%d/now" % e["id"]).status, 404)

    def test_scan_now_keeps_the_minimum_age(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h", MINIMUM_AGE="1h")
        self.wait_lists()
        f = self.show_file("Fresh Show")
        touch(f)  # written just now: an hour too young
        self.send("sonarr", self.sonarr_for(f), status=202)
        e = self.entry(os.path.dirname(f))
        self.assertEqual(self.call("POST", "/api/queue/%d/now" % e["id"]).status, 200)
        self.assertTrue(wait_until(lambda: (self.entry(e["path"]) or {}).get("state") == "aging", 30), self.queue())
        self.assertEqual(self.plex.scans(path=e["path"]), [])
        # asked again, it is checked again, and waits again
        self.assertEqual(self.call("POST", "/api/queue/%d/now" % e["id"]).status, 200)
        self.assertTrue(wait_until(lambda: (self.entry(e["path"]) or {}).get("state") == "aging", 30), self.queue())
        self.assertEqual(self.plex.scans(path=e["path"]), [])

    def test_an_entry_being_scanned_is_neither_cancelled_nor_run_again(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        self.plex.delay = 4.0  # the scan request is held long enough to be looked at
        self.addCleanup(setattr, self.plex, "delay", 0.0)
        f = self.show_file("Busy Show")
        self.send("sonarr", self.sonarr_for(f), status=202)
        path = os.path.dirname(f)
        self.assertTrue(wait_until(lambda: (self.entry(path) or {}).get("state") == "syncing", 30), self.queue())
        e = self.entry(path)
        for action in ("cancel", "now"):
            r = self.call("POST", "/api/queue/%d/%s" % (e["id"], action))
            self.assertEqual(r.status, 409, r)
            self.assertIn("being scanned right now", r.json()["message"])
        self.plex.delay = 0.0
        self.assertTrue(self.wait_scans(path), "the scan did not finish")
        self.assertTrue(wait_until(lambda: self.entry(path) is None, 30), self.queue())

    def test_without_a_media_server_an_entry_waits_and_cannot_run_now(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h", PLEX_URL=None, PLEX_TOKEN=None)
        f = self.show_file("Early Show")
        self.send("sonarr", self.sonarr_for(f), status=202)
        e = self.entry(os.path.dirname(f))
        self.assertEqual(e["state"], "unresolved")
        r = self.call("POST", "/api/queue/%d/now" % e["id"])
        self.assertEqual(r.status, 409, r)
        self.assertIn("library list", r.json()["message"])
        # cancelling it works
        self.assertEqual(self.call("POST", "/api/queue/%d/cancel" % e["id"]).status, 200)
        self.assertEqual(self.queue(), [])
        setup = self.get_json("/api/stats")["setup"]
        self.assertEqual(setup["targets"], 0)


class RetryParkedTest(PageApiCase):
    use_rclone = True

    def test_retry_parked_retries_every_parked_entry(self):
        # rclone has no VFS by this name: a configuration error, so every entry is parked
        self.start_daemon(RCLONE_FS="nosuchremote:")
        self.assertEqual(self.call("POST", "/api/retry-parked").json(), {"retried": 0})
        paths = []
        for show in ("Parked One", "Parked Two"):
            folder = os.path.join(self.tv, show)
            touch(os.path.join(folder, "x.mkv"))
            self.assertEqual(self.call("POST", "/api/scans", json_body={"path": folder}).status, 202)
            paths.append(folder)

        def parked_attempts():
            rows = {h["path"]: h["attempts"] for h in self.history("&status=parked")}
            return [rows.get(p) for p in paths]
        self.assertTrue(wait_until(lambda: parked_attempts() == [1, 1], 30), self.history())
        e = self.entry(paths[0])
        self.assertEqual(self.call("POST", "/api/queue/%d/now" % e["id"]).status, 409)  # parked: retry is its way
        r = self.call("POST", "/api/retry-parked", headers={"Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"retried": 2})
        # each ran again, as the per-entry retry runs it: the round's second attempt
        self.assertTrue(wait_until(lambda: parked_attempts() == [2, 2], 30), self.history())
        self.assertTrue(self.daemon.log_matches(r"INFO .*retry of every parked folder \(2\) asked by admin"))


class SetupTest(PageApiCase):
    def test_stats_say_which_file_how_many_servers_and_how_to_reload(self):
        self.start_daemon()
        setup = self.get_json("/api/stats")["setup"]
        self.assertEqual(setup["env_file"], os.path.realpath(self.daemon.env_path))
        self.assertEqual(setup["targets"], 1)
        self.assertEqual(setup["url_base"], "")
        self.assertFalse(setup["webhook_credentials"])
        if os.path.exists("/run/.containerenv"):
            self.assertEqual(setup["reload"], "podman kill -s HUP <container>")
        elif os.path.exists("/.dockerenv"):
            self.assertEqual(setup["reload"], "docker kill -s HUP <container>")
        else:
            self.assertEqual(setup["reload"], "kill -HUP %d" % self.daemon.proc.pid)

    def test_under_systemd_the_reload_is_systemctls(self):
        self.daemon_proc_env = {"INVOCATION_ID": "0123456789abcdef0123456789abcdef"}
        self.start_daemon(WEBHOOK_USER="arr", WEBHOOK_PASS="x-pass")
        setup = self.get_json("/api/stats")["setup"]
        self.assertRegex(setup["reload"], r"^systemctl reload [\w@.\-]+$")
        self.assertTrue(setup["webhook_credentials"])


class UrlBaseTest(PageApiCase):
    base = "/pss"

    def test_everything_is_served_below_the_base_and_nothing_outside(self):
        self.start_daemon(URL_BASE="pss/", WEBHOOK_DELAY="0")  # normalized to /pss
        get = self.daemon.request
        # the page, its files, the API, health and metrics below the base
        r = self.call("GET", "/")
        self.assertEqual(r.status, 200, r)
        self.assertIn('<script src="static/app.js"', r.text)
        for target, status in (("/pss/static/app.js", 200), ("/pss/static/style.css", 200), ("/pss/health", 200),
                               ("/pss/metrics", 200), ("/pss/favicon.ico", 200)):
            self.assertEqual(get("GET", target).status, status, target)
        self.assertEqual(self.get_json("/api/stats")["setup"]["url_base"], "/pss")
        self.assertEqual(self.sources()["sonarr"]["path"], "/pss/webhook/sonarr")
        # the base itself and the root lead to the page; everything else outside is 404
        for target in ("/pss", "/"):
            r = get("GET", target)
            self.assertEqual((r.status, r.headers.get("Location")), (302, "/pss/"), target)
        for method, target in (("GET", "/health"), ("GET", "/api/queue"), ("GET", "/static/app.js"),
                               ("POST", "/webhook/sonarr"), ("GET", "/pssx/health"), ("POST", "/"),
                               ("GET", "/other/pss/health")):
            r = get(method, target, body=b"{}" if method == "POST" else None,
                    headers={"Content-Type": "application/json"})
            self.assertEqual(r.status, 404, (method, target, r))
            self.assertIn("URL_BASE=/pss", r.json()["message"])
        # the old manual page leads to the page below the base, and its form answer links there
        r = self.call("GET", "/webhook/manual")
        self.assertEqual((r.status, r.headers.get("Location")), (302, "/pss/"))
        folder = os.path.join(self.tv, "Form Show")
        touch(os.path.join(folder, "x.mkv"))
        r = self.daemon.request("POST", "/pss/webhook/manual", body=urllib.parse.urlencode({"path": folder}).encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded",
                                         "Authorization": basic_auth(*AUTH)})
        self.assertEqual(r.status, 200, r)
        self.assertIn('href="/pss/static/style.css"', r.text)
        self.assertIn('action="/pss/webhook/manual"', r.text)
        # webhooks and triggers below the base
        f = self.show_file("Based Show")
        self.send("sonarr", self.sonarr_for(f), status=202)
        self.assertTrue(self.wait_scans(os.path.dirname(f)), "no scan of a webhook below URL_BASE")
        r = get("GET", "/pss/triggers/manual")
        self.assertEqual(r.status, 200, r)
        r = get("GET", "/pss/webhook/radarr")  # a browser on the address: the page is named below the base
        self.assertEqual(r.status, 405)
        self.assertIn("/pss/.", r.text)
        # --health asks below the base
        out = subprocess.run([self.daemon.binary, "--env-file", self.daemon.env_path, "--health"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out)
        self.assertIn("/pss/health", out.stdout)

    def test_a_base_that_is_not_a_path_is_refused_at_start(self):
        env = self.daemon_env(URL_BASE="https://example.org/pss")
        d = Daemon(os.path.join(self.tmp, "bad"), env)
        with self.assertRaises(DaemonError):
            d.start(timeout=10.0)
        self.assertEqual(d.proc.wait(timeout=10), 1)
        self.assertRegex(d.log(), r"URL_BASE: only the path of the address, such as /pss")


if __name__ == "__main__":
    unittest.main()
