#!/usr/bin/env python3
"""The container image, built and run for real with podman (see packaging/container/README.md).

Builds packaging/container/Dockerfile from a locally made Debian 12 base (no registry is needed:
a debootstrapped minbase root filesystem is imported as debian:bookworm and as
debian:bookworm-slim), then runs the image the way the Python script's compose file did and
checks: the health check, a webhook reaching a strict Plex double on the host, uid 1000,
--read-only with every capability dropped, a clean and quick stop, the queue kept in /config
across a restart, a read-only .env at /app/.env, variables from --env-file and -e, the _FILE
secrets, a clear error for an unwritable /config, --user with another uid, and no zombie left
when the daemon is PID 1.

Must run as root. Where the machine cannot run it (not root, no podman or debootstrap, the
Debian mirror unreachable) it says why and fails (exit 1); it never passes silently.

Environment:
  PSS_TEST_CACHE   where the base root filesystem and podman's storage are kept between runs
                   (default /var/cache/plex-servarr-sync-test); keyed by what goes into them
  PSS_TEST_KEEP=1  keep the work directory and print the containers' logs
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "integration"))
os.environ.setdefault("PSS_FIXTURES_DIR", os.path.join(REPO, "test", "fixtures"))

import rig  # noqa: E402  (wait_until, http_request, payloads)
from plexdouble import PlexDouble  # noqa: E402

CACHE = os.path.join(os.environ.get("PSS_TEST_CACHE") or "/var/cache/plex-servarr-sync-test", "container")
SUITE = "bookworm"
# The base is made slim the way Docker's official debian:*-slim images are (dpkg leaves out
# documentation, manuals and translations; apt keeps no package lists or .debs), so the size
# measured here is close to what the same Dockerfile gives on the real bookworm-slim.
SLIM_DPKG_CFG = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
"""
SLIM_APT_CFG = """DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""
SLIM_REMOVE = ("usr/share/doc", "usr/share/groff", "usr/share/info", "usr/share/linda", "usr/share/lintian",
               "usr/share/locale", "usr/share/man", "var/lib/apt/lists", "var/cache/apt")
# What goes into the base root filesystem; a change here makes a new cache entry.
BASE_RECIPE = "\n".join(["debootstrap --variant=minbase " + SUITE, SLIM_DPKG_CFG, SLIM_APT_CFG] +
                        list(SLIM_REMOVE))
IMAGE = "localhost/plex-servarr-sync:test"
BRIDGE_GATEWAY = "10.88.0.1"  # the host, seen from a container on podman's default network
PLEX_TOKEN = "container-test-token-8d2e"
MANUAL_PASS = "container-manual-pass-41"
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=16384:16384", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
"""

passed = 0
failed = 0


def ok(msg):
    global passed
    passed += 1
    print("ok: " + msg, flush=True)


def fail(msg):
    global failed
    failed += 1
    print("FAIL: " + msg, flush=True)


def check(cond, msg, detail=""):
    if cond:
        ok(msg)
    else:
        fail(msg + (": " + detail if detail else ""))
    return cond


def cannot_run(why):
    print("FAIL: cannot run the container test on this machine: " + why, flush=True)
    print("0 passed, 1 failed", flush=True)
    sys.exit(1)


def sh(cmd, check_rc=True, timeout=900, **kw):
    """Run a command; returns CompletedProcess with text output."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, **kw)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s failed (exit %d):\n%s%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:],
                                                            p.stderr[-3000:]))
    return p


# ---------------------------------------------------------------------------------------------
# the machine

def debian_mirror():
    """The Debian mirror the host's apt uses (never written into the repository)."""
    for d in ("/etc/apt/sources.list.d",):
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not name.endswith(".sources"):
                continue
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text = f.read()
            for block in text.split("\n\n"):
                if re.search(r"^Suites:.*\b%s\b" % SUITE, block, re.M) and "security" not in block:
                    m = re.search(r"^URIs:\s*(\S+)", block, re.M)
                    if m:
                        return m.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list", encoding="utf-8") as f:
            for line in f:
                m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+%s\s" % SUITE, line)
                if m:
                    return m.group(1)
    return None


