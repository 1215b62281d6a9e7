"""End-to-end behaviour of the daemon: *arr webhook in, rclone VFS refreshed, Plex asked to scan.

Each test starts its own Plex double, rclone (`serve http` with --rc, so the VFS listing can be
read exactly as a mount would show it) and daemon, on free ports, in its own temp dir. Arr paths,
host paths and Plex paths are the same in these tests (no replacements). Outcomes are awaited by
polling with generous timeouts; the only fixed waits are quiet periods proving that something
does not happen."""

import os
import re
import threading
import time
import unittest

import rig
from rig import (MANUAL_PASS, MANUAL_USER, PLEX_TOKEN, Daemon, RigTestCase, free_port,
                 load_fixture, rewrite_paths, stays, touch, wait_until)

ODD_NAME = "Amélie & Co's #1 100% ?+x (2001)"
UNRESERVED_OR_ESCAPE = re.compile(r"^(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*$")


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class CoreCase(RigTestCase):
    """Base for the daemon tests (skipped as a whole when there is no binary to test)."""

    def watch_visibility(self, folder, filename):
        """Install a Plex hook: when Plex is asked to scan `folder`, check right then, through
        rclone's VFS, that `filename` is listed in it. Returns the list the results go to."""
        seen = []
        rel = self.rclone.rel(folder)
        want = folder.encode("utf-8")

        def hook(rec):
            if rec.route == "refresh" and rec.scan_path == want:
                try:
                    seen.append(self.rclone.lists(rel, filename))
                except Exception as e:  # recorded, so the test fails with the reason
                    seen.append(repr(e))
            return None
        self.plex.hook = hook
        return seen

    def only_scans_of(self, *folders):
        """True while every refresh the double saw is of one of folders."""
        allowed = {f.encode("utf-8") for f in folders}
        return all(r.scan_path in allowed for r in self.plex.refreshes())


