"""The daemon as a systemd service: sd_notify (READY, STATUS, WATCHDOG, RELOADING, STOPPING),
signals (SIGTERM with a grace time and the queue persisted, SIGHUP reloads that apply or are
refused), journald log prefixes, and `--check` against the Plex double and real rclone with and
without RC authentication.

systemd is not needed: a datagram socket given as NOTIFY_SOCKET receives exactly what systemd
would, and WATCHDOG_USEC / JOURNAL_STREAM are set as systemd sets them."""

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import rig
from rig import (MANUAL_PASS, MANUAL_USER, PLEX_TOKEN, RigTestCase, free_port, port_open,
                 stays, touch, wait_until)

ARR_TV = "/arr/tv"  # the *arr apps' view of the TV library in the path-mapping tests


def write_env_file(path, env, raw_lines=()):
    """Write a dotenv file the daemon reads (mode 0600: it holds the token)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("# written by test_service\n")
        for k, v in env.items():
            f.write("%s=%s\n" % (k, rig._dotenv_quote(v)))
        for line in raw_lines:
            f.write(line + "\n")
    os.chmod(path, 0o600)


class NotifyListener:
    """A bound AF_UNIX datagram socket standing in for systemd's notify socket; a thread
    collects (monotonic time, message) pairs."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()

    def all(self):
        with self.lock:
            return list(self.messages)

    def assignments(self, key):
        """[(time, value)] of every KEY=value line received (one datagram may carry several)."""
        out = []
        for t, msg in self.all():
            for line in msg.split("\n"):
                k, sep, v = line.partition("=")
                if sep and k == key:
                    out.append((t, v))
        return out

    def index_of(self, key, value=None, after=-1):
        """Position of the first datagram after `after` holding KEY(=value); -1 if none."""
        for i, (_, msg) in enumerate(self.all()):
            if i <= after:
                continue
            for line in msg.split("\n"):
                k, sep, v = line.partition("=")
                if sep and k == key and (value is None or v == value):
                    return i
        return -1


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class ServiceCase(RigTestCase):
    use_rclone = False

    def queue_depth(self, daemon=None):
        d = daemon or self.daemon
        r = d.get("/api/queue", auth=(MANUAL_USER, MANUAL_PASS))
        self.assertEqual(r.status, 200, r)
        return r.json()

    def wait_log(self, pattern, timeout=20.0, daemon=None):
        d = daemon or self.daemon
        return wait_until(lambda: d.log_matches(pattern), timeout)

    def rewrite_env(self, raw_lines=(), **changes):
        """Rewrite the running daemon's env file with changes applied (None removes a key)."""
        env = dict(self.daemon.env)
        for k, v in changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        write_env_file(self.daemon.env_path, env, raw_lines)
        return env


class NotifyTest(ServiceCase):
    def setUp(self):
        super().setUp()
        self.notify = NotifyListener(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(self.notify.stop)

    def test_ready_status_watchdog_reload_and_stopping(self):
        self.daemon_proc_env = {"NOTIFY_SOCKET": self.notify.path, "WATCHDOG_USEC": "1000000"}
        self.start_daemon(WEBHOOK_DELAY="10m", WEBHOOK_MAX_DELAY="1h")
        self.assertTrue(wait_until(lambda: self.notify.index_of("READY", "1") >= 0, 10),
                        "no READY=1: %r" % self.notify.all())
        status = wait_until(lambda: self.notify.assignments("STATUS"), 10)
        self.assertTrue(status, "no STATUS=")
        self.assertRegex(status[0][1], r"^Queue: 0 folders")

        # WATCHDOG_USEC=1 s: a ping every 0.5 s from the loop's timer
        pings = wait_until(lambda: [t for t, v in self.notify.assignments("WATCHDOG")
                                    if v == "1"][:5] if len(self.notify.assignments("WATCHDOG")) >= 5
                           else None, 10)
        self.assertTrue(pings, "fewer than 5 WATCHDOG=1 in 10 s: %r" % self.notify.all())
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertTrue(all(0.3 <= g <= 0.9 for g in gaps), "ping gaps %r (want ~0.5 s)" % gaps)

        # the queue depth shows in STATUS=
        f = self.show_file("Status Show")
        touch(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertEqual(r.status, 202, r)
        self.assertTrue(wait_until(lambda: any(v.startswith("Queue: 1 folder ")
                                               for _, v in self.notify.assignments("STATUS")), 10),
                        "STATUS= never showed the queued folder: %r"
                        % self.notify.assignments("STATUS"))

        # SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1 again
        before = len(self.notify.all()) - 1
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.notify.index_of("RELOADING", "1", before) >= 0, 10),
                        "no RELOADING=1 after SIGHUP: %r" % self.notify.all())
        i = self.notify.index_of("RELOADING", "1", before)
        self.assertIn("MONOTONIC_USEC=", self.notify.all()[i][1])
        self.assertTrue(wait_until(lambda: self.notify.index_of("READY", "1", i) > i, 10),
                        "no READY=1 after the reload: %r" % self.notify.all()[i:])

        # SIGTERM: STOPPING=1, exit 0
        self.assertEqual(self.daemon.stop(), 0)
        self.assertGreaterEqual(self.notify.index_of("STOPPING", "1"), 0,
                                "no STOPPING=1: %r" % self.notify.all()[-5:])

    def test_status_without_watchdog_and_no_pings(self):
        # NOTIFY_SOCKET without WATCHDOG_USEC: READY and STATUS, never WATCHDOG=1
        self.daemon_proc_env = {"NOTIFY_SOCKET": self.notify.path}
        self.start_daemon()
        self.assertTrue(wait_until(lambda: self.notify.index_of("READY", "1") >= 0, 10))
        self.assertTrue(stays(lambda: not self.notify.assignments("WATCHDOG"), 1.5),
                        "WATCHDOG=1 sent although the watchdog is off")


