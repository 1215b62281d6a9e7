"""What the container image relies on, proven on the plain binary: `--health` (the image's
HEALTHCHECK), the X_FILE secrets (read at start and again on SIGHUP) and the one clear line for
a STATE_DIR the daemon's user cannot write. test/container/run.py proves the image itself."""

import os
import shutil
import signal
import subprocess
import unittest

import rig
from rig import MANUAL_PASS, PLEX_TOKEN, RigTestCase, free_port, wait_until


def run_binary(args=(), env=None, cwd=None, preexec=(), timeout=30):
    """Run the binary to its exit with only `env` (plus the sanitizer options) in its environment."""
    penv = {k: os.environ[k] for k in rig.PASSTHROUGH_ENV if k in os.environ}
    penv.update({k: str(v) for k, v in (env or {}).items()})
    return subprocess.run(list(preexec) + [rig.BINARY] + list(args), env=penv, cwd=cwd or "/",
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


class HealthProbe(RigTestCase):
    use_rclone = False

    def test_health_exits_0_on_200_and_1_when_nothing_answers(self):
        self.start_daemon()
        env = {"PORT": self.daemon.port, "BIND_ADDRESS": "127.0.0.1"}
        p = run_binary(["--health"], env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout, "healthy: GET http://127.0.0.1:%d/health answered 200\n" % self.daemon.port)
        # A wildcard BIND_ADDRESS is probed on loopback.
        p = run_binary(["--health"], dict(env, BIND_ADDRESS="0.0.0.0"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The same settings from an env file (as in the container: ./.env in the working directory).
        with open(os.path.join(self.tmp, ".env"), "w", encoding="utf-8") as f:
            f.write("PORT=%d\n" % self.daemon.port)
        p = run_binary(["--health"], cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        closed = free_port()
        p = run_binary(["--health"], {"PORT": closed})
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertTrue(p.stdout.startswith("unhealthy: GET http://127.0.0.1:%d/health: " % closed), p.stdout)
        self.assertEqual(len(p.stdout.splitlines()), 1, p.stdout)

    def test_health_with_a_bad_configuration_is_unhealthy(self):
        p = run_binary(["--health"], {"PORT": "0"})
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stdout.startswith("unhealthy: configuration error: PORT"), p.stdout)


class SecretFiles(RigTestCase):
    use_rclone = False

    def write_secret(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o600)
        return path

    def test_plex_token_file_is_sent_to_plex_and_read_again_on_sighup(self):
        # A webhook may come while the library list is being (re-)read: "unresolved" then, and
        # scanned once the list is in; the scan is what proves the token.
        token_file = self.write_secret("plex_token", PLEX_TOKEN + "\n")
        self.start_daemon(PLEX_TOKEN=None, PLEX_TOKEN_FILE=token_file, WEBHOOK_DELAY="0")
        first = self.show_file("Show One")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(first)), ("queued", "unresolved"))
        self.assertTrue(self.wait_scans(os.path.dirname(first)), self.plex.refreshes())
        # Rotate the token: Plex takes only the new one; SIGHUP re-reads the file.
        self.plex.token = "rotated-token-77"
        self.write_secret("plex_token", "rotated-token-77\r\n")
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: self.daemon.log_matches(r"configuration reloaded"), 20),
                        self.daemon.log_tail(20))
        second = self.show_file("Show Two")
        self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(second)), ("queued", "unresolved"))
        self.assertTrue(self.wait_scans(os.path.dirname(second)), self.plex.refreshes())
        self.assertNotIn("rotated-token-77", self.daemon.log())
        self.assertNotIn(PLEX_TOKEN, self.daemon.log())

    def test_manual_pass_file_guards_the_ui(self):
        pass_file = self.write_secret("manual_pass", "from-a-file\n")
        self.start_daemon(MANUAL_PASS=None, MANUAL_PASS_FILE=pass_file)
        self.assertEqual(self.daemon.get("/api/queue", auth=("admin", "from-a-file")).status, 200)
        self.assertEqual(self.daemon.get("/api/queue", auth=("admin", MANUAL_PASS)).status, 401)

    def test_variable_and_its_file_together_stop_the_start(self):
        token_file = self.write_secret("plex_token", PLEX_TOKEN)
        p = run_binary(env={"PLEX_TOKEN": PLEX_TOKEN, "PLEX_TOKEN_FILE": token_file, "PORT": free_port()})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("PLEX_TOKEN_FILE: PLEX_TOKEN is set too; set only one of them", p.stderr)
        self.assertNotIn(PLEX_TOKEN, p.stderr)

    def test_unreadable_file_names_the_variable_and_the_path(self):
        missing = os.path.join(self.tmp, "no-such-secret")
        p = run_binary(env={"WEBHOOK_USER": "u", "WEBHOOK_PASS_FILE": missing, "PORT": free_port()})
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("WEBHOOK_PASS_FILE: cannot read '%s': No such file or directory" % missing, p.stderr)


def unprivileged():
    """(preexec command, uid, gid) running the binary as a user who is not root, or None."""
    if os.geteuid() != 0:
        return [], os.geteuid(), os.getegid()
    setpriv = shutil.which("setpriv")
    if not setpriv:
        return None
    return [setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups"], 65534, 65534


class UnwritableStateDir(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(__import__("tempfile").mkdtemp(prefix="pss-it-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)

    def test_one_line_names_the_path_the_uid_and_the_fix(self):
        how = unprivileged()
        if how is None:
            self.skipTest("running as root without setpriv: cannot drop to an unprivileged user")
        preexec, uid, gid = how
        state = os.path.join(self.tmp, "state")
        os.mkdir(state)
        os.chmod(state, 0o555 if os.geteuid() != 0 else 0o755)  # root owns it as root; else no write bit
        self.expect_one_line(preexec, uid, gid, state)

    def test_a_database_left_by_another_user_gets_the_same_line(self):
        how = unprivileged()
        if how is None:
            self.skipTest("running as root without setpriv: cannot drop to an unprivileged user")
        preexec, uid, gid = how
        state = os.path.join(self.tmp, "state")
        os.mkdir(state)
        os.chown(state, uid, gid)  # the folder is the user's (chown without -R) ...
        db = os.path.join(state, "plex-servarr-sync.db")
        with open(db, "wb"):
            pass
        os.chmod(db, 0o444 if os.geteuid() != 0 else 0o644)  # ... the database is not
        self.expect_one_line(preexec, uid, gid, state)

    def expect_one_line(self, preexec, uid, gid, state):
        if not os.access(rig.BINARY, os.X_OK):
            self.skipTest("no binary")
        p = run_binary(preexec=preexec, env={"STATE_DIR": state, "PORT": free_port(), "MANUAL_PASS": "x",
                                             "USE_RCLONE": "false"})
        self.assertNotEqual(p.returncode, 0)
        lines = [l for l in (p.stdout + p.stderr).splitlines() if "STATE_DIR" in l]
        self.assertEqual(len(lines), 1, p.stdout + p.stderr)
        want = ("STATE_DIR %s is not writable by uid %d gid %d: give that user the folder (chown -R %d:%d it, "
                "or the host folder mounted there) or run as its owner (user: in compose, --user)"
                % (state, uid, gid, uid, gid))
        self.assertIn(want, lines[0])


if __name__ == "__main__":
    unittest.main()
