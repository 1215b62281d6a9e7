"""The configuration in a newcomer's first hour (issue: the newcomer's first hour): a misspelt
variable in the env file, several invalid values at once, a PLEX_URL copied from the browser,
https spoken to Plex's http port, and a Plex with a self-signed certificate (PLEX_CA_FILE). What
the log says at start and at reload (SIGHUP), and what --check prints and exits with."""

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import unittest

import rig
from rig import Daemon, DaemonError, PLEX_TOKEN, RigTestCase, media_server, touch, wait_until

# Every invalid value of one env file, and the line each must give (one each, in any order).
BAD_VALUES = {
    "WEBHOOK_DELAY": "15m",
    "PLEX_TIMEOUT": "soon",
    "PATH_REPLACEMENTS": "{'/tv': '/data/tv'}",
    "SECTION_MAPPING": '{"/data/tv": 2,}',
    "MEDIA_SERVERS": json.dumps([
        {"name": "a", "type": "plex", "url": "http://127.0.0.1:1", "tokn": "x"},
        {"name": "b", "type": "emby", "url": "ftp://127.0.0.1:2", "token": "y"}]),
    "NOTIFY": '[{"type": "gotify", "url": "https://gotify.example.org"}]',
}
BAD_LINES = [
    r"WEBHOOK_DELAY: 15m is longer than WEBHOOK_MAX_DELAY, which is 10m by default: also set "
    r"WEBHOOK_MAX_DELAY=15m or longer, or set a shorter WEBHOOK_DELAY \(got '15m'\)",
    r"PLEX_TIMEOUT: not a duration \(use 30, 30s, 5m, 1h, 1d or 250ms\) \(got 'soon'\)",
    r"PATH_REPLACEMENTS: not valid JSON \(error at byte \d+\): use double quotes around keys and "
    r"strings, as in \{\"/from\": \"/to\"\}",
    r"SECTION_MAPPING: not valid JSON \(error at byte \d+\): the right form is \{\"/data/tv\": 2\}",
    r"MEDIA_SERVERS: item 1 \(a\): unknown key 'tokn' \(did you mean 'token'\?\)",
    r"MEDIA_SERVERS: item 2 \(b\): url must start with http:// or https://",
    r"NOTIFY: item 1 \(gotify\): a gotify destination needs token or token_file",
]