class VfsBeforePlexTest(CoreCase):
    """The point of the daemon: Plex is asked to scan a folder only once rclone's VFS shows it."""

    def prepare_media(self):
        touch(self.show_file("Old Show"))

    def test_brand_new_show_is_visible_through_vfs_before_plex_scans_it(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        # rclone lists tv/ once and caches it for an hour
        self.assertEqual(self.rclone.list_dir("tv"), {"Old Show"})
        f = self.show_file("New Show")
        touch(f)
        folder = os.path.dirname(f)
        # precondition: the cached listing hides the new show and its season
        self.assertEqual(self.rclone.list_dir("tv"), {"Old Show"},
                         "rclone re-listed by itself; the test would prove nothing")
        self.assertIsNone(self.rclone.list_dir(self.rclone.rel(folder)))
        seen = self.watch_visibility(folder, os.path.basename(f))

        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertWebhookAccepted(r, ("queued", "unresolved"))

        self.assertTrue(self.wait_scans(folder), "no scan of %s" % folder)
        self.assertEqual(seen[:1], [True], "the file was not visible through rclone's VFS "
                                           "when Plex was asked to scan its folder")
        self.assertEqual(self.plex.scans(path=folder)[0].section, "1")

    def test_new_episode_in_listed_season_is_listed_at_scan_time(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        season = os.path.dirname(self.show_file("Old Show"))
        rel = self.rclone.rel(season)
        first = os.path.basename(self.show_file("Old Show"))
        self.assertEqual(self.rclone.list_dir(rel), {first})
        f = self.show_file("Old Show", name="Old Show - S01E02 - Second [WEBDL-1080p].mkv")
        touch(f)
        self.assertEqual(self.rclone.list_dir(rel), {first},
                         "rclone re-listed by itself; the test would prove nothing")
        seen = self.watch_visibility(season, os.path.basename(f))

        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertWebhookAccepted(r, ("queued", "unresolved"))

        self.assertTrue(self.wait_scans(season), "no scan of %s" % season)
        self.assertEqual(seen[:1], [True], "the new episode was not listed by rclone's VFS "
                                           "when Plex was asked to scan its season")


class DebounceTest(CoreCase):
    def test_burst_for_one_folder_is_one_scan(self):
        # WEBHOOK_DELAY=2 rather than 1: the 25 requests must all land inside one window even
        # on a slow machine (checked below), or a second scan would be correct behaviour.
        self.start_daemon(WEBHOOK_DELAY="2")
        files = [self.show_file("Burst Show", name="Burst Show - S01E%02d.mkv" % i)
                 for i in range(1, 26)]
        for f in files:
            touch(f)
        folder = os.path.dirname(files[0])
        payloads = [self.sonarr_for(f) for f in files]
        answers = [None] * len(payloads)
        answered_at = [0.0] * len(payloads)
        n_threads = 5  # 5 connections at a time, 5 requests each: quick, yet a modest backlog
        barrier = threading.Barrier(n_threads)

        def send(k):
            barrier.wait(10)
            for i in range(k, len(payloads), n_threads):
                try:
                    answers[i] = self.daemon.webhook("sonarr", payloads[i])
                except OSError as e:
                    answers[i] = e
                answered_at[i] = time.monotonic()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for a in answers:
            self.assertIsInstance(a, rig.Response, a)
            self.assertWebhookAccepted(a, ("queued", "unresolved"))

        scans = self.wait_scans(folder)
        self.assertTrue(scans, "no scan of %s" % folder)
        self.assertLess(max(answered_at), scans[0].time,
                        "precondition: the burst was slower than WEBHOOK_DELAY")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 4.0),
                        "more than one Plex call: %r" % self.plex.refreshes())
        self.assertEqual(self.plex.scans()[0].scan_path, folder.encode())

    def test_five_shows_are_five_scans(self):
        self.start_daemon(WEBHOOK_DELAY="1")
        shows = ["Show %d" % i for i in range(1, 6)]
        files = {s: [self.show_file(s, name="%s - S01E%02d.mkv" % (s, e)) for e in (1, 2, 3)]
                 for s in shows}
        for fs in files.values():
            for f in fs:
                touch(f)
        for e in range(3):  # interleaved, as imports of several shows arrive
            for s in shows:
                r = self.daemon.webhook("sonarr", self.sonarr_for(files[s][e]))
                self.assertWebhookAccepted(r, ("queued", "unresolved"))
        folders = {os.path.dirname(files[s][0]).encode() for s in shows}

        self.assertTrue(wait_until(lambda: {r.scan_path for r in self.plex.scans()} == folders,
                                   30), "scans: %r" % self.plex.refreshes())
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 5, 3.0),
                        "expected exactly 5 Plex calls: %r" % self.plex.refreshes())


class PlexRequestTest(CoreCase):
    def test_odd_folder_name_reaches_plex_byte_exact(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        folder = os.path.join(self.movies, ODD_NAME)
        f = os.path.join(folder, ODD_NAME + " [Bluray-1080p].mkv")
        touch(f)
        r = self.daemon.webhook("radarr", rig.radarr_download(folder, os.path.basename(f)))
        body = self.assertWebhookAccepted(r, ("queued", "unresolved"))
        if body["status"] == "queued":
            self.assertIn({"section": 2, "plex_path": folder},
                          [{"section": e.get("section"), "plex_path": e.get("plex_path")}
                           for e in body.get("entries", [])], body)

        self.assertTrue(wait_until(lambda: self.plex.refreshes(), 30), "no Plex call")
        rec = self.plex.refreshes()[0]
        self.assertEqual(rec.scan_path, folder.encode("utf-8"))
        self.assertEqual(rec.section, "2")
        self.assertEqual(rec.status, 200)
        raw = [p.partition("=")[2] for p in rec.query.split("&") if p.startswith("path=")]
        self.assertEqual(len(raw), 1, rec.target)
        self.assertRegex(raw[0], UNRESERVED_OR_ESCAPE,
                         "every byte outside unreserved must be percent-encoded")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 1.5))

    def test_scan_request_carries_token_and_client_headers(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        f = self.show_file("Header Show")
        touch(f)
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)),
                                   ("queued", "unresolved"))
        scans = self.wait_scans(os.path.dirname(f))
        self.assertTrue(scans, "no scan")
        h = scans[0].headers
        self.assertEqual(scans[0].method, "GET")
        self.assertEqual(h.get("x-plex-token"), PLEX_TOKEN)
        self.assertIn("application/json", h.get("accept", ""))
        self.assertTrue(h.get("x-plex-client-identifier"))
        self.assertTrue(h.get("x-plex-product"))
        # the token travels in the header, not in the URL (URLs end up in logs)
        self.assertNotIn("X-Plex-Token", scans[0].target)


