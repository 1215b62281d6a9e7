"""The integration rig: free ports, rclone, the daemon, webhook payloads, and polling.

Everything waits on conditions (wait_until) with generous timeouts; nothing sleeps a fixed time
to wait for an outcome. The only fixed waits are quiet periods that check that something does
NOT happen (stays()), each tied to the configured delays.

Environment:
  PSS_BINARY        the daemon (default: ../../build/plex-servarr-sync from this file)
  PSS_FIXTURES_DIR  the *arr payload fixtures (default: ../fixtures from this file)
  PSS_RCLONE        the rclone binary (default: rclone on PATH)
  PSS_SHOW_LOGS=1   print the daemon's and rclone's logs after every test, not only failures
  PSS_PREV_CACHE    where previous_binary() keeps earlier versions' builds (default: next to
                    PSS_BINARY)
"""

import base64
import copy
import fcntl
import html
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import itertools

from mbdouble import MBDouble
from plexdouble import PlexDouble

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BINARY = os.path.normpath(os.path.join(HERE, "..", "..", "build", "plex-servarr-sync"))
BINARY = os.environ.get("PSS_BINARY") or DEFAULT_BINARY
FIXTURES_DIR = os.environ.get("PSS_FIXTURES_DIR") or os.path.normpath(
    os.path.join(HERE, "..", "fixtures"))
RCLONE = os.environ.get("PSS_RCLONE") or shutil.which("rclone") or "rclone"

# Variables passed through to the daemon's (otherwise empty) environment.
PASSTHROUGH_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS",
                   "MSAN_OPTIONS", "LD_LIBRARY_PATH", "PATH")

PLEX_TOKEN = "plex-test-token-4f9a"
MANUAL_USER = "admin"
MANUAL_PASS = "manual-test-pass-Zx81"


# ---------------------------------------------------------------------------------------------
# waiting

def wait_until(predicate, timeout=30.0, interval=0.05):
    """Call predicate() every `interval` s until it returns something true; return that value,
    or the last (false) value once `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def stays(predicate, duration, interval=0.05):
    """True if predicate() stays true for `duration` s (checked every `interval` s): the quiet
    period that proves something does not happen."""
    deadline = time.monotonic() + duration
    while True:
        if not predicate():
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# HTTP

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Response:
    """status, headers (an http.client.HTTPMessage: case-insensitive get), body (bytes),
    json() (None if the body is not JSON)."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "Response(%d, %r)" % (self.status, self.body[:300])


def basic_auth(user, password, encoding="utf-8"):
    raw = ("%s:%s" % (user, password)).encode(encoding)
    return "Basic " + base64.b64encode(raw).decode("ascii")