def write_env_file(path, env):
    """A dotenv file as the rig writes one (mode 0600: it holds the token)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("# written by test_config_hints\n")
        for k, v in env.items():
            f.write("%s=%s\n" % (k, rig._dotenv_quote(v)))
    os.chmod(path, 0o600)


def run_check(env, workdir):
    """`plex-servarr-sync --check --env-file` over env (a dict): (exit status, stdout)."""
    path = os.path.join(workdir, "check.env")
    write_env_file(path, env)
    penv = {k: os.environ[k] for k in rig.PASSTHROUGH_ENV if k in os.environ}
    p = subprocess.run([rig.BINARY, "--check", "--env-file", path], env=penv, cwd=workdir,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    assert not rig.SANITIZER_REPORT.search(err), err
    assert PLEX_TOKEN not in out + err, "the token was printed"
    return p.returncode, out


def check_lines(out, level, name):
    """The texts of the --check lines of `level` (OK, WARN, FAIL, SKIP) and check `name`."""
    found = []
    for ln in out.splitlines():
        m = re.match(r"^(\w+)\s+(\S+)\s+(.*)$", ln)
        if m and m.group(1) == level and m.group(2) == name:
            found.append(m.group(3))
    return found


def log_lines(daemon, level):
    return [ln for ln in daemon.own_log().splitlines() if " %s " % level in ln]


def assert_start_fails(test, daemon):
    """The daemon refuses to start: exit 1, no sanitizer report (a leak on that path included)."""
    with test.assertRaises(DaemonError):
        daemon.start(timeout=10.0)
    test.assertEqual(daemon.proc.wait(timeout=10), 1)
    test.assertIsNone(rig.SANITIZER_REPORT.search(daemon.own_log()), daemon.own_log())


def assert_each_once(test, lines, patterns, prefix=""):
    """Each pattern matches exactly one of lines (after prefix), and every line one pattern."""
    for pat in patterns:
        hits = [ln for ln in lines if re.search(re.escape(prefix) + pat, ln)]
        test.assertEqual(len(hits), 1, "%r in:\n%s" % (pat, "\n".join(lines)))
    test.assertEqual(len(lines), len(patterns), "\n".join(lines))


class ConfigCase(RigTestCase):
    use_rclone = False

    def rewrite_env(self, **changes):
        """Rewrite the running daemon's env file with changes (None removes a key)."""
        env = dict(self.daemon.env)
        for k, v in changes.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        write_env_file(self.daemon.env_path, env)

    def wait_log(self, pattern, timeout=20.0):
        return wait_until(lambda: re.search(pattern, self.daemon.own_log()), timeout)

    def webhook_for(self, show):
        f = self.show_file(show)
        touch(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertEqual(r.status, 202, r)
        return os.path.dirname(f)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class UnknownKeysTest(ConfigCase):
    def test_a_misspelt_key_in_the_env_file_is_warned_with_the_name_it_resembles(self):
        # In the process environment, a typo is another program's variable: not looked at.
        self.daemon_proc_env = {"OTHER_PROGRAMS_VARIABLE": "1", "PLEX_TOKN_ENV": "x"}
        self.start_daemon(WEBHOOK_DELEY="15s", PLEX_TOKN="x", plex_url="http://x", SECRET_KEY="s",
                          PUID="1000", COMPOSE_PROJECT_NAME="media")
        warns = log_lines(self.daemon, "WARN")
        assert_each_once(self, [w for w in warns if "daemon.env line" in w], [
            r"daemon\.env line \d+: WEBHOOK_DELEY is not a variable plex-servarr-sync reads "
            r"\(did you mean WEBHOOK_DELAY\?\); it is ignored",
            r"daemon\.env line \d+: PLEX_TOKN is not a variable plex-servarr-sync reads "
            r"\(did you mean PLEX_TOKEN\?\); it is ignored",
            r"daemon\.env line \d+: plex_url is not a variable plex-servarr-sync reads "
            r"\(did you mean PLEX_URL\? names are case-sensitive\)",
        ])
        # the Python script's own keys, compose's and the *arr images' are known; so is the
        # environment's
        for quiet in ("SECRET_KEY", "PUID", "COMPOSE_PROJECT_NAME", "OTHER_PROGRAMS_VARIABLE",
                      "PLEX_TOKN_ENV"):
            self.assertFalse([w for w in warns if quiet in w], "\n".join(warns))
        # the line number is the key's line in the file
        with open(self.daemon.env_path, encoding="utf-8") as f:
            lineno = next(i for i, ln in enumerate(f, 1) if ln.startswith("WEBHOOK_DELEY="))
        self.assertTrue([w for w in warns if "daemon.env line %d: WEBHOOK_DELEY" % lineno in w])

    def test_a_reload_warns_of_a_misspelt_key_it_reads(self):
        self.start_daemon()
        self.assertFalse([w for w in log_lines(self.daemon, "WARN") if "is not a variable" in w])
        self.rewrite_env(MINIMUM_AEG="1m", JELLYFIN_API_KEY="0123")
        self.daemon.signal(signal.SIGHUP)
        self.assertTrue(self.wait_log(r"configuration reloaded"), self.daemon.log_tail(20))
        warns = log_lines(self.daemon, "WARN")
        self.assertTrue([w for w in warns if re.search(
            r"MINIMUM_AEG is not a variable plex-servarr-sync reads \(did you mean MINIMUM_AGE\?\)", w)],
            "\n".join(warns))
        # the Python script's name for a variable of this daemon: the one to use instead
        self.assertTrue([w for w in warns if re.search(
            r"JELLYFIN_API_KEY is the Python script's name: plex-servarr-sync reads JELLYFIN_TOKEN", w)],
            "\n".join(warns))

    def test_check_shows_a_misspelt_key_as_a_warning_and_passes(self):
        env = self.daemon_env(WEBHOOK_DELEY="15s")
        env.pop("PORT")
        code, out = run_check(env, self.tmp)
        warns = check_lines(out, "WARN", "config")
        self.assertEqual(len(warns), 1, out)
        self.assertRegex(warns[0], r"check\.env line \d+: WEBHOOK_DELEY is not a variable "
                                   r"plex-servarr-sync reads \(did you mean WEBHOOK_DELAY\?\)")
        self.assertFalse(check_lines(out, "FAIL", "config"), out)
        self.assertEqual(code, 0, out)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class AllErrorsTest(ConfigCase):
    def test_every_invalid_value_is_one_line_at_start_and_the_start_fails(self):
        d = Daemon(os.path.join(self.tmp, "run"), self.daemon_env(**BAD_VALUES))
        assert_start_fails(self, d)
        errors = log_lines(d, "ERROR")
        self.assertTrue(all("configuration error: " in e for e in errors), "\n".join(errors))
        assert_each_once(self, errors, BAD_LINES, "configuration error: ")
        self.assertNotIn("gotify.example.org", d.own_log(), "a NOTIFY URL is a secret")

    def test_a_reload_with_invalid_values_names_each_and_keeps_the_running_configuration(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        self.rewrite_env(**BAD_VALUES)
        self.daemon.signal(signal.SIGHUP)
        prefix = "reload refused, keeping the running configuration: "
        self.assertTrue(wait_until(lambda: len([e for e in log_lines(self.daemon, "ERROR")
                                                if prefix in e]) >= len(BAD_LINES), 20),
                        self.daemon.log_tail(30))
        errors = [e for e in log_lines(self.daemon, "ERROR") if prefix in e]
        assert_each_once(self, errors, BAD_LINES, prefix)
        self.assertTrue(self.daemon.running())
        # still the old WEBHOOK_DELAY (0): a webhook is scanned at once
        self.wait_library_list(self.show_file("Probe Show"))
        self.assertTrue(self.wait_scans(self.webhook_for("Kept Show")), "no scan after the refused reload")

    def test_check_prints_every_invalid_value_as_a_fail_line(self):
        env = self.daemon_env(PLEX_TOKN="x", **BAD_VALUES)
        env.pop("PORT")
        code, out = run_check(env, self.tmp)
        self.assertEqual(code, 1, out)
        assert_each_once(self, check_lines(out, "FAIL", "config"), BAD_LINES)
        self.assertEqual(len(check_lines(out, "WARN", "config")), 1, out)  # PLEX_TOKN
        self.assertIn("%d configuration errors: nothing else was checked" % len(BAD_LINES), out)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class ServerAddressTest(ConfigCase):
    def test_a_plex_url_copied_from_the_browser_is_cut_to_the_server_with_a_warning(self):
        given = self.plex.url + "/web/index.html#!/server/0123abcd/details"
        self.start_daemon(PLEX_URL=given, WEBHOOK_DELAY="0")
        warns = [w for w in log_lines(self.daemon, "WARN") if "PLEX_URL" in w]
        self.assertEqual(len(warns), 1, "\n".join(warns))
        self.assertIn("PLEX_URL: '%s' is the address of the server's web app, not of its API: using '%s' "
                      "(set PLEX_URL=%s to drop this warning)" % (given, self.plex.url, self.plex.url), warns[0])
        self.wait_library_list(self.show_file("Probe Show"))
        self.assertTrue(self.wait_scans(self.webhook_for("Web Show")), "no scan through the cut PLEX_URL")

    def test_jellyfins_web_address_under_a_base_path_is_cut_too(self):
        jf = self.add_mb("jellyfin12", base_path="/jellyfin")
        self.start_daemon(JELLYFIN_URL=jf.url + "/web/", JELLYFIN_TOKEN=jf.token, WEBHOOK_DELAY="0")
        self.assertTrue([w for w in log_lines(self.daemon, "WARN")
                         if "JELLYFIN_URL: '%s/web/'" % jf.url in w and "using '%s'" % jf.url in w],
                        self.daemon.log_tail(30))
        self.wait_library_list(self.show_file("Probe Show"))
        folder = self.webhook_for("Jelly Show")
        self.assertTrue(self.wait_updates(jf, folder), "no Media/Updated through the cut JELLYFIN_URL")

    def test_https_to_plexs_http_port_is_told_to_use_http(self):
        wrong = "https://127.0.0.1:%d" % self.plex.port
        fix = "the server speaks http here: use http://127.0.0.1:%d in PLEX_URL" % self.plex.port
        env = self.daemon_env(PLEX_URL=wrong)
        env.pop("PORT")
        code, out = run_check(env, self.tmp)
        self.assertEqual(code, 1, out)
        self.assertTrue([t for t in check_lines(out, "FAIL", "plex") if fix in t], out)

        self.start_daemon(PLEX_URL=wrong)
        self.assertTrue(self.wait_log(r"cannot read plex's libraries: .*" + re.escape(fix)),
                        self.daemon.log_tail(20))
        self.assertEqual(self.plex.requests(), [], "the double answered a TLS handshake?")


def make_tls_files(workdir):
    """A CA and a certificate for 127.0.0.1 signed by it (EC keys, 2 days), made with openssl:
    (ca.pem, server.pem, server.key) paths."""
    def openssl(*args):
        subprocess.run(("openssl",) + args, cwd=workdir, check=True, capture_output=True, timeout=60)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=plex-servarr-sync test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(workdir, "server.ext"), "w", encoding="ascii") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return tuple(os.path.join(workdir, n) for n in ("ca.pem", "server.pem", "server.key"))


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
@unittest.skipUnless(shutil.which("openssl"), "openssl not installed (packaging/bootstrap.sh test installs it)")
class CaFileTest(ConfigCase):
    """A Plex double speaking https with a certificate signed by a CA of the test's own."""

    @classmethod
    def setUpClass(cls):
        cls.tls_dir = tempfile.mkdtemp(prefix="pss-tls-")
        cls.ca, cert, key = make_tls_files(cls.tls_dir)
        cls.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cls.ctx.load_cert_chain(cert, key)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tls_dir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.tls = self.add_plex(ssl_context=self.ctx)
        self.assertTrue(self.tls.url.startswith("https://"))

    def tls_env(self, **kw):
        return dict(PLEX_URL=self.tls.url, PLEX_TOKEN=self.tls.token, WEBHOOK_DELAY="0", **kw)

    def wait_tls_scan(self, folder):
        return wait_until(lambda: self.tls.scans(path=folder), 30)

    def test_without_the_ca_file_check_and_start_name_plex_ca_file(self):
        fix = "its certificate is not trusted (self-signed?): set PLEX_CA_FILE to the CA certificate"
        env = self.daemon_env(**self.tls_env())
        env.pop("PORT")
        code, out = run_check(env, self.tmp)
        self.assertEqual(code, 1, out)
        self.assertTrue([t for t in check_lines(out, "FAIL", "plex") if fix in t], out)

        self.start_daemon(**self.tls_env())
        self.assertTrue(self.wait_log(r"cannot read plex's libraries: .*" + re.escape(fix)),
                        self.daemon.log_tail(20))
        self.assertEqual(self.tls.requests(), [], "a request got through an untrusted certificate")

    def test_with_the_ca_file_check_passes_and_the_scan_arrives(self):
        env = self.daemon_env(**self.tls_env(PLEX_CA_FILE=self.ca))
        env.pop("PORT")
        code, out = run_check(env, self.tmp)
        self.assertTrue(check_lines(out, "OK", "plex"), out)
        self.assertTrue(check_lines(out, "OK", "plex-token"), out)
        self.assertFalse(check_lines(out, "FAIL", "plex"), out)

        self.start_daemon(**self.tls_env(PLEX_CA_FILE=self.ca))
        self.assertTrue(wait_until(lambda: self.tls.requests(route="sections"), 20), "no library list read")
        folder = self.webhook_for("Tls Show")
        self.assertTrue(self.wait_tls_scan(folder), "no scan over https with PLEX_CA_FILE")

    def test_a_media_servers_item_takes_its_own_ca_file(self):
        item = media_server("secure", self.tls, ca_file=self.ca)
        self.start_daemon(WEBHOOK_DELAY="0", **self.media_servers_env([item]))
        self.assertTrue(wait_until(lambda: self.tls.requests(route="sections"), 20), "no library list read")
        folder = self.webhook_for("Item Show")
        self.assertTrue(self.wait_tls_scan(folder), "no scan over https with the item's ca_file")

    def test_a_ca_file_that_cannot_be_used_stops_the_start_naming_it(self):
        not_pem = os.path.join(self.tmp, "not-a-cert.txt")
        with open(not_pem, "w", encoding="ascii") as f:
            f.write("hello\n")
        missing = os.path.join(self.tmp, "missing.pem")
        cases = ((missing, "PLEX_CA_FILE: cannot read '%s': No such file or directory" % missing),
                 (not_pem, "PLEX_CA_FILE: '%s' holds no PEM certificate" % not_pem))
        for i, (ca, want) in enumerate(cases):
            d = Daemon(os.path.join(self.tmp, "run-%d" % i), self.daemon_env(**self.tls_env(PLEX_CA_FILE=ca)))
            assert_start_fails(self, d)
            errors = log_lines(d, "ERROR")
            self.assertEqual(len(errors), 1, "\n".join(errors))
            self.assertIn("configuration error: " + want, errors[0])


if __name__ == "__main__":
    unittest.main()