class MinimumAgeTest(CoreCase):
    def test_minimum_age_holds_a_fresh_file_then_lets_it_through(self):
        self.start_daemon(WEBHOOK_DELAY="0", MINIMUM_AGE="3s")
        f = self.show_file("Fresh Show")
        mtime = touch(f)
        folder = os.path.dirname(f)
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)),
                                   ("queued", "unresolved"))
        self.assertTrue(self.wait_scans(folder, timeout=30), "no scan after the minimum age")
        first = self.plex.refreshes()[0]
        self.assertEqual(first.scan_path, folder.encode())
        # the scan came no earlier than mtime + MINIMUM_AGE (small tolerance for clock reads)
        self.assertGreaterEqual(first.wall_time, mtime + 3.0 - 0.25,
                                "scanned %.2f s after the file's mtime"
                                % (first.wall_time - mtime))


class AnchorTest(CoreCase):
    """Two mounts (a/, b/) under rclone's root, each with an anchor file; a's is missing."""

    def sections(self):
        self.mount_a = os.path.join(self.media, "a")
        self.mount_b = os.path.join(self.media, "b")
        return [{"key": "1", "type": "show", "title": "TV A",
                 "locations": [os.path.join(self.mount_a, "tv")]},
                {"key": "3", "type": "show", "title": "TV B",
                 "locations": [os.path.join(self.mount_b, "tv")]}]

    def prepare_media(self):
        self.file_a = os.path.join(self.mount_a, "tv", "Show A", "Season 01", "a.mkv")
        self.file_b = os.path.join(self.mount_b, "tv", "Show B", "Season 01", "b.mkv")
        touch(self.file_a)
        touch(self.file_b)
        touch(os.path.join(self.mount_b, ".anchor"))

    def test_missing_anchor_holds_only_its_mount(self):
        anchor_a = os.path.join(self.mount_a, ".anchor")
        self.start_daemon(WEBHOOK_DELAY="0", ANCHOR_FILES='["%s", "%s"]'
                          % (anchor_a, os.path.join(self.mount_b, ".anchor")))
        folder_a, folder_b = os.path.dirname(self.file_a), os.path.dirname(self.file_b)
        for f in (self.file_a, self.file_b):
            show_root = os.path.dirname(os.path.dirname(f))
            p = rig.sonarr_download(show_root, os.path.relpath(f, show_root),
                                    title=os.path.basename(show_root))
            self.assertWebhookAccepted(self.daemon.webhook("sonarr", p),
                                       ("queued", "unresolved"))

        self.assertTrue(self.wait_scans(folder_b), "mount B was held too")
        self.assertTrue(stays(lambda: not self.plex.refreshes(path=folder_a), 2.0),
                        "mount A was scanned while its anchor is missing")
        touch(anchor_a)
        # entries held by an anchor are re-checked every 30 s
        self.assertTrue(self.wait_scans(folder_a, timeout=50),
                        "mount A was not scanned after its anchor came back")
        self.assertEqual(self.plex.scans(path=folder_a)[0].section, "1")
        self.assertEqual(len(self.plex.refreshes(path=folder_b)), 1)


