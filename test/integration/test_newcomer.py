"""What a newcomer meets in the first hour (issue: the newcomer's first hour): the port taken by
the old script, a webhook address opened in a browser, a trailing slash pasted into the *arr
app's URL field; a /health that tells a monitor what is true now (and how old each fact is);
`--check` with three levels (a setup that works is never a FAIL), the rclone
mapping checked against rclone's VFS (and named at run time, in the log and the history), and
host paths that MINIMUM_AGE and ANCHOR_FILES cannot see."""

import grp
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
from test_service import RcloneProc, write_env_file


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


# ---------------------------------------------------------------------------------------------
# --check: three levels, the rclone mapping, the host paths

CHECK_LINE = re.compile(r"^(OK|WARN|FAIL|SKIP)\s+(\S+)\s+(.*)$")


class CheckRun:
    """`plex-servarr-sync --check` with the rig's configuration (a mixin for RigTestCase)."""

    def check(self, mode=0o600, **overrides):
        """(exit status, stdout) of --check with daemon_env(**overrides) in an env file of mode."""
        env = self.daemon_env(**overrides)
        env.pop("PORT", None)
        path = os.path.join(self.tmp, "check.env")
        write_env_file(path, env)
        os.chmod(path, mode)
        penv = {k: os.environ[k] for k in rig.PASSTHROUGH_ENV if k in os.environ}
        p = subprocess.run([rig.BINARY, "--check", "--env-file", path], env=penv, cwd=self.tmp,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        self.assertNotRegex(err, r"ERROR: \w+Sanitizer|runtime error:", err)
        for ln in out.splitlines()[:-1]:
            self.assertRegex(ln, CHECK_LINE, "not a check line: %r" % ln)
        return p.returncode, out

    @staticmethod
    def lines(out, name):
        """[(level, text)] of check `name`."""
        found = []
        for ln in out.splitlines():
            m = CHECK_LINE.match(ln)
            if m and m.group(2) == name:
                found.append((m.group(1), m.group(3)))
        return found

    def only(self, out, name, level):
        """The texts of check `name`, asserting that each has `level`."""
        found = self.lines(out, name)
        self.assertTrue(found, "no %s line:\n%s" % (name, out))
        self.assertEqual({lv for lv, _ in found}, {level}, out)
        return [t for _, t in found]


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class CheckRcloneMappingTest(CheckRun, RigTestCase):
    """The rig: rclone serves <media> (its VFS root), Plex's sections are <media>/tv and
    <media>/movies, the *arr apps see the same paths."""

    def test_the_libraries_are_found_in_rclones_vfs(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        texts = self.only(out, "rclone-map", "OK")
        self.assertTrue(any("'tv'" in t and "'TV Shows'" in t for t in texts), out)
        self.assertTrue(any("'movies'" in t for t in texts), out)
        self.assertRegex(out.splitlines()[-1], r"^all \d+ checks passed$")

    def test_a_wrong_mount_root_fails_naming_the_dir_rclone_lacks(self):
        # a mount root one level above what rclone serves (as in the report)
        rc, out = self.check(RCLONE_MOUNT_ROOT=self.tmp)
        self.assertEqual(rc, 1, out)
        texts = self.only(out, "rclone-map", "FAIL")
        self.assertTrue(any("'media/tv'" in t and "does not have" in t and "RCLONE_MOUNT_ROOT" in t
                            and "RCLONE_PATH_REPLACEMENTS" in t for t in texts), out)
        self.assertTrue(all("the mount root is likely %s)" % self.media in t for t in texts), out)
        self.assertRegex(out.splitlines()[-1], r"^\d+ of \d+ checks failed")

    def test_a_replacement_outside_every_mount_root_fails(self):
        elsewhere = os.path.join(self.tmp, "elsewhere", "tv")
        rc, out = self.check(RCLONE_PATH_REPLACEMENTS=json.dumps({"/arr/tv": elsewhere}))
        self.assertEqual(rc, 1, out)
        fails = [t for lv, t in self.lines(out, "rclone-map") if lv == "FAIL"]
        self.assertEqual(len(fails), 1, out)
        self.assertIn("RCLONE_PATH_REPLACEMENTS '/arr/tv' -> '%s'" % elsewhere, fails[0])
        self.assertIn("outside every rclone mount root (RCLONE_MOUNT_ROOT %s)" % self.media, fails[0])

    def test_a_mapped_root_rclone_does_not_have_fails(self):
        rc, out = self.check(RCLONE_PATH_REPLACEMENTS=json.dumps(
            {"/arr/tv": self.tv, "/arr/nosuch": os.path.join(self.media, "nosuch")}))
        self.assertEqual(rc, 1, out)
        lines = self.lines(out, "rclone-map")
        self.assertIn(("OK", "'/arr/tv' (RCLONE_PATH_REPLACEMENTS '/arr/tv' -> '%s') is 'tv' in rclone's VFS "
                             "of mount %s, which rclone lists" % (self.tv, self.media)), lines, out)
        fails = [t for lv, t in lines if lv == "FAIL"]
        self.assertEqual(len(fails), 1, out)
        self.assertIn("'nosuch'", fails[0])
        self.assertIn("does not have", fails[0])

    def test_a_folder_made_after_rclone_listed_its_parent_is_found(self):
        self.assertIsNotNone(self.rclone.list_dir(""))  # rclone caches the root's listing now
        late = os.path.join(self.media, "late", "shows")
        os.makedirs(late)
        self.assertFalse(self.rclone.lists("", "late"), "rclone's cached root already lists it")
        rc, out = self.check(RCLONE_PATH_REPLACEMENTS=json.dumps({"/arr/late": late}))
        self.assertEqual(rc, 0, out)
        self.assertTrue(any("'late/shows'" in t for t in self.only(out, "rclone-map", "OK")), out)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class CheckLevelsTest(CheckRun, RigTestCase):
    """Setups that work are a WARN (exit 0), not a FAIL."""

    def test_an_env_file_others_can_read_is_a_warning_with_advice_for_this_host(self):
        rc, out = self.check(mode=0o644)
        self.assertEqual(rc, 0, out)
        (text,) = self.only(out, "env-file", "WARN")
        self.assertIn("readable by every user", text)
        self.assertIn("PLEX_TOKEN", text)
        try:
            grp.getgrnam("plex-servarr-sync")
            self.assertIn("root:plex-servarr-sync", text)
        except KeyError:
            # run from a clone: no group that only the package creates
            self.assertNotIn("plex-servarr-sync", text)
            self.assertIn("chmod 0600", text)
        self.assertRegex(out.splitlines()[-1], r"^no check failed: \d+ passed, 1 gave a warning")

    def test_rclone_with_rc_alone_is_a_warning_where_it_works(self):
        # Debian's rclone (before 1.74) still lets the VFS calls through without --rc-no-auth
        bare = RcloneProc(self.tmp, self.media, [])
        self.addCleanup(bare.stop)
        rc, out = self.check(RCLONE_RC_URL=bare.url)
        self.assertEqual(rc, 0, out)
        (text,) = self.only(out, "rclone", "WARN")
        self.assertIn("--rc alone", text)
        self.assertIn("1.74", text)
        self.assertIn("--rc-no-auth", text)
        self.assertIn("RCLONE_RC_USER/RCLONE_RC_PASS", text)
        self.only(out, "rclone-vfs", "OK")
        self.only(out, "rclone-map", "OK")

    def test_rclone_that_refuses_the_vfs_calls_without_auth_fails(self):
        # rclone 1.74 and later, started with --rc alone
        double = RcloneDouble(mode="noauth_403", vfses=[self.media]).start()
        self.addCleanup(double.stop)
        rc, out = self.check(RCLONE_RC_URL=double.url)
        self.assertEqual(rc, 1, out)
        (text,) = self.only(out, "rclone", "FAIL")
        self.assertIn("HTTP 403", text)
        self.assertIn("--rc-no-auth", text)
        forgets = double.calls("/vfs/forget")
        self.assertEqual(len(forgets), 1, forgets)
        self.assertTrue(forgets[0].body.get("dir"), "a forget without a dir forgets everything")
        self.assertRegex(out.splitlines()[-1], r"^\d+ of \d+ checks failed")


class DockerPaths:
    """The Python script's Docker-style paths: Sonarr sees /tv, Plex /data/tv (neither exists on
    this host), rclone's mount holds them at <media>/tv."""

    def sections(self):
        return [{"key": "1", "type": "show", "title": "TV Shows", "locations": ["/data/tv"]}]

    def docker_env(self, **overrides):
        env = {"PATH_REPLACEMENTS": json.dumps({"/tv": "/data/tv"}),
               "RCLONE_PATH_REPLACEMENTS": json.dumps({"/tv": self.tv}),
               "MINIMUM_AGE": "1h"}
        env.update(overrides)
        return env


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class HostPathsTest(DockerPaths, CheckRun, RigTestCase):

    def assert_advice(self, text):
        self.assertIn("'/tv'", text)
        self.assertIn("'/data/tv' on this host", text)
        self.assertIn("does not exist here", text)
        self.assertIn("MINIMUM_AGE counts from the event time", text)
        self.assertIn("LOCAL_PATH_REPLACEMENTS to map '/tv' to '%s' (the rclone mount path, which exists "
                      "here)" % self.tv, text)

    def test_check_warns_and_suggests_the_rclone_mount_path(self):
        rc, out = self.check(**self.docker_env())
        self.assertEqual(rc, 0, out)
        (text,) = self.only(out, "host-paths", "WARN")
        self.assert_advice(text)
        self.only(out, "rclone-map", "OK")
        # fixed as suggested: this host sees the files
        rc, out = self.check(**self.docker_env(LOCAL_PATH_REPLACEMENTS=json.dumps({"/tv": self.tv})))
        self.assertEqual(rc, 0, out)
        (text,) = self.only(out, "host-paths", "OK")
        self.assertIn("'/tv' as '%s'" % self.tv, text)

    def test_the_start_warns_once_per_place(self):
        self.start_daemon(**self.docker_env())
        warns = lambda: [l for l in self.daemon.log_lines() if " WARN " in l and "LOCAL_PATH_REPLACEMENTS" in l]
        self.assertTrue(wait_until(warns, 20), self.daemon.log_tail(40))
        (line,) = warns()
        self.assert_advice(line)

    def test_an_aging_folder_says_it_waits_from_the_event_time(self):
        self.start_daemon(**self.docker_env(WEBHOOK_DELAY="0"))
        payload = rig.sonarr_download("/tv/Docker Show", "Season 01/Docker Show - S01E01.mkv")
        entry = self.wait_aging(payload, "/tv/Docker Show/Season 01")
        self.assertEqual(entry.get("age_from"), "event", entry)
        self.assertEqual(entry.get("age_reason"), "files not visible on this host", entry)
        self.assertTrue(self.daemon.log_matches(
            r"'/tv/Docker Show/Season 01': its files are not visible on this host \(as '/data/tv/Docker "
            r"Show/Season 01'\), so MINIMUM_AGE counts from the event time"), self.daemon.log_tail(20))

    def test_an_aging_folder_whose_files_are_seen_says_so(self):
        self.start_daemon(**self.docker_env(WEBHOOK_DELAY="0",
                                            LOCAL_PATH_REPLACEMENTS=json.dumps({"/tv": self.tv})))
        touch(os.path.join(self.tv, "Seen Show", "Season 01", "Seen Show - S01E01.mkv"))
        payload = rig.sonarr_download("/tv/Seen Show", "Season 01/Seen Show - S01E01.mkv")
        entry = self.wait_aging(payload, "/tv/Seen Show/Season 01")
        self.assertEqual(entry.get("age_from"), "files", entry)
        self.assertNotIn("age_reason", entry)

    def wait_aging(self, payload, folder):
        self.assertTrue(wait_until(lambda: self.daemon.post_webhook("sonarr", payload)[1].get("status")
                                   == "queued", 20, interval=0.2), "the webhook was never queued")

        def aging():
            r = self.daemon.get("/api/queue", auth=(rig.MANUAL_USER, rig.MANUAL_PASS))
            for e in (r.json() or {}).get("entries", []):
                if e["path"] == folder and e["state"] == "aging":
                    return e
            return None
        entry = wait_until(aging, 20)
        self.assertTrue(entry, "'%s' never aged: %s" % (folder, self.daemon.log_tail(20)))
        return entry


# ---------------------------------------------------------------------------------------------
# run time: the rclone mapping in the log and the history

class HistoryReader:
    def history(self, path):
        r = self.daemon.get("/api/history?limit=200", auth=(rig.MANUAL_USER, rig.MANUAL_PASS))
        self.assertEqual(r.status, 200, r)
        return [h for h in r.json()["items"] if h["path"] == path]

    def wait_final(self, path, timeout=30):
        """The folder's history rows once its round has ended (not retrying)."""
        rows = wait_until(lambda: [h for h in self.history(path) if h["status"] != "retrying"], timeout)
        self.assertTrue(rows, "no finished round for %s: %s" % (path, self.daemon.log_tail(30)))
        return rows

    def import_show(self, show):
        f = self.show_file(show)
        touch(f)
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)))
        return os.path.dirname(f)

    def warn_lines(self, needle):
        return [l for l in self.daemon.log_lines() if " WARN " in l and needle in l]


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class OutsideMountTest(HistoryReader, RigTestCase):

    def test_a_folder_outside_every_mount_root_is_a_warning_once_per_prefix(self):
        elsewhere = os.path.join(self.tmp, "elsewhere", "tv")
        self.start_daemon(WEBHOOK_DELAY="0", RCLONE_PATH_REPLACEMENTS=json.dumps({self.tv: elsewhere}))
        self.wait_library_list(self.show_file("Probe Show"))
        folders = [self.import_show("First Show"), self.import_show("Second Show")]
        for folder in folders:
            self.assertTrue(self.wait_scans(folder), "the servers still scan it: %s" % folder)
            (row,) = self.wait_final(folder)
            self.assertEqual(row["status"], "warning", row)
            self.assertEqual(row["rclone"], "outside_mount", row)
            self.assertIn("outside every rclone mount root (RCLONE_MOUNT_ROOT %s)" % self.media, row["error"])
            self.assertIn("RCLONE_PATH_REPLACEMENTS", row["error"])
        lines = self.warn_lines("outside every rclone mount root")
        self.assertEqual(len(lines), 1, "\n".join(lines))  # once for the prefix, not per folder
        self.assertIn("'%s'" % self.tv, lines[0])
        self.assertIn("RCLONE_MOUNT_ROOT / RCLONE_PATH_REPLACEMENTS", lines[0])
        self.assertEqual(self.rclone_calls(), 0)
        # a folder the mount holds is a clean ok
        movie = os.path.join(self.movies, "A Movie (2020)")
        touch(os.path.join(movie, "A Movie (2020).mkv"))
        self.assertWebhookAccepted(self.daemon.webhook("radarr", rig.radarr_download(movie, "A Movie (2020).mkv")))
        (row,) = self.wait_final(movie)
        self.assertEqual((row["status"], row["rclone"], row["error"]), ("ok", "ok", None), row)
        # the page's filter finds the warnings (the probe's folder is outside the mount too)
        r = self.daemon.get("/api/history?status=warning", auth=(rig.MANUAL_USER, rig.MANUAL_PASS))
        found = {h["path"] for h in r.json()["items"]}
        self.assertTrue(set(folders) <= found and movie not in found, found)

    def rclone_calls(self):
        return len([l for l in self.daemon.log_lines() if "rclone refreshed" in l and "First Show" in l])


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class AbsentAfterImportTest(HistoryReader, RigTestCase):

    def test_an_import_rclone_calls_absent_is_a_warning_once_per_prefix(self):
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([("plex", self.plex), ("jellyfin", jf)])
        # a mount root one level above what rclone serves (as in the report)
        self.start_daemon(WEBHOOK_DELAY="0", RCLONE_MOUNT_ROOT=self.tmp, **env)
        self.wait_library_list(self.show_file("Probe Show"))
        folders = [self.import_show("First Show"), self.import_show("Second Show")]
        for folder in folders:
            self.assertTrue(self.wait_scans(folder), "Plex still scans it: %s" % folder)
            # an absence that contradicts the import is not a delete
            self.assertTrue(self.wait_updates(jf, folder, update_type="Created"), jf.updates())
            (row,) = self.wait_final(folder)
            self.assertEqual((row["status"], row["rclone"]), ("warning", "absent"), row)
            self.assertIn("a file just imported cannot be absent: check RCLONE_MOUNT_ROOT / "
                          "RCLONE_PATH_REPLACEMENTS", row["error"])
        self.assertFalse([u for u in jf.updates() if u[1] == "Deleted"], jf.updates())
        lines = self.warn_lines("a file just imported cannot be absent")
        self.assertEqual(len(lines), 1, "\n".join(lines))  # once for the mount, not per folder
        self.assertIn("is absent from the VFS of mount %s right after an import" % self.tmp, lines[0])

    def test_a_delete_rclone_calls_absent_is_a_clean_round(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        touch(self.show_file("Probe Show"))  # an import of a folder that is there
        self.wait_library_list(self.show_file("Probe Show"))
        series = os.path.join(self.tv, "Gone Show")
        payload = rig.load_fixture("sonarr-episodefiledelete")
        payload["series"]["path"] = series
        payload["episodeFile"]["relativePath"] = "Season 01/Gone Show - S01E01.mkv"
        payload["episodeFile"]["path"] = os.path.join(series, "Season 01/Gone Show - S01E01.mkv")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", payload))
        folder = os.path.join(series, "Season 01")
        (row,) = self.wait_final(folder)
        self.assertEqual((row["status"], row["rclone"], row["error"]), ("ok", "absent", None), row)
        self.assertFalse(self.warn_lines("cannot be absent"))