def http_request(method, port, target, body=None, headers=None, timeout=15.0,
                 host="127.0.0.1"):
    """One request on a fresh connection. target is sent as given (already percent-encoded)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.headers, data)
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# media server targets: the daemon's configuration for several doubles

_double_serial = itertools.count(1)


def unique_token(kind):
    """A token no other double of this process has (so a daemon that sends one target's token to
    another is refused)."""
    return "%s-test-token-%d-%x" % (kind, next(_double_serial), os.getpid())


def server_type(double):
    """The `type` of a MEDIA_SERVERS entry for a double: "plex", "jellyfin" or "emby"."""
    if isinstance(double, PlexDouble):
        return "plex"
    if isinstance(double, MBDouble):
        return double.server_type
    raise TypeError("not a media server double: %r" % (double,))


def media_server(name, double, token=None, path_replacements=None, **extra):
    """One MEDIA_SERVERS entry (a dict) for a double: {"name", "type", "url", "token"} and, when
    given, "path_replacements" (a dict). token defaults to the double's own. Extra keys
    (section_mapping, timeout, empty_trash, scan_path, token_file, ...) are added as given and
    not checked, so a test can also send a wrong one; with token_file there is no "token"."""
    entry = {"name": name, "type": server_type(double), "url": double.url}
    if "token_file" not in extra:
        entry["token"] = double.token if token is None else token
    if path_replacements is not None:
        entry["path_replacements"] = path_replacements
    entry.update(extra)
    return entry


def media_servers_json(entries):
    """The value of MEDIA_SERVERS: entries are dicts (from media_server()) or (name, double)
    pairs."""
    out = [e if isinstance(e, dict) else media_server(*e) for e in entries]
    return json.dumps(out, ensure_ascii=False)


SHORTHAND_PREFIX = {"plex": "PLEX", "jellyfin": "JELLYFIN", "emby": "EMBY"}


def target_env(double, token=None, path_replacements=None):
    """The shorthand variables for one double: PLEX_URL + PLEX_TOKEN, JELLYFIN_URL +
    JELLYFIN_TOKEN or EMBY_URL + EMBY_TOKEN. path_replacements (a dict) goes to
    JELLYFIN_PATH_REPLACEMENTS / EMBY_PATH_REPLACEMENTS, or PATH_REPLACEMENTS for Plex."""
    prefix = SHORTHAND_PREFIX[server_type(double)]
    env = {prefix + "_URL": double.url,
           prefix + "_TOKEN": double.token if token is None else token}
    if path_replacements is not None:
        key = "PATH_REPLACEMENTS" if prefix == "PLEX" else prefix + "_PATH_REPLACEMENTS"
        env[key] = json.dumps(path_replacements, ensure_ascii=False)
    return env


def start_plex_double(token=None, sections=None, machine_identifier=None, **kw):
    """A started PlexDouble with a token and machine identifier of its own. Stop it yourself
    (RigTestCase.add_plex does it in a cleanup)."""
    n = next(_double_serial)
    return PlexDouble(token=token or unique_token("plex"), sections=sections,
                      machine_identifier=machine_identifier or "plexdouble%030x" % n,
                      **kw).start()


def start_mb_double(kind="jellyfin", token=None, libraries=None, **kw):
    """A started MBDouble (kind "jellyfin", "jellyfin12" or "emby") with a token of its own."""
    token = token or unique_token("emby" if kind == "emby" else "jellyfin")
    return MBDouble(kind, token=token, libraries=libraries, **kw).start()


# ---------------------------------------------------------------------------------------------
# fixtures and payloads

def load_fixture(name):
    """A fixture payload as a dict (name with or without .json)."""
    if not name.endswith(".json"):
        name += ".json"
    with open(os.path.join(FIXTURES_DIR, name), encoding="utf-8") as f:
        return json.load(f)


def _rewrite_str(s, old, new):
    if s == old:
        return new
    if s.startswith(old.rstrip("/") + "/"):
        return new.rstrip("/") + s[len(old.rstrip("/")):]
    return s


def rewrite_paths(payload, old_prefix, new_prefix):
    """A deep copy of payload with every string equal to old_prefix or below it (by whole path
    component) moved under new_prefix. E.g. rewrite_paths(p, "/home/user/media", tmp_media)."""
    def walk(v):
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, str):
            return _rewrite_str(v, old_prefix, new_prefix)
        return v
    return walk(payload)


FIXTURE_MEDIA_ROOT = "/home/user/media"


def sonarr_download(series_path, relative_path, title=None):
    """The Sonarr Download fixture for the file series_path/relative_path."""
    p = copy.deepcopy(load_fixture("sonarr-download"))
    p["series"]["path"] = series_path
    if title is not None:
        p["series"]["title"] = title
    p["episodeFile"]["relativePath"] = relative_path
    p["episodeFile"]["path"] = series_path.rstrip("/") + "/" + relative_path
    return p


def radarr_download(folder_path, relative_path, title=None):
    """The Radarr Download fixture for the file folder_path/relative_path."""
    p = copy.deepcopy(load_fixture("radarr-download"))
    p["movie"]["folderPath"] = folder_path
    if title is not None:
        p["movie"]["title"] = title
    p["movieFile"]["relativePath"] = relative_path
    p["movieFile"]["path"] = folder_path.rstrip("/") + "/" + relative_path
    return p


def touch(path, data=b"x"):
    """Create path (and its parents) with some bytes; returns its mtime (wall seconds)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return os.stat(path).st_mtime