class RetryTest(CoreCase):
    def test_plex_503_then_200_is_one_scan_after_a_backoff(self):
        self.start_daemon(WEBHOOK_DELAY="0", RETRY_MAX_DELAY="2s")
        self.plex.fail_next(1, 503)
        f = self.show_file("Retry Show")
        touch(f)
        folder = os.path.dirname(f)
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)),
                                   ("queued", "unresolved"))
        self.assertTrue(wait_until(lambda: len(self.plex.refreshes(path=folder)) >= 2, 30),
                        "no retry after a 503: %r" % self.plex.refreshes())
        recs = self.plex.refreshes(path=folder)
        self.assertEqual([r.status for r in recs[:2]], [503, 200])
        self.assertGreater(recs[1].time, recs[0].time)
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 2, 3.0),
                        "Plex called again after a successful scan: %r" % self.plex.refreshes())


class PlexDownAtStartTest(CoreCase):
    plex_running_at_start = False

    def test_unresolved_while_plex_down_then_scanned_once_plex_answers(self):
        self.start_daemon(WEBHOOK_DELAY="0", SECTION_REFRESH="2s")
        f = self.show_file("Down Show")
        touch(f)
        folder = os.path.dirname(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertWebhookAccepted(r, ("unresolved",))
        self.assertEqual(self.daemon.get("/health").status, 200)

        self.plex.start()  # on the port the daemon was told
        self.assertTrue(self.wait_scans(folder, timeout=40),
                        "not scanned after Plex came up: %r" % self.plex.requests())
        self.assertEqual(self.plex.scans(path=folder)[0].section, "1")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 1.5))


class ManualTriggerTest(CoreCase):
    def test_manual_form_needs_basic_auth_then_scans_at_once(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        f = self.show_file("Manual Show")
        touch(f)
        folder = os.path.dirname(f)

        r = self.daemon.manual_post(folder)
        self.assertEqual(r.status, 401)
        self.assertRegex(r.headers.get("WWW-Authenticate", ""), r"(?i)^basic\b")
        r = self.daemon.manual_post(folder, MANUAL_USER, MANUAL_PASS + "x")
        self.assertEqual(r.status, 401)
        self.assertRegex(r.headers.get("WWW-Authenticate", ""), r"(?i)^basic\b")
        r = self.daemon.manual_post(folder, "someone", MANUAL_PASS)
        self.assertEqual(r.status, 401)
        self.assertEqual(self.plex.refreshes(), [])

        r = self.daemon.manual_post(folder, MANUAL_USER, MANUAL_PASS)
        self.assertTrue(200 <= r.status < 300, r)
        # WEBHOOK_DELAY is an hour: only a trigger that skips the debounce gets here
        self.assertTrue(self.wait_scans(folder, timeout=20), "manual trigger did not scan")

    def test_manual_page_needs_auth(self):
        self.start_daemon()
        self.assertEqual(self.daemon.get("/webhook/manual").status, 401)
        r = self.daemon.get("/webhook/manual", auth=(MANUAL_USER, MANUAL_PASS))
        self.assertEqual(r.status, 302)  # to the dashboard, which holds the form
        self.assertEqual(r.headers.get("Location"), "/")
        r = self.daemon.get("/", auth=(MANUAL_USER, MANUAL_PASS))
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.headers.get("Content-Type", ""))