class LogFormatTest(ServiceCase):
    def test_journal_stream_gives_priority_prefixes_and_no_timestamp(self):
        self.daemon_proc_env = {"JOURNAL_STREAM": "8:12345"}
        self.start_daemon(LOG_LEVEL="debug")
        lines = [ln for ln in self.daemon.own_log().splitlines() if ln.strip()]
        self.assertTrue(lines)
        for ln in lines:
            self.assertRegex(ln, r"^<[3467]>", "a line without a priority prefix: %r" % ln)
            self.assertNotRegex(ln, r"^<\d>\d{4}-\d\d-\d\d", ln)
        self.assertTrue(any(ln.startswith("<6>") for ln in lines))  # info
        self.assertTrue(any(ln.startswith("<7>") for ln in lines))  # debug

    def test_plain_lines_carry_a_timestamp_in_tz(self):
        self.start_daemon(TZ="UTC")
        lines = [ln for ln in self.daemon.own_log().splitlines() if ln.strip()]
        self.assertTrue(lines)
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} ")
        stamp = time.strptime(lines[-1][:19], "%Y-%m-%d %H:%M:%S")
        self.assertLess(abs(time.mktime(stamp) - time.mktime(time.gmtime())), 120,
                        "timestamp not in TZ=UTC: %r" % lines[-1])

    def test_world_readable_env_file_is_warned_about(self):
        self.start_daemon()  # the rig writes daemon.env with the default umask (0644)
        if not os.stat(self.daemon.env_path).st_mode & 0o004:
            self.skipTest("umask made the env file private")
        self.assertTrue(self.daemon.log_matches(r"WARN.*daemon\.env is readable by every user"),
                        self.daemon.log_tail(20))


