"""What a newcomer meets in the first hour (issue: the newcomer's first hour): the port taken by
the old script, a webhook address opened in a browser, a trailing slash pasted into the *arr
app's URL field, and a /health that tells a monitor what is true now (and how old each fact is)."""

import json
import os
import re
import socket
import subprocess
import threading
import time
import unittest

import rig
from rclonedouble import RcloneDouble
from rig import Daemon, DaemonError, RigTestCase, free_port, touch, wait_until


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class PortTakenTest(RigTestCase):
    use_rclone = False

    def test_a_taken_port_is_one_line_with_the_likely_cause_and_the_fix(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("0.0.0.0", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        port = blocker.getsockname()[1]
        env = self.daemon_env(PORT=str(port))
        d = Daemon(os.path.join(self.tmp, "run"), env)
        with self.assertRaises(DaemonError):
            d.start(timeout=10.0)
        self.assertEqual(d.proc.wait(timeout=10), 1)
        errors = [l for l in d.log().splitlines() if " ERROR " in l]
        self.assertEqual(len(errors), 1, d.log())
        line = errors[0]
        self.assertIn("already in use", line)
        self.assertIn(str(port), line)
        self.assertRegex(line, r"Python script|another plex-servarr-sync")
        self.assertIn("PORT", line)
        # said once, not "cannot listen on ...: cannot listen on ..."
        self.assertEqual(len(re.findall(r"cannot listen", line)), 1, line)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class WebhookAddressTest(RigTestCase):
    use_rclone = False

    def test_a_browser_on_a_webhook_address_is_told_what_it_is_for(self):
        self.start_daemon()
        for app, name in (("sonarr", "Sonarr"), ("radarr", "Radarr")):
            r = self.daemon.request("GET", "/webhook/%s" % app, headers={"Accept": "text/html"})
            self.assertEqual(r.status, 405, r)
            self.assertIn("POST", r.headers.get("Allow", ""), r)
            self.assertTrue(r.headers.get("Content-Type", "").startswith("text/plain"), r)
            text = r.body.decode("utf-8")
            self.assertIn(name, text)
            self.assertIn("POST", text)
            self.assertIn("Settings > Connect", text)
        r = self.daemon.request("HEAD", "/triggers/lidarr")
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.body, b"")
        # an unknown app is still a 404 naming the good ones
        self.assertEqual(self.daemon.request("GET", "/webhook/nosuch").status, 404)

    def test_a_trailing_slash_on_a_webhook_address_works(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        f = self.show_file("Slash Show")
        touch(f)
        self.wait_library_list(self.show_file("Probe Show"))
        r = self.daemon.request("POST", "/webhook/sonarr/", body=json.dumps(self.sonarr_for(f)).encode("utf-8"),
                                headers={"Content-Type": "application/json"})
        self.assertWebhookAccepted(r)
        self.assertTrue(self.wait_scans(os.path.dirname(f)), "no scan after /webhook/sonarr/")
        self.assertEqual(self.daemon.request("GET", "/triggers/manual/").status, 200)


# PROBES_FRESH_MS: a fact older than this is asked again before /health answers
FRESH_S = 5.0


def target_of(health, name):
    return next(t for t in health["targets"] if t["name"] == name)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class HealthFreshnessTest(RigTestCase):
    """/health renews what it says (each media server, each rclone mount) when its facts are
    older than 5 s, waits for that at most 2 s, and says how old each fact is: a monitor's first
    ask after an outage or a recovery hears of it."""
    use_rclone = False

    def health(self, query="", timeout=15.0):
        r = self.daemon.request("GET", "/health" + query, timeout=timeout)
        self.assertIn(r.status, (200, 503), r)
        return r

    def let_age(self, checked_ms_ago):
        """Let a fact the daemon reported as checked_ms_ago old grow older than the freshness
        window. Nothing can be polled for that: only time makes a fact old."""
        until = time.monotonic() + FRESH_S + 0.3 - checked_ms_ago / 1000.0
        self.assertTrue(wait_until(lambda: time.monotonic() >= until, FRESH_S + 5, interval=0.1))

    def start_with_rclone(self, **env):
        self.rc = RcloneDouble(mode="ok").start()
        self.addCleanup(self.rc.stop)
        self.start_daemon(USE_RCLONE="true", RCLONE_RC_URL=self.rc.url, RCLONE_MOUNT_ROOT=self.media, **env)

    def test_an_outage_and_a_recovery_are_seen_on_the_first_ask(self):
        self.start_with_rclone()
        h = self.health().json()
        self.assertIs(target_of(h, "plex")["reachable"], True, h)
        self.assertEqual(h["rclone"]["state"], "reachable", h)
        ages = [target_of(h, "plex")["checked_ms_ago"], h["rclone"]["checked_ms_ago"]]
        self.assertTrue(all(isinstance(a, int) and a >= 0 for a in ages), h)

        # both go down; once what the daemon knows is older than the window, the first ask
        # renews it and says so
        self.plex.set_down()
        self.rc.set_down()
        self.let_age(min(ages))
        noops = len(self.rc.calls("/rc/noop"))
        r = self.health("?strict=1")
        h = r.json()
        self.assertEqual(r.status, 503, h)
        self.assertIn("plex: not reachable", h["degraded"])
        self.assertIn("rclone: not reachable", h["degraded"])
        self.assertIs(target_of(h, "plex")["reachable"], False)
        self.assertIs(h["plex"]["reachable"], False)
        self.assertEqual(h["rclone"]["state"], "not reachable")
        self.assertIs(h["rclone"]["reachable"], False)
        self.assertEqual(h["rclone"]["mounts_answering"], 0)
        self.assertIs(h["probe"]["fresh"], True, h)
        self.assertLess(target_of(h, "plex")["checked_ms_ago"], FRESH_S * 1000, h)
        self.assertLess(h["rclone"]["checked_ms_ago"], FRESH_S * 1000, h)
        self.assertEqual(len(self.rc.calls("/rc/noop")), noops, "rclone was down: no call got through")

        # both come back: the first ask after the window says so
        self.plex.set_up()
        self.rc.set_up()
        self.let_age(min(target_of(h, "plex")["checked_ms_ago"], h["rclone"]["checked_ms_ago"]))
        lists = len(self.plex.requests("sections"))
        r = self.health("?strict=1")
        h = r.json()
        self.assertEqual(r.status, 200, h)
        self.assertEqual(h["degraded"], [])
        self.assertIs(target_of(h, "plex")["reachable"], True)
        self.assertEqual(h["rclone"]["state"], "reachable")
        self.assertEqual(h["rclone"]["mounts_answering"], 1)
        self.assertIs(h["probe"]["fresh"], True, h)
        self.assertEqual(len(self.plex.requests("sections")), lists + 1, "one library read per ask")
        self.assertEqual(len(self.rc.calls("/rc/noop")), noops + 1, "one rc/noop per ask")
        # fresh facts are not asked again
        h = self.health().json()
        self.assertEqual(len(self.plex.requests("sections")), lists + 1)
        self.assertEqual(len(self.rc.calls("/rc/noop")), noops + 1)

    def test_a_hanging_server_does_not_hold_health_and_its_fact_is_said_to_be_old(self):
        hang = threading.Event()
        release = threading.Event()
        self.addCleanup(release.set)

        def hook(rec):
            if rec.route == "sections" and hang.is_set():
                release.wait(60)
        self.plex.hook = hook
        # the server's own timeout is longer than any client's below: only /health's bound
        # can answer them
        self.start_with_rclone(PLEX_TIMEOUT="60s")
        h = self.health().json()
        self.assertIs(target_of(h, "plex")["reachable"], True, h)
        hang.set()
        self.let_age(target_of(h, "plex")["checked_ms_ago"])
        noops = len(self.rc.calls("/rc/noop"))

        # several monitors at once: each is answered, from one round
        answers = []

        def ask():
            answers.append(self.daemon.request("GET", "/health", timeout=15))
        threads = [threading.Thread(target=ask) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(answers), 4)
        for r in answers:
            self.assertEqual(r.status, 200, r)
            h = r.json()
            self.assertIs(h["probe"]["fresh"], False, h)
            # the last word from the server is older than the window, and says so
            self.assertGreaterEqual(target_of(h, "plex")["checked_ms_ago"], FRESH_S * 1000, h)
        self.assertEqual(len(self.plex.requests("sections")), 2, "one list read at start, one for the round")
        self.assertEqual(len(self.rc.calls("/rc/noop")), noops + 1, "the four asks shared one round")
        # while the round is out, HEAD and the container's --health are answered too
        self.assertEqual(self.daemon.request("HEAD", "/health", timeout=15).status, 200)
        p = subprocess.run([rig.BINARY, "--health"], env=dict(
            {k: os.environ[k] for k in rig.PASSTHROUGH_ENV if k in os.environ},
            PORT=str(self.daemon.port), BIND_ADDRESS="127.0.0.1"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # the server answers at last: the next ask hears it
        release.set()
        self.assertTrue(self.plex.wait_for(lambda d: all(r.status for r in d.requests("sections")), 30))
        h = self.health().json()
        self.assertIs(target_of(h, "plex")["reachable"], True, h)
        self.assertLess(target_of(h, "plex")["checked_ms_ago"], FRESH_S * 1000, h)

    def test_an_rclone_that_never_answers_is_unknown_then_not_reachable(self):
        self.rc = RcloneDouble(mode="ok")
        self.rc.noop_hang = True
        self.rc.start()
        self.addCleanup(self.rc.stop)
        self.start_daemon(USE_RCLONE="true", RCLONE_RC_URL=self.rc.url, RCLONE_MOUNT_ROOT=self.media)
        h = self.health().json()
        self.assertEqual(h["rclone"]["state"], "unknown", h)
        self.assertIsNone(h["rclone"]["reachable"])
        self.assertIsNone(h["rclone"]["checked_ms_ago"])
        self.assertIs(h["probe"]["fresh"], False, h)
        self.assertFalse(any("rclone" in d for d in h["degraded"]), h)
        # its call times out (5 s): then it is known not to answer
        self.assertTrue(wait_until(lambda: self.health().json()["rclone"]["state"] == "not reachable", 30,
                                   interval=0.5), self.health().json())
        h = self.health().json()
        self.assertIn("rclone: not reachable", h["degraded"])
        self.assertIsInstance(h["rclone"]["checked_ms_ago"], int)

    def test_rclone_not_configured_is_said_so(self):
        self.start_daemon(USE_RCLONE=None, RCLONE_RC_URL=None)
        h = self.health("?strict=1").json()
        self.assertEqual(h["status"], "ok", h)
        self.assertEqual(h["rclone"], {"configured": False, "state": "not configured", "mounts": 0,
                                       "reachable": None, "mounts_answering": None,
                                       "checked_ms_ago": None})
        self.assertFalse(any("rclone" in d for d in h["degraded"]), h)
        stats = self.daemon.get("/api/stats", auth=(rig.MANUAL_USER, rig.MANUAL_PASS)).json()
        self.assertIs(stats["rclone"]["enabled"], False)
