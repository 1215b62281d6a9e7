"""The wall clock steps under a running daemon (NTP setting the time on a box without an RTC):
libfaketime (Debian's faketime) moves only the wall clock, the monotonic one runs on. A queued
folder keeps what was left of its wait: a step back of a day does not postpone its scan by a day,
a step forward does not make it due at once."""
import os
import subprocess
import unittest

import rig
from rig import RigTestCase, touch, wait_until

FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def sanitized(binary):
    """ASan's runtime must come first among the loaded libraries: no LD_PRELOAD beside it."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "libasan" in out or "libubsan" in out


@unittest.skipUnless(rig.binary_available(), "daemon binary not built")
class ClockStepTest(RigTestCase):
    def setUp(self):
        binary = os.environ.get("PSS_BINARY", "")
        if not os.path.exists(FAKETIME):
            self.fail("libfaketime is missing: apt-get install faketime (packaging/bootstrap.sh test does)")
        if sanitized(binary):
            self.skipTest("a sanitizer build cannot take libfaketime's LD_PRELOAD")
        super().setUp()
        self.offset_file = os.path.join(self.tmp, "faketime")
        self.set_offset("+0")
        self.daemon_proc_env = {
            "LD_PRELOAD": FAKETIME,
            "FAKETIME_TIMESTAMP_FILE": self.offset_file,
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set_offset(self, text):
        with open(self.offset_file + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(self.offset_file + ".tmp", self.offset_file)

    def queued(self, path):
        q = self.daemon.get("/api/queue", auth=(rig.MANUAL_USER, rig.MANUAL_PASS)).json()
        return [e for e in q["entries"] if e["plex_path"] == path]

    def test_a_step_back_of_a_day_does_not_postpone_a_scan(self):
        self.start_daemon(WEBHOOK_DELAY="4s", WEBHOOK_MAX_DELAY="10m")
        f = self.show_file("Clock Show")
        touch(f)
        folder = os.path.dirname(f)
        self.assertEqual(self.daemon.webhook("sonarr", self.sonarr_for(f)).status, 202)
        self.assertTrue(wait_until(lambda: self.queued(folder), 10))
        self.set_offset("-1d")
        self.assertTrue(self.wait_scans(folder, timeout=30),
                        "no scan within 30 s of a 4 s delay after the clock stepped back a day")
        self.assertTrue(self.daemon.log_matches(r"wall clock stepped back by 86400"), self.daemon.log_tail(30))

    def test_a_step_forward_does_not_make_a_wait_due_at_once(self):
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="2h")
        f = self.show_file("Forward Show")
        touch(f)
        folder = os.path.dirname(f)
        self.assertEqual(self.daemon.webhook("sonarr", self.sonarr_for(f)).status, 202)
        self.assertTrue(wait_until(lambda: self.queued(folder), 10))
        self.set_offset("+1d")
        self.assertTrue(wait_until(lambda: self.daemon.log_matches(r"wall clock stepped forward"), 15),
                        self.daemon.log_tail(30))
        # still about an hour to go, and no scan
        entry = self.queued(folder)[0]
        self.assertGreater(entry["due_in_ms"], 50 * 60 * 1000, entry)
        self.assertEqual(self.plex.scans(path=folder), [])


if __name__ == "__main__":
    unittest.main()