class StopTest(ServiceCase):
    def test_sigterm_exits_0_and_the_queue_is_there_after_a_restart(self):
        self.start_daemon(WEBHOOK_DELAY="10m", WEBHOOK_MAX_DELAY="1h")
        f = self.show_file("Persisted Show")
        touch(f)
        folder = os.path.dirname(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertEqual(r.status, 202, r)
        self.assertEqual(self.queue_depth()["depth"], 1)

        self.assertEqual(self.daemon.stop(), 0)
        self.assertTrue(self.daemon.log_matches(r"stopped: 1 folder stays queued"),
                        self.daemon.log_tail(20))
        self.assertFalse(self.plex.refreshes(), "scanned before its delay")

        self.start_daemon(WEBHOOK_DELAY="10m", WEBHOOK_MAX_DELAY="1h")
        q = self.queue_depth()
        self.assertEqual(q["depth"], 1, q)
        self.assertEqual([e["plex_path"] for e in q["entries"]], [folder])

    def test_sigterm_waits_for_a_scan_in_flight(self):
        self.plex.delay = 2.0
        self.start_daemon(WEBHOOK_DELAY="0")
        f = self.show_file("Inflight Show")
        touch(f)
        folder = os.path.dirname(f)
        self.assertEqual(self.daemon.webhook("sonarr", self.sonarr_for(f)).status, 202)
        self.assertTrue(wait_until(lambda: self.plex.requests("refresh"), 15), "no Plex call")
        t0 = time.monotonic()
        self.daemon.signal(signal.SIGTERM)
        self.assertEqual(self.daemon.proc.wait(20), 0)
        took = time.monotonic() - t0
        self.assertEqual([r.status for r in self.plex.refreshes(path=folder)], [200])
        self.assertTrue(self.daemon.log_matches(r"scanned section 1 .*Inflight Show"),
                        self.daemon.log_tail(20))
        self.assertLess(took, 9.0, "waited for the grace time although the scan had ended")

        # the scan counted as done: nothing is left for the next start
        self.plex.delay = 0
        self.start_daemon(WEBHOOK_DELAY="0")
        self.assertEqual(self.queue_depth()["depth"], 0)
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 1.5))

    def test_sigterm_cancels_a_stuck_scan_after_the_grace_time_and_keeps_it(self):
        self.plex.delay = 30.0
        self.start_daemon(WEBHOOK_DELAY="0", PLEX_TIMEOUT="60s")
        f = self.show_file("Stuck Show")
        touch(f)
        folder = os.path.dirname(f)
        self.assertEqual(self.daemon.webhook("sonarr", self.sonarr_for(f)).status, 202)
        self.assertTrue(wait_until(lambda: self.plex.requests("refresh"), 15), "no Plex call")
        t0 = time.monotonic()
        self.daemon.signal(signal.SIGTERM)
        self.assertEqual(self.daemon.proc.wait(25), 0)
        took = time.monotonic() - t0
        self.assertGreater(took, 9.0, "did not wait for the scan in flight")
        self.assertLess(took, 20.0)
        self.assertTrue(self.daemon.log_matches(r"1 sync still in flight: cancelled"),
                        self.daemon.log_tail(20))

        # the interrupted entry is on disk and runs again at the next start
        self.plex.delay = 0
        self.start_daemon(WEBHOOK_DELAY="0")
        self.assertTrue(wait_until(lambda: self.plex.scans(path=folder), 20),
                        "the interrupted scan did not run again after the restart")


class ReloadTest(ServiceCase):
    """Plex is down at first, so a folder waits as unresolved under its (wrong) Plex path."""

    plex_running_at_start = False

    def test_sighup_with_corrected_path_replacements_scans_the_misplaced_folder(self):
        wrong = "/wrong/tv"
        self.start_daemon(WEBHOOK_DELAY="0", PATH_REPLACEMENTS='{"%s": "%s"}' % (ARR_TV, wrong))
        r = self.daemon.webhook("sonarr", rig.sonarr_download(
            ARR_TV + "/Moved Show", "Season 01/Moved Show - S01E01.mkv", title="Moved Show"))
        self.assertEqual(r.status, 202, r)
        self.assertEqual((r.json() or {}).get("status"), "unresolved", r)
        q = self.queue_depth()
        self.assertEqual([e["plex_path"] for e in q["entries"]],
                         [wrong + "/Moved Show/Season 01"], q)

        # an open keep-alive connection survives the reload
        conn = rig.http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        self.addCleanup(conn.close)
        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)

        self.plex.start(self.plex.port)
        self.rewrite_env(PATH_REPLACEMENTS='{"%s": "%s"}' % (ARR_TV, self.tv))
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(self.wait_log(r"configuration reloaded"), self.daemon.log_tail(20))

        want = os.path.join(self.tv, "Moved Show", "Season 01")
        scans = self.wait_scans(want, timeout=30)
        self.assertTrue(scans, "no scan of %s after the reload" % want)
        self.assertEqual(scans[0].section, "1")
        self.assertFalse([r for r in self.plex.refreshes() if r.scan_path.startswith(b"/wrong")])

        conn.request("GET", "/health")
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 200, "the keep-alive connection did not survive SIGHUP")