# ---------------------------------------------------------------------------------------------
# rclone

class Rclone:
    """`rclone serve http <dir> --rc` on two free ports: the RC API (rc_url) and the VFS served
    over HTTP (serve_url), so a test can see exactly what rclone's VFS lists."""

    NAME_RE = re.compile(r'<span class="name"><a href="([^"]*)">')

    def __init__(self, serve_dir, workdir, dir_cache_time="1h"):
        self.serve_dir = serve_dir
        self.workdir = workdir
        self.dir_cache_time = dir_cache_time
        self.rc_port = None
        self.serve_port = None
        self.proc = None
        self.log_path = os.path.join(workdir, "rclone.log")

    @property
    def rc_url(self):
        return "http://127.0.0.1:%d" % self.rc_port

    @property
    def serve_url(self):
        return "http://127.0.0.1:%d" % self.serve_port

    def start(self, timeout=20.0):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
        last_err = None
        for _ in range(3):  # a port taken between free_port() and bind: try other ports
            self.rc_port, self.serve_port = free_port(), free_port()
            while self.serve_port == self.rc_port:
                self.serve_port = free_port()
            cmd = [RCLONE, "serve", "http", self.serve_dir,
                   "--rc", "--rc-addr", "127.0.0.1:%d" % self.rc_port, "--rc-no-auth",
                   "--addr", "127.0.0.1:%d" % self.serve_port,
                   "--dir-cache-time", self.dir_cache_time, "--poll-interval", "0",
                   "--config", os.path.join(self.workdir, "rclone.conf"), "-v"]
            logf = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                             stderr=subprocess.STDOUT, env=env,
                                             start_new_session=True)
            finally:
                logf.close()
            if wait_until(lambda: self.proc.poll() is not None or self._ready(), timeout) \
                    and self.proc.poll() is None:
                return self
            last_err = "rclone did not start (exit %s):\n%s" % (self.proc.poll(), self.log())
            self.stop()
        raise RuntimeError(last_err)

    def _ready(self):
        try:
            r = http_request("POST", self.rc_port, "/rc/noop", body=b"{}",
                             headers={"Content-Type": "application/json"}, timeout=2)
            return r.status == 200 and port_open(self.serve_port)
        except OSError:
            return False

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)

    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rc(self, method, params=None):
        """Call an RC method; returns (status, decoded JSON)."""
        r = http_request("POST", self.rc_port, "/" + method.lstrip("/"),
                         body=json.dumps(params or {}).encode(),
                         headers={"Content-Type": "application/json"})
        return r.status, r.json()

    def rel(self, host_path):
        """host path under the served dir -> path relative to the VFS root."""
        root = self.serve_dir.rstrip("/")
        assert host_path == root or host_path.startswith(root + "/"), host_path
        return host_path[len(root):].strip("/")

    def list_dir(self, rel_dir):
        """Names (str; directories without their trailing '/') that rclone's VFS lists in rel_dir
        (relative to the served dir, '' = the root), or None when the VFS says it does not exist.
        A listing goes through the VFS directory cache exactly as a mount's readdir would."""
        target = "/" + urllib.parse.quote(rel_dir.strip("/"), safe="/")
        if not target.endswith("/"):
            target += "/"
        r = http_request("GET", self.serve_port, target, timeout=10)
        if r.status == 404:
            return None
        if r.status != 200:
            raise RuntimeError("rclone serve http: GET %s -> %d %r"
                               % (target, r.status, r.body[:200]))
        names = set()
        for href in self.NAME_RE.findall(r.text):
            name = urllib.parse.unquote(html.unescape(href))
            if name.startswith("./"):
                name = name[2:]
            names.add(name.rstrip("/"))
        return names

    def lists(self, rel_dir, name):
        """True if rclone's VFS lists `name` in rel_dir right now."""
        names = self.list_dir(rel_dir)
        return names is not None and name in names


# ---------------------------------------------------------------------------------------------
# the daemon