def preflight():
    if os.geteuid() != 0:
        cannot_run("it must run as root (podman with its own storage, debootstrap)")
    for tool in ("podman", "debootstrap", "tar"):
        if not shutil.which(tool):
            cannot_run("%s is missing (apt-get install podman buildah runc containernetworking-plugins "
                       "uidmap slirp4netns fuse-overlayfs debootstrap)" % tool)
    if not shutil.which("runc"):
        cannot_run("runc is missing (apt-get install runc)")
    mirror = debian_mirror()
    if not mirror:
        cannot_run("no Debian %s mirror found in the host's apt sources" % SUITE)
    try:
        with urllib.request.urlopen(mirror.rstrip("/") + "/dists/%s/Release" % SUITE, timeout=30) as r:
            r.read(1)
    except OSError as e:
        cannot_run("the Debian mirror %s cannot be reached: %s" % (mirror, e))
    return mirror


# ---------------------------------------------------------------------------------------------
# the base image and podman

class Podman:
    def __init__(self, key):
        self.dir = os.path.join(CACHE, "podman-" + key)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(CACHE, "containers.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(CONTAINERS_CONF)
        os.environ["CONTAINERS_CONF"] = conf
        # podman refuses a runroot longer than 50 characters: a short one under /run, named after
        # the storage it belongs to.
        runroot = "/run/pss-ctest-" + hashlib.sha256(self.dir.encode()).hexdigest()[:12]
        self.base = ["podman", "--root", os.path.join(self.dir, "root"), "--runroot", runroot]
        self.started = []

    def __call__(self, *args, check_rc=True, timeout=900, **kw):
        return sh(self.base + list(args), check_rc=check_rc, timeout=timeout, **kw)

    def run(self, name, *args, image=IMAGE, cmd=()):
        self.rm(name)
        self.started.append(name)
        return self("run", "-d", "--name", name, *args, image, *cmd)

    def rm(self, name):
        self("rm", "-f", "-t", "0", name, check_rc=False)

    def cleanup(self):
        for name in self.started:
            self.rm(name)

    def logs(self, name):
        p = self("logs", name, check_rc=False)
        return p.stdout + p.stderr

    def state(self, name):
        p = self("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name, check_rc=False)
        parts = p.stdout.split()
        return (parts[0], int(parts[1])) if len(parts) == 2 else ("missing", -1)


def base_rootfs(mirror, key):
    """The debootstrapped root filesystem as a tarball in the cache (made once per key)."""
    tar = os.path.join(CACHE, "rootfs-%s.tar" % key)
    if os.path.exists(tar):
        return tar
    tmp = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE)
    try:
        print("making the base root filesystem (debootstrap, about a minute)", flush=True)
        sh(["debootstrap", "--variant=minbase", SUITE, tmp, mirror], timeout=1200)
        slim(tmp)
        sh(["tar", "-C", tmp, "--numeric-owner", "-cf", tar + ".part", "."])
        os.rename(tar + ".part", tar)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tar


def slim(root):
    """Trim a fresh root filesystem as the official slim images are (see SLIM_DPKG_CFG)."""
    write(os.path.join(root, "etc/dpkg/dpkg.cfg.d/slim"), SLIM_DPKG_CFG)
    write(os.path.join(root, "etc/apt/apt.conf.d/slim"), SLIM_APT_CFG)
    for d in SLIM_REMOVE:
        top = os.path.join(root, d)
        for name in os.listdir(top) if os.path.isdir(top) else []:
            path = os.path.join(top, name)
            if d == "usr/share/doc" and os.path.isdir(path):
                for f in os.listdir(path):  # keep the copyright files, as slim does
                    if f != "copyright":
                        p = os.path.join(path, f)
                        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
            elif os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    for d in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial"):
        os.makedirs(os.path.join(root, d), exist_ok=True)


def import_bases(podman, tar):
    for name in ("docker.io/library/debian:bookworm", "docker.io/library/debian:bookworm-slim"):
        if podman("image", "exists", name, check_rc=False).returncode != 0:
            with open(tar, "rb") as f:
                podman("import", "-", name, stdin=f)


def build_image(podman):
    t0 = time.monotonic()
    # --format docker: the OCI image format has no HEALTHCHECK (podman would drop it).
    p = podman("build", "--pull=never", "--layers", "--format", "docker", "-f", os.path.join(REPO, "packaging/container/Dockerfile"),
               "-t", IMAGE, REPO, check_rc=False, timeout=1800)
    if p.returncode != 0:
        fail("the image builds: %s" % (p.stdout[-2000:] + p.stderr[-2000:]))
        return False
    ok("the image builds (%.0f s)" % (time.monotonic() - t0))
    return True


# ---------------------------------------------------------------------------------------------
# helpers

def get(port, target, auth=None, timeout=5.0):
    headers = {"Authorization": rig.basic_auth(*auth)} if auth else {}
    try:
        return rig.http_request("GET", port, target, headers=headers, timeout=timeout)
    except OSError:
        return None


def healthy(port, timeout=60.0):
    return rig.wait_until(lambda: (get(port, "/health") or rig.Response(0, {}, b"")).status == 200, timeout)


def post_webhook(port, payload, auth=None):
    body = json.dumps(payload).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = rig.basic_auth(*auth)
    try:
        return rig.http_request("POST", port, "/webhook/sonarr", body=body, headers=headers)
    except OSError:
        return None


def queue_entries(port, auth):
    r = get(port, "/api/queue", auth=auth)
    if r is None or r.status != 200:
        return None
    body = r.json()
    if isinstance(body, dict):
        for k in ("entries", "items", "queue"):
            if isinstance(body.get(k), list):
                return body[k]
    return body if isinstance(body, list) else None


def proc_status(podman, name, field):
    p = podman("exec", name, "cat", "/proc/1/status", check_rc=False)
    m = re.search(r"^%s:\s*(.*)$" % field, p.stdout, re.M)
    return m.group(1).split() if m else None


def wait_exit(podman, name, timeout=30.0):
    return rig.wait_until(lambda: podman.state(name)[0] in ("exited", "stopped"), timeout)


def write(path, text, mode=0o644, owner=None):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner:
        os.chown(path, *owner)


# ---------------------------------------------------------------------------------------------
# the checks

TV = "/media/tv"
SHOW = TV + "/Breaking Bad (2008)"
SEASON = SHOW + "/Season 01"


def check_image(podman):
    out = podman("image", "ls", "--format", "{{.Size}}", IMAGE).stdout.strip()
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    check(size < 100 * 1000 * 1000, "the image is under 100 MB (%s, %d bytes)" % (out, size))
    cfg = json.loads(podman("image", "inspect", IMAGE).stdout)[0]["Config"]
    check(cfg.get("User") == "1000:1000", "the image runs as 1000:1000", repr(cfg.get("User")))
    check(cfg.get("WorkingDir") == "/app", "the working directory is /app", repr(cfg.get("WorkingDir")))
    check("/config" in (cfg.get("Volumes") or {}), "/config is a volume", repr(cfg.get("Volumes")))
    check("STATE_DIR=/config" in (cfg.get("Env") or []), "STATE_DIR=/config", repr(cfg.get("Env")))
    p = podman("run", "--rm", "--entrypoint", "/bin/sh", IMAGE, "-c",
               "for t in curl wget cc gcc cmake make; do command -v $t; done; "
               "test -f /usr/share/plex-servarr-sync/web/index.html && echo web-ok", check_rc=False)
    check(p.stdout.strip() == "web-ok", "no curl, wget or compiler in the image; the web files are installed",
          p.stdout + p.stderr)


def start_main(podman, work, plex, hostport):
    """The compose file's way: .env mounted read-only at /app/.env, the same file as an env_file
    (here --env-file), media read-only, /config a volume; hardened: --read-only, no capabilities."""
    secrets = os.path.join(work, "secrets")
    os.makedirs(secrets, exist_ok=True)
    write(os.path.join(secrets, "plex_token"), PLEX_TOKEN + "\n", 0o640, (0, 1000))
    media = os.path.join(work, "media")
    os.makedirs(os.path.join(media, "tv"), exist_ok=True)
    dotenv = os.path.join(work, "dotenv")
    # From the .env only: PLEX_URL, MANUAL_USER (a proof that /app/.env is read). WEBHOOK_DELAY
    # differs: the environment (--env-file) must win, as with the script's python-dotenv.
    write(dotenv, "# the Python script's .env\nPLEX_URL=http://%s:%d\nMANUAL_USER=envfileuser\n"
          "MANUAL_PASS=%s\nWEBHOOK_DELAY=1h\n" % (BRIDGE_GATEWAY, plex.port, MANUAL_PASS), 0o640, (0, 1000))
    envfile = os.path.join(work, "envfile")
    write(envfile, "USE_RCLONE=false\nWEBHOOK_DELAY=0\nMANUAL_PASS=%s\n" % MANUAL_PASS)
    podman("volume", "rm", "-f", "pss-test-main", check_rc=False)
    return podman.run("pss-test-main", "--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL",
                      "--security-opt", "no-new-privileges",
                      "-p", "127.0.0.1:%d:5000" % hostport,
                      "-v", "%s:/app/.env:ro" % dotenv, "--env-file", envfile,
                      "-e", "PLEX_TOKEN_FILE=/run/secrets/plex_token",
                      "-v", "%s:/run/secrets:ro" % secrets,
                      "-v", "%s:/media:ro,rslave" % media, "-v", "pss-test-main:/config")


# What start_main() mirrors of packaging/container/compose.yaml; checked so the two stay together.
COMPOSE_LINES = (r"^\s+env_file: \.env$", r"^\s+- \./\.env:/app/\.env:ro$", r"^\s+- config:/config$",
                 r"^\s+- \S+:\S+:ro,rslave$", r'^\s+- "5000:5000"$', r"^\s+read_only: true$",
                 r"^\s+cap_drop: \[ALL\]$", r'^\s+security_opt: \["no-new-privileges:true"\]$',
                 r'^\s+test: \["CMD", "plex-servarr-sync", "--health"\]$')


def check_compose_file():
    with open(os.path.join(REPO, "packaging/container/compose.yaml"), encoding="utf-8") as f:
        text = f.read()
    missing = [p for p in COMPOSE_LINES if not re.search(p, text, re.M)]
    check(not missing, "compose.yaml has the settings the main container is run with", repr(missing))


def check_main(podman, work, plex):
    hostport = rig.free_port()
    start_main(podman, work, plex, hostport)
    name = "pss-test-main"
    if not check(healthy(hostport), "/health answers 200 over the published port",
                 podman.logs(name)[-2000:]):
        return
    p = podman("healthcheck", "run", name, check_rc=False)
    check(p.returncode == 0, "the image's HEALTHCHECK passes (podman healthcheck run)", p.stdout + p.stderr)
    p = podman("exec", "-e", "PORT=1", name, "plex-servarr-sync", "--health", check_rc=False)
    check(p.returncode == 1 and p.stdout.startswith("unhealthy: "), "the probe fails where nothing answers",
          "exit %d: %s%s" % (p.returncode, p.stdout, p.stderr))
    uid = proc_status(podman, name, "Uid")
    check(uid is not None and uid[:2] == ["1000", "1000"], "the daemon runs as uid 1000", repr(uid))
    cap = proc_status(podman, name, "CapEff")
    check(cap == ["0000000000000000"], "no capabilities (--cap-drop=ALL)", repr(cap))
    p = podman("exec", name, "sh", "-c", "touch /app/x /usr/x /tmp/x 2>/dev/null && echo writable", check_rc=False)
    check("writable" not in p.stdout, "the root filesystem is read-only (--read-only)")
    auth = ("envfileuser", MANUAL_PASS)
    check(queue_entries(hostport, auth) is not None, "MANUAL_USER from the read-only /app/.env is obeyed")
    # The webhook: the token comes from PLEX_TOKEN_FILE; the double answers 401 to any other.
    payload = rig.sonarr_download(SHOW, "Season 01/Breaking Bad (2008) - S01E01 - Pilot [WEBDL-1080p].mkv")
    r = post_webhook(hostport, payload)
    check(r is not None and r.status == 202, "the webhook is accepted", repr(r))
    scans = plex.wait_for(lambda d: d.scans(path=SEASON), timeout=20)
    check(bool(scans), "the webhook reached the Plex double on the host with the token from PLEX_TOKEN_FILE "
          "(and WEBHOOK_DELAY=0 from --env-file over the .env's 1h)",
          "refreshes: %r\n%s" % (plex.refreshes(), podman.logs(name)[-2000:]))
    check_zombies(podman, name)
    check_stop(podman, name)


ZOMBIE_SCAN = "for f in /proc/[0-9]*/stat; do read -r l < $f 2>/dev/null && echo \"$l\"; done"


def zombies_or_sleep(podman, name):
    """(a zombie is there, the orphan's sleep still runs) inside the container."""
    lines = podman("exec", name, "sh", "-c", ZOMBIE_SCAN, check_rc=False).stdout.splitlines()
    return any(re.search(r"\) Z ", l) for l in lines), any("(sleep) S" in l for l in lines)


def check_zombie_probe_sees_zombies(podman):
    """The control: with a PID 1 that never reaps (sleep), the same orphan stays a zombie, so the
    check below can fail."""
    name = "pss-test-noreaper"
    podman.run(name, "--entrypoint", "/bin/sleep", cmd=("300",))
    podman("exec", name, "sh", "-c", "sleep 1 & exit 0", check_rc=False)
    seen = rig.wait_until(lambda: zombies_or_sleep(podman, name)[0], 15, interval=0.5)
    check(seen, "control: under a PID 1 that does not reap, the orphan stays a zombie")
    podman.rm(name)


def check_zombies(podman, name):
    # sh exits at once; its background sleep is re-parented to PID 1 (the daemon) and must be reaped.
    podman("exec", name, "sh", "-c", "sleep 1 & exit 0", check_rc=False)

    def clean():
        zombie, sleeping = zombies_or_sleep(podman, name)
        return not zombie and not sleeping
    check(rig.wait_until(clean, 15, interval=0.5), "an orphan re-parented to the daemon (PID 1) is reaped: no zombie")


def check_stop(podman, name):
    t0 = time.monotonic()
    podman("stop", "-t", "10", name, check_rc=False)
    took = time.monotonic() - t0
    state, code = podman.state(name)
    check(code == 0 and took < 5, "SIGTERM stops it cleanly: exit 0 in %.1f s (podman stop -t 10)" % took,
          "state %s exit %d\n%s" % (state, code, podman.logs(name)[-1500:]))


def check_queue_survives(podman, work):
    """Plex not configured: the webhook waits as unresolved; the entry must outlive a restart."""
    name = "pss-test-queue"
    hostport = rig.free_port()
    podman("volume", "rm", "-f", "pss-test-queue", check_rc=False)
    args = ["--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "-p", "127.0.0.1:%d:5000" % hostport,
            "-e", "USE_RCLONE=false", "-e", "MANUAL_PASS=" + MANUAL_PASS, "-v", "pss-test-queue:/config"]
    podman.run(name, *args)
    auth = ("admin", MANUAL_PASS)
    if not check(healthy(hostport), "a second container starts with a new /config volume", podman.logs(name)[-2000:]):
        return
    payload = rig.sonarr_download(SHOW, "Season 01/x.mkv")
    r = post_webhook(hostport, payload)
    check(r is not None and r.status == 202, "a webhook is accepted while Plex is not configured", repr(r))
    check(rig.wait_until(lambda: queue_entries(hostport, auth), 15), "it waits in /api/queue")
    podman("stop", "-t", "10", name, check_rc=False)
    podman("start", name)
    # podman keeps the published port of a stopped and started container
    came_back = healthy(hostport)
    entries = queue_entries(hostport, auth) if came_back else None
    check(bool(entries), "the queue is kept in /config across a restart", "%r\n%s" % (entries, podman.logs(name)[-2000:]))
    podman.rm(name)


def run_once(podman, name, *args, env=(), timeout=60):
    """Start a container that is expected to exit; returns (exit code, its output)."""
    podman.run(name, *args)
    if not wait_exit(podman, name, timeout):
        return None, podman.logs(name)
    return podman.state(name)[1], podman.logs(name)


def check_secret_conflict(podman, work):
    code, out = run_once(podman, "pss-test-conflict", "-e", "PLEX_TOKEN=a", "-e", "PLEX_TOKEN_FILE=/etc/hostname",
                         "-e", "MANUAL_PASS=" + MANUAL_PASS)
    check(code not in (None, 0) and "PLEX_TOKEN_FILE" in out,
          "PLEX_TOKEN and PLEX_TOKEN_FILE together: an error naming the variable (exit %s)" % code, out[-1000:])
    code, out = run_once(podman, "pss-test-nofile", "-e", "WEBHOOK_USER=u", "-e",
                         "WEBHOOK_PASS_FILE=/run/secrets/missing", "-e", "MANUAL_PASS=" + MANUAL_PASS)
    check(code not in (None, 0) and "WEBHOOK_PASS_FILE" in out and "/run/secrets/missing" in out,
          "an unreadable WEBHOOK_PASS_FILE: an error naming the variable and the path (exit %s)" % code, out[-1000:])


def check_unwritable_config(podman, work):
    d = os.path.join(work, "rootowned")
    os.makedirs(d, mode=0o755, exist_ok=True)
    os.chown(d, 0, 0)
    os.chmod(d, 0o755)
    code, out = run_once(podman, "pss-test-unwritable", "--read-only", "--cap-drop=ALL",
                         "-e", "MANUAL_PASS=" + MANUAL_PASS, "-v", "%s:/config" % d)
    lines = [l for l in out.splitlines() if "/config" in l]
    good = (code not in (None, 0) and len(lines) == 1 and "uid 1000" in lines[0] and "chown" in lines[0])
    check(good, "a /config owned by root: one line naming /config, uid 1000 and the fix; exit %s" % code,
          out[-1500:])
    if lines:
        print("    " + lines[0].strip(), flush=True)


def check_other_user(podman, work):
    d = os.path.join(work, "user1234")
    os.makedirs(d, exist_ok=True)
    os.chown(d, 1234, 1234)
    name = "pss-test-user"
    hostport = rig.free_port()
    podman.run(name, "--user", "1234:1234", "--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL",
               "-p", "127.0.0.1:%d:5000" % hostport, "-e", "MANUAL_PASS=" + MANUAL_PASS, "-v", "%s:/config" % d)
    up = healthy(hostport)
    uid = proc_status(podman, name, "Uid") if up else None
    check(up and uid is not None and uid[0] == "1234" and os.path.exists(os.path.join(d, "plex-servarr-sync.db")),
          "--user 1234:1234 with a folder of that user works", "%r\n%s" % (uid, podman.logs(name)[-1500:]))
    podman.rm(name)


# ---------------------------------------------------------------------------------------------

def main():
    t0 = time.monotonic()
    mirror = preflight()
    os.makedirs(CACHE, exist_ok=True)
    lock = open(os.path.join(CACHE, "lock"), "w")
    print("waiting for the cache lock %s" % lock.name, flush=True)
    fcntl.flock(lock, fcntl.LOCK_EX)
    key = hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]
    podman = Podman(key)
    work = tempfile.mkdtemp(prefix="pss-container-")
    os.chmod(work, 0o755)
    plex = None
    try:
        tar = base_rootfs(mirror, key)
        import_bases(podman, tar)
        if not build_image(podman):
            return
        check_image(podman)
        # The double listens on every address so that containers reach it at the bridge gateway;
        # it stays strict (a wrong or missing token is 401).
        plex = PlexDouble(token=PLEX_TOKEN, host="0.0.0.0",
                          sections=[{"key": "1", "type": "show", "title": "TV", "locations": [TV]}]).start()
        check_compose_file()
        check_main(podman, work, plex)
        check_zombie_probe_sees_zombies(podman)
        check_queue_survives(podman, work)
        check_secret_conflict(podman, work)
        check_unwritable_config(podman, work)
        check_other_user(podman, work)
    except Exception as e:  # a broken step is a failure, never a pass
        fail("unexpected error: %s" % e)
    finally:
        if os.environ.get("PSS_TEST_KEEP") == "1":
            for name in podman.started:
                print("---- logs of %s" % name)
                print(podman.logs(name)[-3000:])
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        podman.cleanup()
        for v in ("pss-test-main", "pss-test-queue"):
            podman("volume", "rm", "-f", v, check_rc=False)
        if plex:
            plex.stop()
        print("%d passed, %d failed (%.0f s)" % (passed, failed, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(1 if failed or not passed else 0)
