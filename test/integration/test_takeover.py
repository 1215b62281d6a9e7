"""A folder's sync or check that ends while a scan of an ancestor folder waits for it: the
ancestor takes its work over (DESIGN.md "The queue", Syncing), and the daemon goes on with the
ancestor alone. Under AddressSanitizer these are where the daemon used to read the entry the queue
had just freed.

- Plex fails: the episode folder's scan is held inside the Plex double (a hook that waits on a
  gate) so the series folder's manual scan arrives while it is syncing; the gate then opens and
  the double answers 503, a transient failure.
- Minimum age: the episode folder's files are on a FUSE mount (rclone mounting an HTTP listing
  this test serves), and the listing of its folder is held, so the age check's stat hangs while
  the series folder's manual scan arrives; the gate then opens, the file is not there, the event
  time decides and the folder is too young. Skipped where FUSE cannot be mounted.

Either way the daemon must stay up, scan the series folder, and never scan the episode folder
again on its own."""

import html
import os
import re
import shutil
import subprocess
import threading
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import rig
from rig import (MANUAL_PASS, MANUAL_USER, RCLONE, RigTestCase, basic_auth, stays, touch,
                 wait_until)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class TakeoverCase(RigTestCase):

    def queue_entry(self, plex_path):
        r = self.daemon.request("GET", "/api/queue",
                                headers={"Authorization": basic_auth(MANUAL_USER, MANUAL_PASS)})
        self.assertEqual(r.status, 200, r)
        for e in r.json()["entries"]:
            if e["plex_path"] == plex_path:
                return e
        return None

    def hold_plex_scan_then_fail(self, folder, status=503):
        """Install a Plex hook: the first scan of `folder` waits until the returned gate is set,
        then is answered `status`. Returns (entered, gate), two threading.Events."""
        entered, gate = threading.Event(), threading.Event()
        want = folder.encode("utf-8")
        self.addCleanup(gate.set)  # never leave a request thread waiting

        def hook(rec):
            if rec.route == "refresh" and rec.scan_path == want and not entered.is_set():
                entered.set()
                gate.wait(30)
                return status
            return None
        self.plex.hook = hook
        return entered, gate


class SyncEndsUnderAWaitingAncestorTest(TakeoverCase):

    def test_failed_episode_scan_is_taken_over_by_the_waiting_series_scan(self):
        # PLEX_TIMEOUT leaves the held request far more time than the test needs
        self.start_daemon(WEBHOOK_DELAY="0", RETRY_MAX_DELAY="2s", PLEX_TIMEOUT="60s")
        f = self.show_file("Takeover Show")
        touch(f)
        season = os.path.dirname(f)
        series = os.path.dirname(season)
        entered, gate = self.hold_plex_scan_then_fail(season)

        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)),
                                   ("queued", "unresolved"))
        self.assertTrue(entered.wait(30), "the episode folder was never sent to Plex")
        self.assertEqual(self.queue_entry(season)["state"], "syncing")

        # The series folder's scan arrives while its episode folder syncs: it waits for it.
        r = self.daemon.manual_post(series, MANUAL_USER, MANUAL_PASS)
        self.assertTrue(200 <= r.status < 300, r)
        waiting = wait_until(lambda: self.queue_entry(series), 20)
        self.assertTrue(waiting, "the series folder was not queued")
        self.assertIn(waiting["state"], ("waiting", "ready"))
        self.assertEqual(self.plex.refreshes(path=series), [])

        gate.set()  # the episode folder's Plex call now fails transiently
        self.assertTrue(wait_until(lambda: self.queue_entry(season) is None, 20),
                        "the episode folder's entry was not taken over")
        self.assertTrue(self.daemon.running(), "the daemon died when the series scan took over")
        # Its backoff is kept (RETRY_MAX_DELAY=2s), then one scan of the series covers both.
        self.assertTrue(self.wait_scans(series, timeout=30), "the series folder was not scanned")
        self.assertTrue(wait_until(lambda: self.queue_entry(series) is None, 20))
        self.assertEqual([r.status for r in self.plex.refreshes(path=season)], [503])
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 2, 2.0),
                        "Plex was called again: %r" % self.plex.refreshes())
        self.assertTrue(self.daemon.log_matches(r"taken over by '%s'" % re.escape(series)),
                        "the log does not say which entry carries the work")
        self.assertTrue(self.daemon.running())