class SighupStormTest(ServiceCase):
    def test_a_burst_of_sighups_is_one_reload_and_one_line(self):
        self.start_daemon()
        self.assertTrue(self.wait_log(r"listening on"), self.daemon.log_tail(20))
        before = len(re.findall(r"SIGHUP", self.daemon.log()))
        pid = self.daemon.proc.pid
        for _ in range(200):
            os.kill(pid, signal.SIGHUP)
        self.assertTrue(self.wait_log(r"configuration reloaded"), self.daemon.log_tail(20))
        # Let any signal still in flight arrive and be handled, then count.
        self.assertTrue(rig.wait_until(lambda: self.daemon.get("/health").status == 200, 10))
        log = self.daemon.log()
        sighup_lines = len(re.findall(r"SIGHUP", log)) - before
        reloads = len(re.findall(r"configuration reloaded", log))
        self.assertGreaterEqual(sighup_lines, 1)
        self.assertLess(sighup_lines, 20, "a SIGHUP burst logged %d lines" % sighup_lines)
        self.assertEqual(reloads, sighup_lines, "one reload per logged SIGHUP line")
        self.assertIsNone(self.daemon.proc.poll(), "the daemon died under a SIGHUP storm")


class RefusedReloadTest(ServiceCase):
    def test_sighup_with_a_broken_file_keeps_the_old_configuration(self):
        notify = NotifyListener(os.path.join(self.tmp, "notify.sock"))
        self.addCleanup(notify.stop)
        self.daemon_proc_env = {"NOTIFY_SOCKET": notify.path}
        good = '{"%s": "%s"}' % (ARR_TV, self.tv)
        self.start_daemon(WEBHOOK_DELAY="0", PATH_REPLACEMENTS=good)
        self.rewrite_env(raw_lines=["WEBHOOK_DELAY=soon"],
                         PATH_REPLACEMENTS='{"%s": "/wrong/tv"}' % ARR_TV, WEBHOOK_DELAY=None)
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(self.wait_log(r"reload refused, keeping the running configuration: "
                                      r".*WEBHOOK_DELAY"), self.daemon.log_tail(20))
        self.assertTrue(self.daemon.running())
        self.assertTrue(wait_until(lambda: any(v.startswith("Reload refused")
                                               for _, v in notify.assignments("STATUS")), 10),
                        "STATUS= does not say the reload was refused: %r"
                        % notify.assignments("STATUS"))

        # the old PATH_REPLACEMENTS and WEBHOOK_DELAY still apply
        f = self.show_file("Kept Show")
        touch(f)
        r = self.daemon.webhook("sonarr", rig.sonarr_download(
            ARR_TV + "/Kept Show", os.path.relpath(f, os.path.join(self.tv, "Kept Show")),
            title="Kept Show"))
        self.assertEqual(r.status, 202, r)
        self.assertTrue(self.wait_scans(os.path.dirname(f), timeout=20), "no scan with the old mapping")
        self.assertFalse([r for r in self.plex.refreshes() if r.scan_path.startswith(b"/wrong")])

        # a corrected file is then taken
        self.rewrite_env(WEBHOOK_DELAY="0")
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(self.wait_log(r"configuration reloaded"), self.daemon.log_tail(20))
        self.assertTrue(wait_until(lambda: notify.assignments("STATUS")[-1][1].startswith("Queue:"),
                                   10), "STATUS= still says refused: %r"
                        % notify.assignments("STATUS")[-3:])


# ---------------------------------------------------------------------------------------------
# --check