class WebhookAnswersTest(CoreCase):
    """What each kind of request is answered, and that answers asking for nothing queue nothing:
    a sentinel scan is awaited after them (WEBHOOK_DELAY=0), then a quiet period."""

    def sentinel(self):
        f = self.show_file("Sentinel Show")
        touch(f)
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)),
                                   ("queued", "unresolved"))
        folder = os.path.dirname(f)
        self.assertTrue(self.wait_scans(folder), "the sentinel was not scanned")
        return folder

    def test_test_events_answer_200_and_queue_nothing(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        for app, name in (("sonarr", "sonarr-test"), ("radarr", "radarr-test")):
            r = self.daemon.webhook(app, load_fixture(name))
            self.assertEqual(r.status, 200, r)
            self.assertEqual((r.json() or {}).get("status"), "test_success", r)
        folder = self.sentinel()
        self.assertTrue(stays(lambda: self.only_scans_of(folder), 1.5), self.plex.refreshes())

    def test_grab_and_other_events_answer_200_and_queue_nothing(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        os.makedirs(os.path.join(self.tv, "Breaking Bad (2008)", "Season 01"))
        for app, name in (("sonarr", "sonarr-grab"), ("radarr", "radarr-grab"),
                          ("sonarr", "sonarr-health"), ("sonarr", "sonarr-applicationupdate")):
            p = rewrite_paths(load_fixture(name), rig.FIXTURE_MEDIA_ROOT, self.media)
            r = self.daemon.webhook(app, p)
            self.assertEqual(r.status, 200, "%s: %r" % (name, r))
            self.assertEqual((r.json() or {}).get("status"), "ignored", "%s: %r" % (name, r))
        folder = self.sentinel()
        self.assertTrue(stays(lambda: self.only_scans_of(folder), 1.5), self.plex.refreshes())

    def test_malformed_json_is_400(self):
        self.start_daemon()
        r = self.daemon.webhook("sonarr", b'{"eventType": "Download", "series": {"path": ')
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertEqual(body.get("status"), "bad_request", r)
        self.assertIsInstance(body.get("message"), str)
        self.assertTrue(body["message"])

    def test_wrong_content_type_is_415(self):
        self.start_daemon()
        f = self.show_file("Typed Show")
        touch(f)
        payload = self.sonarr_for(f)
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            r = self.daemon.webhook("sonarr", payload, content_type=ctype)
            self.assertEqual(r.status, 415, "%s: %r" % (ctype, r))

    def test_dot_dot_in_a_path_is_400(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        touch(self.show_file("Other"))
        p = rig.sonarr_download(os.path.join(self.tv, "Show", "..", "Other"), "Season 01/x.mkv")
        r = self.daemon.webhook("sonarr", p)
        self.assertEqual(r.status, 400, r)
        self.assertEqual((r.json() or {}).get("status"), "bad_request", r)
        p = rig.sonarr_download(os.path.join(self.tv, "Other"), "Season 01/../../../etc/x.mkv")
        r = self.daemon.webhook("sonarr", p)
        self.assertEqual(r.status, 400, r)
        self.assertEqual((r.json() or {}).get("status"), "bad_request", r)

    def test_folder_outside_every_library_is_skipped(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        probe = self.show_file("Probe Show")
        touch(probe)
        self.wait_library_list(probe)  # "skipped" needs a fresh library list
        elsewhere = os.path.join(self.tmp, "elsewhere", "Stray Show")
        touch(os.path.join(elsewhere, "Season 01", "x.mkv"))
        r = self.daemon.webhook("sonarr", rig.sonarr_download(elsewhere, "Season 01/x.mkv"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.json() or {}).get("status"), "skipped", r)
        probe_folder = os.path.dirname(probe)
        self.assertTrue(self.wait_scans(probe_folder), "the probe was not scanned")
        self.assertTrue(stays(lambda: self.only_scans_of(probe_folder), 1.5),
                        self.plex.refreshes())

    def test_sigterm_exits_cleanly(self):
        self.start_daemon()
        self.assertEqual(self.daemon.stop(), 0, "exit status after SIGTERM")


class NoConfigurationTest(CoreCase):
    """The binary in an empty directory with only PORT set."""
    use_rclone = False
    plex_running_at_start = False

    def test_starts_and_queues_unresolved_without_any_configuration(self):
        workdir = os.path.join(self.tmp, "empty")
        os.makedirs(workdir)
        self.daemon = Daemon(workdir, {"PORT": free_port()}, env_file=False)
        self.addCleanup(self._stop_daemon)
        self.daemon.start()
        r = self.daemon.webhook("sonarr", load_fixture("sonarr-download"))
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json() or {}).get("status"), "unresolved", r)

        def mentions_plex_not_configured():
            return any(re.search(r"plex", line, re.I)
                       and re.search(r"not configured|not set|unset|missing", line, re.I)
                       for line in self.daemon.log_lines())
        self.assertTrue(wait_until(mentions_plex_not_configured, 5),
                        "the log does not say Plex is not configured")


if __name__ == "__main__":
    unittest.main()