class GatedListing:
    """An HTTP server listing a fixed tree of folders the way rclone's http backend reads a
    listing (<a href="name/">), files none. The listing of `held` waits on `gate` (entered is set
    when it starts waiting) once hold() was called."""

    def __init__(self, folders):
        self.children = {"": set()}
        for f in folders:
            parts = f.strip("/").split("/")
            for i in range(len(parts)):
                self.children.setdefault("/".join(parts[:i + 1]), set())
                self.children["/".join(parts[:i])].add(parts[i])
        self.held = None
        self.entered, self.gate = threading.Event(), threading.Event()
        listing = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                listing.answer(self)
            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.server.server_address[1]

    def hold(self, folder):
        self.held = folder.strip("/")

    def answer(self, h):
        path = urllib.parse.unquote(h.path.partition("?")[0]).strip("/")
        if path == self.held and not self.entered.is_set():
            self.entered.set()
            self.gate.wait(30)
        names = self.children.get(path)
        if names is None:
            body, status = b"", 404
        else:
            body = ("<html><body>\n" + "".join(
                '<a href="%s/">%s/</a>\n' % (html.escape(urllib.parse.quote(n)), html.escape(n))
                for n in sorted(names)) + "</body></html>\n").encode("utf-8")
            status = 200
        h.send_response(status)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def stop(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


class AgeCheckEndsUnderAWaitingAncestorTest(TakeoverCase):
    use_rclone = False  # the rclone step is not what this is about; the mount is

    def sections(self):
        self.mnt = os.path.join(self.tmp, "mnt")
        return [{"key": "1", "type": "show", "title": "TV Shows",
                 "locations": [os.path.join(self.mnt, "tv")]}]

    def mount(self, folders):
        """rclone mounts a GatedListing of folders at self.mnt; skips the test without FUSE."""
        fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
        if not os.path.exists("/dev/fuse") or not fusermount:
            self.skipTest("needs FUSE (/dev/fuse and fusermount)")
        listing = GatedListing(folders)
        self.addCleanup(listing.stop)
        os.makedirs(self.mnt)
        log = open(os.path.join(self.tmp, "mount.log"), "ab")
        self.addCleanup(log.close)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        proc = subprocess.Popen(
            [RCLONE, "mount", ":http:", self.mnt, "--http-url", listing.url, "--read-only",
             "--dir-cache-time", "0s", "--attr-timeout", "0s", "--poll-interval", "0",
             "--config", os.path.join(self.tmp, "rclone.conf"), "-v"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)

        def unmount():
            listing.gate.set()
            subprocess.run([fusermount, "-u", "-z", self.mnt], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.addCleanup(unmount)
        if not wait_until(lambda: proc.poll() is not None or os.path.ismount(self.mnt), 20) \
                or proc.poll() is not None:
            self.skipTest("rclone could not mount with FUSE here (exit %s)" % proc.poll())
        return listing

    def test_too_young_episode_folder_is_taken_over_by_the_waiting_series_scan(self):
        season = os.path.join(self.mnt, "tv", "Young Show", "Season 01")
        series = os.path.dirname(season)
        listing = self.mount([self.rclone_rel(season)])
        self.assertTrue(wait_until(lambda: os.path.isdir(season), 20), "the mount lists nothing")
        self.start_daemon(WEBHOOK_DELAY="0", MINIMUM_AGE="1h")
        listing.hold(self.rclone_rel(season))  # the age check's stat of its file now hangs

        f = os.path.join(season, "Young Show - S01E01 - Pilot [WEBDL-1080p].mkv")
        payload = rig.sonarr_download(series, os.path.relpath(f, series), title="Young Show")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", payload), ("queued",))
        self.assertTrue(listing.entered.wait(20), "the episode folder's age was never checked")
        self.assertEqual(self.queue_entry(season)["state"], "checking")

        r = self.daemon.manual_post(series, MANUAL_USER, MANUAL_PASS)
        self.assertTrue(200 <= r.status < 300, r)
        waiting = wait_until(lambda: self.queue_entry(series), 20)
        self.assertTrue(waiting, "the series folder was not queued")
        self.assertIn(waiting["state"], ("waiting", "ready"))

        listing.gate.set()  # no such file: the event time decides, and it is too young
        self.assertTrue(wait_until(lambda: self.queue_entry(season) is None, 20),
                        "the episode folder's entry was not taken over")
        self.assertTrue(self.daemon.running(), "the daemon died when the series scan took over")
        # the series scan was asked for by a person: it skips the minimum age
        self.assertTrue(self.wait_scans(series, timeout=30), "the series folder was not scanned")
        self.assertTrue(wait_until(lambda: self.queue_entry(series) is None, 20))
        self.assertEqual(self.plex.refreshes(path=season), [])
        self.assertTrue(self.daemon.log_matches(
            r"younger than MINIMUM_AGE; taken over by '%s'" % re.escape(series)),
            "the log does not say which entry carries the work")
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 2.0),
                        "Plex was called again: %r" % self.plex.refreshes())
        self.assertTrue(self.daemon.running())

    def rclone_rel(self, path):
        return os.path.relpath(path, self.mnt)


if __name__ == "__main__":
    unittest.main()