def _dotenv_quote(v):
    v = str(v)
    if "\n" in v or "\r" in v:
        raise ValueError("no line breaks in env values: %r" % v)
    if "'" not in v:
        return "'%s'" % v
    return '"%s"' % v.replace("\\", "\\\\").replace('"', '\\"')


class DaemonError(RuntimeError):
    pass


# A sanitizer's report in the daemon's output (AddressSanitizer, LeakSanitizer, UBSan).
SANITIZER_REPORT = re.compile(r"ERROR: (?:Address|Leak|Thread|Memory)Sanitizer|runtime error:")


class Daemon:
    """The binary under test, in its own working directory.

    env: the configuration. With env_file=True (the default) it is written to <workdir>/daemon.env
    and passed with --env-file, and the process environment is empty but for PASSTHROUGH_ENV;
    with env_file=False the variables go into the process environment instead (no file).
    popen_kwargs: extra arguments for subprocess.Popen (e.g. restore_signals=False).
    proc_env: extra variables for the process environment in either mode (e.g. NOTIFY_SOCKET,
    WATCHDOG_USEC, JOURNAL_STREAM: what systemd would set).

    Several Daemon objects may share one workdir (a restart): each reads the log from where it
    started (log_offset). With URL_BASE in env, /health (what start() waits for) is below it."""

    def __init__(self, workdir, env, env_file=True, binary=None, args=(), popen_kwargs=None,
                 proc_env=None):
        self.workdir = workdir
        self.env = {k: str(v) for k, v in env.items()}
        self.use_env_file = env_file
        self.binary = binary or BINARY
        self.args = list(args)
        self.popen_kwargs = dict(popen_kwargs or {})
        self.proc_env = {k: str(v) for k, v in (proc_env or {}).items()}
        self.port = int(self.env["PORT"])
        base = self.env.get("URL_BASE", "").strip().strip("/")
        self.health_path = ("/" + base if base else "") + "/health"
        self.proc = None
        self.log_path = os.path.join(workdir, "daemon.log")
        self.env_path = os.path.join(workdir, "daemon.env")
        self.exit_code = None
        self.stopped = False   # stop() was called
        self.killed = False    # kill() was called
        self.log_offset = 0    # where this process's output starts in log_path
        self.sanitizer_report = None  # set by stop(): the report's lines, or None

    # ---- lifecycle ----
    def start(self, timeout=20.0):
        if not os.access(self.binary, os.X_OK):
            raise DaemonError("daemon binary not found or not executable: %s (set PSS_BINARY)"
                              % self.binary)
        os.makedirs(self.workdir, exist_ok=True)
        penv = {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}
        cmd = [self.binary]
        if self.use_env_file:
            with open(self.env_path, "w", encoding="utf-8") as f:
                f.write("# written by the integration rig\n")
                for k, v in self.env.items():
                    f.write("%s=%s\n" % (k, _dotenv_quote(v)))
            cmd += ["--env-file", self.env_path]
        else:
            penv.update(self.env)
        penv.update(self.proc_env)
        cmd += self.args
        logf = open(self.log_path, "ab")
        try:
            self.log_offset = logf.seek(0, os.SEEK_END)
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=penv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True, **self.popen_kwargs)
        finally:
            logf.close()
        ok = wait_until(lambda: self.proc.poll() is not None or self._healthy(), timeout)
        if not ok or self.proc.poll() is not None:
            code = self.proc.poll()
            if code is None:
                self.kill()
            raise DaemonError("daemon did not become healthy within %.0f s (exit %s); log:\n%s"
                              % (timeout, code, self.log_tail()))
        return self

    def _healthy(self):
        if not port_open(self.port):
            return False
        try:
            # /health may wait up to 2 s for a probe round (a media server that hangs)
            return self.get(self.health_path, timeout=5).status == 200
        except OSError:
            return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0, check=True):
        """SIGTERM, then wait; SIGKILL if it does not exit in time. Returns the exit code.
        A sanitizer report in this process's output (a clean stop must have none) is kept in
        sanitizer_report and, with check=True, raised as DaemonError."""
        if self.proc is None:
            return self.exit_code
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.exit_code = self.proc.returncode
        if not self.killed:
            lines = [ln for ln in self.own_log().splitlines() if SANITIZER_REPORT.search(ln)]
            self.sanitizer_report = lines or None
            if lines and check:
                raise DaemonError("sanitizer report in the daemon's output:\n"
                                  + "\n".join(lines[:20]))
        return self.exit_code

    def kill(self):
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            self.exit_code = self.proc.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    # ---- logs ----
    def log(self):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def own_log(self):
        """The output of this process only (the log file may hold earlier runs before it)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        return self.log().splitlines()

    def log_tail(self, n=200):
        return "\n".join(self.log_lines()[-n:])

    def log_matches(self, pattern, flags=re.IGNORECASE):
        return re.search(pattern, self.log(), flags) is not None

    # ---- HTTP ----
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, target, body=None, headers=None, timeout=15.0):
        return http_request(method, self.port, target, body=body, headers=headers,
                            timeout=timeout)

    def get(self, target, auth=None, timeout=15.0):
        headers = {}
        if auth is not None:
            headers["Authorization"] = basic_auth(*auth)
        return self.request("GET", target, headers=headers, timeout=timeout)

    def webhook(self, app, payload, auth=None, content_type="application/json", method="POST",
                headers=None):
        """POST /webhook/<app>; payload is a dict (sent as UTF-8 JSON) or bytes. Returns a
        Response."""
        if isinstance(payload, (bytes, bytearray)):
            body = bytes(payload)
        else:
            body = json.dumps(payload, ensure_ascii=False, indent=2).encode("utf-8")
        hdrs = {"User-Agent": "Sonarr/4.0.16.2944 (ubuntu 22.04)", "Accept": "application/json"}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if auth is not None:
            hdrs["Authorization"] = basic_auth(*auth, encoding="latin-1")
        hdrs.update(headers or {})
        return self.request(method, "/webhook/%s" % app, body=body, headers=hdrs)

    def post_webhook(self, app, payload, auth=None, content_type="application/json"):
        """(status, decoded JSON answer or None)."""
        r = self.webhook(app, payload, auth=auth, content_type=content_type)
        return r.status, r.json()

    def manual_post(self, path, user=None, password=None):
        """POST /webhook/manual with the form field path=; Basic auth when user is given.
        Returns a Response."""
        body = urllib.parse.urlencode({"path": path}).encode("ascii")
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"}
        if user is not None:
            hdrs["Authorization"] = basic_auth(user, password or "")
        return self.request("POST", "/webhook/manual", body=body, headers=hdrs)


# ---------------------------------------------------------------------------------------------
# a test case with everything wired

def previous_binary(commit):
    """An earlier version's daemon, built from this clone's git history (git archive of commit,
    then CMake, Debug) once and cached by commit under the build directory of PSS_BINARY
    (PSS_PREV_CACHE moves it); test processes running at once share one build. Raises SkipTest
    only when git or the commit is unavailable (a shallow clone); a failing build is an error."""
    git = shutil.which("git")
    if git is None:
        raise unittest.SkipTest("git is not installed: cannot build the version of %s" % commit[:7])
    root = os.path.normpath(os.path.join(HERE, "..", ".."))
    r = subprocess.run([git, "-C", root, "cat-file", "-e", commit + "^{commit}"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        raise unittest.SkipTest("git history unavailable: commit %s (an earlier version) is "
                                "not in this clone (a shallow clone?)" % commit[:7])
    cache = os.path.join(os.environ.get("PSS_PREV_CACHE") or os.path.dirname(os.path.abspath(BINARY)),
                         "prev-" + commit[:12])
    exe = os.path.join(cache, "build", "plex-servarr-sync")
    if os.access(exe, os.X_OK):
        return exe
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be building it
        if os.access(exe, os.X_OK):
            return exe
        src = os.path.join(cache, "src")
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        log = []

        def run(cmd):
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            log.append("$ %s\n%s" % (" ".join(cmd), p.stdout.decode("utf-8", "replace")[-4000:]))
            if p.returncode != 0:
                raise RuntimeError("building the version of %s failed:\n%s" % (commit[:7], "\n".join(log)))
        archive = os.path.join(cache, "src.tar")
        run([git, "-C", root, "archive", "--format=tar", "-o", archive, commit])
        run(["tar", "-xf", archive, "-C", src])
        os.unlink(archive)
        build = os.path.join(cache, "build")
        run(["cmake", "-S", src, "-B", build, "-DCMAKE_BUILD_TYPE=Debug"])
        run(["cmake", "--build", build, "-j2", "--target", "plex-servarr-sync"])
    if not os.access(exe, os.X_OK):
        raise RuntimeError("the build of %s made no %s" % (commit[:7], exe))
    return exe


def binary_available():
    """False only when PSS_BINARY is not set and the default build is missing (then the daemon
    tests skip; with PSS_BINARY set, a missing binary is a failure)."""
    return bool(os.environ.get("PSS_BINARY")) or os.access(DEFAULT_BINARY, os.X_OK)


class RigTestCase(unittest.TestCase):
    """setUp: a temp dir (real path), a media tree root, the Plex double (started, with libraries
    TV = <media>/tv as section 1 and Movies = <media>/movies as section 2) and rclone serving
    <media>. A test then calls start_daemon(**overrides). Everything is stopped in cleanups, even
    when setUp fails; on failure the daemon's and rclone's logs are printed."""

    use_rclone = True
    plex_running_at_start = True
    daemon_popen_kwargs = None  # extra subprocess.Popen arguments for start_daemon()
    daemon_proc_env = None      # extra process environment for start_daemon() (Daemon.proc_env)

    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="pss-it-"))
        self.addCleanup(self._cleanup_tmp)
        self.media = os.path.join(self.tmp, "media")
        self.tv = os.path.join(self.media, "tv")
        self.movies = os.path.join(self.media, "movies")
        os.makedirs(self.tv)
        os.makedirs(self.movies)
        self.daemon = None
        self.rclone = None
        self.addCleanup(self._dump_logs_on_failure)
        self.plex = PlexDouble(token=PLEX_TOKEN, sections=self.sections())
        self.addCleanup(self.plex.stop)
        if self.plex_running_at_start:
            self.plex.start()
        else:
            self.plex.port = free_port()
        self.prepare_media()
        if self.use_rclone:
            self.rclone = Rclone(self.media, self.tmp)
            self.addCleanup(self.rclone.stop)
            self.rclone.start()

    # hooks for subclasses
    def sections(self):
        return [{"key": "1", "type": "show", "title": "TV Shows", "locations": [self.tv]},
                {"key": "2", "type": "movie", "title": "Movies", "locations": [self.movies]}]

    def prepare_media(self):
        """Create files that must exist before rclone starts."""

    def libraries(self):
        """The Jellyfin/Emby libraries add_mb() gives a double by default: TV and Movies, as the
        Plex double's sections."""
        return [{"Name": "Shows", "Locations": [self.tv], "CollectionType": "tvshows"},
                {"Name": "Films", "Locations": [self.movies], "CollectionType": "movies"}]

    # ---- more targets ----
    @property
    def doubles(self):
        """The doubles add_plex() and add_mb() started (not self.plex), in order."""
        if "_doubles" not in self.__dict__:
            self._doubles = []
        return self._doubles

    def add_plex(self, token=None, sections=None, machine_identifier=None, **kw):
        """Another Plex double, started, stopped in a cleanup, shown in the failure dump; its
        token and machine identifier are its own. sections default to self.sections()."""
        d = start_plex_double(token=token, sections=self.sections() if sections is None
                              else sections, machine_identifier=machine_identifier, **kw)
        self.addCleanup(d.stop)
        self.doubles.append(d)
        return d

    def add_mb(self, kind="jellyfin", token=None, libraries=None, **kw):
        """A Jellyfin or Emby double (see mbdouble.MBDouble), started, stopped in a cleanup, shown
        in the failure dump. libraries default to self.libraries()."""
        d = start_mb_double(kind, token=token, libraries=self.libraries() if libraries is None
                            else libraries, **kw)
        self.addCleanup(d.stop)
        self.doubles.append(d)
        return d

    def add_doubles(self, *specs):
        """Several doubles at once: each spec is "plex", "jellyfin", "jellyfin12", "emby" or a
        (kind, {keyword arguments}) pair. Returns the started doubles in order."""
        out = []
        for spec in specs:
            kind, kw = (spec, {}) if isinstance(spec, str) else spec
            out.append(self.add_plex(**kw) if kind == "plex" else self.add_mb(kind, **kw))
        return out

    def media_servers_env(self, named_doubles, include_plex_shorthand=False, **entry_kw):
        """Variables for a daemon whose targets are exactly named_doubles ((name, double) pairs
        or media_server() dicts): MEDIA_SERVERS, and PLEX_URL/PLEX_TOKEN removed (None) unless
        include_plex_shorthand. Pass the result to start_daemon(**env). entry_kw (e.g.
        path_replacements) goes to every pair's media_server()."""
        entries = [e if isinstance(e, dict) else media_server(*e, **entry_kw)
                   for e in named_doubles]
        env = {"MEDIA_SERVERS": media_servers_json(entries)}
        if not include_plex_shorthand:
            env.update({"PLEX_URL": None, "PLEX_TOKEN": None})
        return env

    def wait_updates(self, double, path, n=1, update_type=None, timeout=30.0):
        """Wait until a Jellyfin/Emby double has acted on n Media/Updated entries for path (of
        update_type, if given); returns them ([] if fewer came in time)."""
        def got(d):
            ups = [u for u in d.updates() if u[0] == path
                   and (update_type is None or u[1] == update_type)]
            return ups if len(ups) >= n else None
        return double.wait_for(got, timeout) or []

    def daemon_env(self, **overrides):
        env = {
            "PORT": free_port(),
            "BIND_ADDRESS": "127.0.0.1",
            "STATE_DIR": os.path.join(self.tmp, "state"),
            "DURABILITY": "process",
            "PLEX_URL": self.plex.url,
            "PLEX_TOKEN": PLEX_TOKEN,
            "PLEX_TIMEOUT": "10s",
            "WEBHOOK_DELAY": "1",
            "MINIMUM_AGE": "0",
            "RETRY_MAX_DELAY": "2s",
            "MANUAL_USER": MANUAL_USER,
            "MANUAL_PASS": MANUAL_PASS,
            "LOG_LEVEL": "debug",
        }
        if self.rclone is not None:
            env.update({"USE_RCLONE": "true", "RCLONE_RC_URL": self.rclone.rc_url,
                        "RCLONE_MOUNT_ROOT": self.media, "RCLONE_TIMEOUT": "30s"})
        else:
            env["USE_RCLONE"] = "false"
        for k, v in overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        return env

    def start_daemon(self, **overrides):
        """Start the daemon with daemon_env(**overrides) (a value of None removes a variable).
        STATE_DIR is created beforehand (as systemd's StateDirectory= would)."""
        workdir = os.path.join(self.tmp, "run")
        os.makedirs(workdir, exist_ok=True)
        env = self.daemon_env(**overrides)
        if env.get("STATE_DIR"):
            os.makedirs(env["STATE_DIR"], mode=0o700, exist_ok=True)
        self.addCleanup(self._stop_daemon)
        for attempt in range(3):
            self.daemon = Daemon(workdir, env, popen_kwargs=self.daemon_popen_kwargs,
                                 proc_env=self.daemon_proc_env)
            try:
                return self.daemon.start()
            except DaemonError:
                # the port free_port() gave was taken meanwhile: try another one
                if attempt == 2 or "PORT" in overrides or not re.search(
                        r"already in use|EADDRINUSE", self.daemon.log(), re.I):
                    raise
                env["PORT"] = free_port()

    # ---- helpers for tests ----
    def show_file(self, show, season="Season 01", name=None):
        """Host path of an episode file of `show` under <media>/tv (not created)."""
        name = name or "%s - S01E01 - Pilot [WEBDL-1080p].mkv" % show
        return os.path.join(self.tv, show, season, name)

    def sonarr_for(self, file_path):
        """A Sonarr Download payload for a file <media>/tv/<show>/<season>/<file>."""
        rel = os.path.relpath(file_path, self.tv)
        show, rest = rel.split("/", 1)
        return sonarr_download(os.path.join(self.tv, show), rest, title=show)

    def wait_scans(self, path, n=1, timeout=30.0):
        """Wait until the double has answered n successful scans of path; returns them ([] if
        fewer came in time)."""
        wait_until(lambda: len(self.plex.scans(path=path)) >= n, timeout)
        scans = self.plex.scans(path=path)
        return scans if len(scans) >= n else []

    def assertWebhookAccepted(self, resp, statuses=("queued",)):
        self.assertEqual(resp.status, 202, resp)
        body = resp.json()
        self.assertIsInstance(body, dict, resp)
        self.assertIn(body.get("status"), statuses, resp)
        return body

    def wait_library_list(self, probe_file, timeout=20.0):
        """Wait until the daemon has read Plex's library list: a webhook for probe_file (inside a
        library) is answered "queued" rather than "unresolved". The probe queues a real scan of
        its folder; account for it."""
        payload = self.sonarr_for(probe_file)

        def probe():
            r = self.daemon.webhook("sonarr", payload)
            return r.status == 202 and (r.json() or {}).get("status") == "queued"
        self.assertTrue(wait_until(probe, timeout, interval=0.2),
                        "the daemon never answered 'queued' (library list not read?)")

    # ---- cleanup ----
    def _stop_daemon(self):
        """Stop the daemon; a daemon that died during the test, or exits non-zero on SIGTERM (a
        crash, a sanitizer report), fails the test."""
        d = self.daemon
        if d is None or d.proc is None or d.killed:
            return
        died = None if d.stopped else d.proc.poll()
        code = d.stop(check=False)
        if self._failed():
            return
        if died is not None:
            self.fail("the daemon died during the test (exit %s)" % died)
        if code != 0:
            self.fail("the daemon exited with %s after SIGTERM" % code)
        if d.sanitizer_report:
            self.fail("sanitizer report in the daemon's output:\n"
                      + "\n".join(d.sanitizer_report[:20]))

    def _failed(self):
        """Has this test failed so far? (Inside a cleanup, outcome.success is reset, so look at
        what was reported to the result.)"""
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return True
        errors = getattr(outcome, "errors", None)  # Python < 3.11 collects them here
        if errors and any(exc for _, exc in errors):
            return True
        result = getattr(outcome, "result", None)
        for attr in ("errors", "failures", "unexpectedSuccesses"):
            for entry in getattr(result, attr, None) or []:
                test = entry[0] if isinstance(entry, tuple) else entry
                if test is self or getattr(test, "test_case", None) is self:
                    return True
        return False

    def _dump_logs_on_failure(self):
        if not (self._failed() or os.environ.get("PSS_SHOW_LOGS")):
            return
        out = ["", "=" * 30 + " %s " % self.id() + "=" * 30]
        if self.daemon is not None:
            out += ["--- daemon log (%s), last 200 lines:" % self.daemon.log_path,
                    self.daemon.log_tail(200)]
        if self.rclone is not None:
            out += ["--- rclone log, last 40 lines:"] + self.rclone.log().splitlines()[-40:]
        if self.plex is not None:
            out += ["--- Plex double requests:"] + [repr(r) for r in self.plex.requests()]
        for d in self.__dict__.get("_doubles", ()):
            out += ["--- %s double at %s, requests:" % (server_type(d), d.url)]
            out += [repr(r) for r in d.requests()]
            if isinstance(d, MBDouble):
                out += ["    protocol error: %s (%r)" % (why, r) for r, why in d.protocol_errors()]
        sys.stderr.write("\n".join(out) + "\n")

    def _cleanup_tmp(self):
        if os.environ.get("PSS_KEEP_TMP"):
            sys.stderr.write("kept %s\n" % self.tmp)
            return
        shutil.rmtree(self.tmp, ignore_errors=True)