class RcloneProc:
    """rclone with the given RC flags (serving `serve_dir` over HTTP, or `rcd` when None)."""

    def __init__(self, workdir, serve_dir, flags):
        self.port = free_port()
        cmd = [rig.RCLONE]
        if serve_dir is None:
            cmd += ["rcd"]
        else:
            cmd += ["serve", "http", serve_dir, "--addr", "127.0.0.1:%d" % free_port(), "--rc"]
        cmd += ["--rc-addr", "127.0.0.1:%d" % self.port,
                "--config", os.path.join(workdir, "rclone.conf")] + list(flags)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        self.log = open(os.path.join(workdir, "rclone-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)
        if not wait_until(lambda: self.proc.poll() is not None or port_open(self.port), 20) \
                or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("rclone did not start: %r" % cmd)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class CheckTest(RigTestCase):
    """`--check` against the Plex double (section 1 = <media>/tv, 2 = <media>/movies) and rclone
    (`serve http <media> --rc --rc-no-auth`, as the rig runs it)."""

    def check(self, mode=0o600, **overrides):
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
        self.assertNotIn(PLEX_TOKEN, out + err, "the token was printed")
        self.assertNotRegex(err, r"ERROR: \w+Sanitizer|runtime error:", err)
        return p.returncode, out

    def line(self, out, name):
        """The lines of check `name` ([(status, text)])."""
        found = []
        for ln in out.splitlines():
            m = re.match(r"^(OK|WARN|FAIL|SKIP)\s+(\S+)\s+(.*)$", ln)
            if m and m.group(2) == name:
                found.append((m.group(1), m.group(3)))
        return found

    def status_of(self, out, name):
        return [s for s, _ in self.line(out, name)]

    def rclone_proc(self, serve_dir, *flags):
        p = RcloneProc(self.tmp, serve_dir, flags)
        self.addCleanup(p.stop)
        return p

    # ---- Plex ----
    def test_everything_passes_with_a_good_configuration(self):
        touch(os.path.join(self.media, ".anchor"))
        rc, out = self.check(ANCHOR_FILES='["%s"]' % os.path.join(self.media, ".anchor"))
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.status_of(out, "plex"), ["OK"], out)
        self.assertIn(rig.PlexDouble.VERSION, self.line(out, "plex")[0][1])
        self.assertEqual(self.status_of(out, "plex-token"), ["OK"], out)
        libs = self.line(out, "plex-libraries")[0][1]
        self.assertIn("1 'TV Shows' (show) %s" % self.tv, libs)
        self.assertIn("2 'Movies' (movie) %s" % self.movies, libs)
        self.assertEqual(self.status_of(out, "rclone"), ["OK"], out)
        self.assertEqual(self.status_of(out, "rclone-vfs"), ["OK"], out)
        self.assertIn(self.media, self.line(out, "rclone-vfs")[0][1])
        self.assertEqual(self.status_of(out, "state-dir"), ["OK"], out)
        self.assertEqual(self.status_of(out, "anchor"), ["OK"], out)
        self.assertNotIn("FAIL", out)
        self.assertRegex(out.splitlines()[-1], r"^all \d+ checks passed$")

    def test_bad_token_fails_naming_plex_token(self):
        rc, out = self.check(PLEX_TOKEN="not-the-token")
        self.assertEqual(rc, 1, out)
        self.assertEqual(self.status_of(out, "plex"), ["OK"], out)
        (st, text), = self.line(out, "plex-token")
        self.assertEqual(st, "FAIL")
        self.assertIn("HTTP 401", text)
        self.assertIn("PLEX_TOKEN", text)
        self.assertNotIn("not-the-token", out)
        self.assertEqual(self.status_of(out, "mapping"), ["SKIP"], out)

    def test_plex_not_running_fails_on_identity(self):
        rc, out = self.check(PLEX_URL="http://127.0.0.1:%d" % free_port())
        self.assertEqual(rc, 1, out)
        (st, text), = self.line(out, "plex")
        self.assertEqual(st, "FAIL")
        self.assertIn("PLEX_URL", text)
        self.assertEqual(self.status_of(out, "plex-token"), ["SKIP"], out)

    def test_mapped_prefixes_outside_every_library_are_named(self):
        rc, out = self.check(
            PATH_REPLACEMENTS='{"/arr/tv": "/nowhere/tv", "/arr/movies": "%s", "/arr": "%s"}'
                              % (self.movies, self.media),
            SECTION_MAPPING='{"%s": 1, "/elsewhere": 2, "%s": 7}' % (self.tv, self.movies))
        self.assertEqual(rc, 1, out)
        lines = self.line(out, "mapping")
        fails = [t for s, t in lines if s == "FAIL"]
        oks = [t for s, t in lines if s == "OK"]
        self.assertTrue(any("'/nowhere/tv'" in t and "PATH_REPLACEMENTS" in t for t in fails), out)
        self.assertTrue(any("'/elsewhere'" in t and "SECTION_MAPPING" in t for t in fails), out)
        self.assertTrue(any("section 7" in t for t in fails), out)
        self.assertTrue(any(self.movies in t and "lies in section 2" in t for t in oks), out)
        self.assertTrue(any("holds section 1, 2" in t for t in oks), out)  # "/arr" -> media root
        self.assertEqual(len(fails), 3, out)

    # ---- rclone ----
    def test_rclone_with_auth_good_and_bad_credentials(self):
        rc_auth = self.rclone_proc(self.media, "--rc-user", "u", "--rc-pass", "p")
        rc, out = self.check(RCLONE_RC_URL=rc_auth.url, RCLONE_RC_USER="u", RCLONE_RC_PASS="p")
        self.assertEqual(rc, 0, out)
        self.assertIn("accepts RCLONE_RC_USER/RCLONE_RC_PASS", self.line(out, "rclone")[0][1])
        self.assertEqual(self.status_of(out, "rclone-vfs"), ["OK"], out)

        rc, out = self.check(RCLONE_RC_URL=rc_auth.url, RCLONE_RC_USER="u", RCLONE_RC_PASS="wrong")
        self.assertEqual(rc, 1, out)
        (st, text), = self.line(out, "rclone")
        self.assertEqual(st, "FAIL")
        self.assertIn("HTTP 401", text)
        self.assertIn("RCLONE_RC_USER/RCLONE_RC_PASS", text)
        self.assertNotIn("wrong", out)

        rc, out = self.check(RCLONE_RC_URL=rc_auth.url)
        self.assertEqual(rc, 1, out)
        self.assertIn("rclone wants credentials", self.line(out, "rclone")[0][1])

    def test_rclone_rcd_with_auth_but_no_vfs(self):
        rcd = self.rclone_proc(None, "--rc-user", "u", "--rc-pass", "p")
        rc, out = self.check(RCLONE_RC_URL=rcd.url, RCLONE_RC_USER="u", RCLONE_RC_PASS="p")
        self.assertEqual(rc, 1, out)
        self.assertEqual(self.status_of(out, "rclone"), ["OK"], out)
        (st, text), = self.line(out, "rclone-vfs")
        self.assertEqual(st, "FAIL")
        self.assertIn("no VFS active", text)

    def test_rclone_without_auth(self):
        # --rc-no-auth (the rig's rclone): passes without credentials
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("--rc-no-auth", self.line(out, "rclone")[0][1])
        # neither credentials nor --rc-no-auth: rc/noopauth is refused with 403, but Debian's
        # rclone still runs the VFS calls, so it is a warning (test_newcomer: the rclone that fails)
        bare = self.rclone_proc(self.media)
        rc, out = self.check(RCLONE_RC_URL=bare.url)
        self.assertEqual(rc, 0, out)
        (st, text), = self.line(out, "rclone")
        self.assertEqual(st, "WARN")
        self.assertIn("--rc-no-auth", text)

    def test_rclone_wrong_fs_names_the_active_ones(self):
        rc, out = self.check(RCLONE_FS="gdrive:media")
        self.assertEqual(rc, 1, out)
        (st, text), = self.line(out, "rclone-vfs")
        self.assertEqual(st, "FAIL")
        self.assertIn("RCLONE_FS", text)
        self.assertIn("'%s'" % self.media, text)
        rc, out = self.check(RCLONE_FS=self.media)
        self.assertEqual(rc, 0, out)

    def test_rclone_not_running(self):
        rc, out = self.check(RCLONE_RC_URL="http://127.0.0.1:%d" % free_port())
        self.assertEqual(rc, 1, out)
        self.assertIn("RCLONE_RC_URL", self.line(out, "rclone")[0][1])
        self.assertEqual(self.status_of(out, "rclone-vfs"), ["SKIP"], out)

    # ---- files ----
    def test_state_dir_anchor_and_env_file_problems(self):
        blocker = os.path.join(self.tmp, "not-a-dir")
        touch(blocker)
        rc, out = self.check(mode=0o644, STATE_DIR=blocker,
                             ANCHOR_FILES='["%s"]' % os.path.join(self.media, ".missing-anchor"))
        self.assertEqual(rc, 1, out)
        self.assertEqual(self.status_of(out, "state-dir"), ["FAIL"], out)
        (st, text), = self.line(out, "anchor")
        self.assertEqual(st, "FAIL")
        self.assertIn(".missing-anchor", text)
        (st, text), = self.line(out, "env-file")
        self.assertEqual(st, "WARN")  # the daemon reads it: it works (test_newcomer: the advice)
        self.assertIn("PLEX_TOKEN", text)

    def test_invalid_configuration_is_one_fail_line(self):
        rc, out = self.check(WEBHOOK_DELAY="soon")
        self.assertEqual(rc, 1, out)
        (st, text), = self.line(out, "config")
        self.assertEqual(st, "FAIL")
        self.assertIn("WEBHOOK_DELAY", text)


if __name__ == "__main__":
    unittest.main()
