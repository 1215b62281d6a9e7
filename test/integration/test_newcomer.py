"""What a newcomer meets in the first hour (issue: the newcomer's first hour): the port taken by
the old script, a webhook address opened in a browser, and a trailing slash pasted into the *arr
app's URL field."""

import json
import os
import re
import socket
import unittest

import rig
from rig import Daemon, DaemonError, RigTestCase, free_port, touch


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
