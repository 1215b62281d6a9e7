#!/usr/bin/env python3
"""The benchmarks: every figure beside a reference measured in the same run.

test/bench/run.sh builds the daemon in Release (build-bench/) and runs this; run by hand:

    python3 test/bench/bench.py --binary build-bench/plex-servarr-sync [--only ingest,memory]
                                [--quick] [--results test/bench/results.md]

  ingest    wrk posts Sonarr Download payloads for 2,000 different folders over keep-alive
            connections: nginx (worker_processes 1) answering a fixed 202, the daemon with
            DURABILITY=process and the daemon with DURABILITY=full (WEBHOOK_DELAY=1h: accept,
            parse, queue, commit, answer). Rounds alternate between the three; the median round of
            each is reported. Then each daemon is killed (SIGKILL) and its database read: every
            acknowledged event must be in it.
  memory    peak RSS (/usr/bin/time -v) of the daemon idle, after 2,000 and after 100,000
            different folders were queued.
  e2e       WEBHOOK_DELAY=0: from the webhook's 2xx (and from sending it) to the Plex double
            receiving the refresh, for 1,000 folders, without the rclone step and with it (real
            `rclone serve`). Negative from the 2xx: the scan began before the answer, which waits
            for the database's sync.
  drain     200 folders queued at once, the Plex double answering each refresh after 500 ms;
            time until all are scanned with MAX_CONCURRENT_SYNCS 1, 4 and 16.
  slowloris webhook latency (fresh connection each) while 1,000 connections trickle a request head.

Nothing here is a pass/fail test: the table shows each figure, its reference, the target and
whether the target was met; the exit status is 0 when every benchmark ran, 1 when one could not.
"""

import argparse
import http.client
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "test", "integration"))

from plexdouble import PlexDouble  # noqa: E402
from rig import Rclone, free_port, port_open, sonarr_download  # noqa: E402

FIXTURE = os.path.join(ROOT, "test", "fixtures", "sonarr-download.json")
WRK_SCRIPT = os.path.join(HERE, "sonarr.lua")
PLEX_TOKEN = "bench-plex-token"
MANUAL_PASS = "bench-manual-pass"
MIB = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# small helpers

def log(msg):
    sys.stderr.write("[bench] %s\n" % msg)
    sys.stderr.flush()


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def wait_until(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def fmt_ms(s):
    ms = s * 1000.0
    if ms < 1:
        return "%.2f ms" % ms
    if ms < 10:
        return "%.1f ms" % ms
    return "%.0f ms" % ms


def fmt_int(n):
    return "{:,}".format(int(round(n)))


def raise_nofile(want=8192):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Conn:
    """A keep-alive HTTP/1.1 connection for webhooks."""

    def __init__(self, port, timeout=30.0):
        self.port = port
        self.timeout = timeout
        self.c = None

    def post(self, path, body, headers=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                h = {"Content-Type": "application/json", "Content-Length": str(len(body)),
                     "User-Agent": "Sonarr/4.0.16.2944 (debian 12)"}
                h.update(headers or {})
                self.c.request("POST", path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.c is not None:
            self.c.close()
            self.c = None


def webhook_body(series_path, title):
    p = sonarr_download(series_path, "Season 01/%s - S01E01 - Pilot [WEBDL-1080p].mkv" % title,
                        title=title)
    return json.dumps(p, indent=2).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# the daemon

class Daemon:
    """The binary with an env file in its own directory; optionally under /usr/bin/time -v."""

    def __init__(self, binary, workdir, env, time_v=False):
        self.binary = binary
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.env = {
            "PORT": str(self.port),
            "BIND_ADDRESS": "127.0.0.1",
            "STATE_DIR": os.path.join(workdir, "state"),
            "MANUAL_USER": "admin",
            "MANUAL_PASS": MANUAL_PASS,
        }
        self.env.update({k: str(v) for k, v in env.items()})
        self.time_v = time_v
        self.time_path = os.path.join(workdir, "time-v.txt")
        self.log_path = os.path.join(workdir, "daemon.log")
        self.proc = None
        self.pid = None

    @property
    def state_dir(self):
        return self.env["STATE_DIR"]

    @property
    def db_path(self):
        return os.path.join(self.state_dir, "plex-servarr-sync.db")

    def start(self, timeout=20.0):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        env_path = os.path.join(self.workdir, "daemon.env")
        with open(env_path, "w", encoding="utf-8") as f:
            for k, v in self.env.items():
                f.write("%s='%s'\n" % (k, v))
        cmd = [self.binary, "--env-file", env_path]
        if self.time_v:
            cmd = ["/usr/bin/time", "-v", "-o", self.time_path] + cmd
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                                         start_new_session=True)
        finally:
            logf.close()
        self.pid = self.proc.pid
        if self.time_v:
            def child():
                try:
                    with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                        kids = f.read().split()
                    return int(kids[0]) if kids else None
                except OSError:
                    return None
            self.pid = wait_until(child, 5)
            if not self.pid:
                raise RuntimeError("the daemon did not start under /usr/bin/time")
        ok = wait_until(lambda: self.proc.poll() is not None or self.healthy(), timeout, 0.05)
        if not ok or self.proc.poll() is not None:
            self.kill()
            raise RuntimeError("the daemon did not start:\n" + self.log_tail())
        return self

    def healthy(self):
        if not port_open(self.port):
            return False
        try:
            return self.health() is not None
        except OSError:
            return False

    def health(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", "/health")
            r = c.getresponse()
            body = r.read()
            return json.loads(body) if r.status in (200, 503) else None
        finally:
            c.close()

    def depth(self):
        return self.health()["queue"]["depth"]

    def status_kib(self, field):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return None

    def stop(self, timeout=30.0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for pid in {self.pid, self.proc.pid}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (OSError, TypeError):
                    pass
            self.proc.wait(10)

    def max_rss_kib(self):
        """/usr/bin/time -v's "Maximum resident set size" after the daemon exited."""
        with open(self.time_path, encoding="utf-8", errors="replace") as f:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", f.read())
        return int(m.group(1)) if m else None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


# ---------------------------------------------------------------------------------------------
# wrk

def wrk_cmd(url, seconds, connections, folders=2000, stop_after=0, prefix="/tv"):
    return ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", "--timeout", "10s",
            "-s", WRK_SCRIPT, url, "--", FIXTURE, str(folders), prefix, str(stop_after)]


def wrk_parse(out):
    """wrk's report -> {rps, p50, p99, requests, non2xx, errors}."""
    def unit(v, u):
        return float(v) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[u]

    def latency(p):
        m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s|m)\s*$" % p, out, re.M)
        return unit(*m.groups()) if m else float("nan")

    m = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency(50), "p99": latency(99),
        "requests": int(m.group(1)) if m else 0,
        "non2xx": int(non.group(1)) if non else 0,
        "errors": sum(int(x) for x in err.groups()) if err else 0,
        "raw": out,
    }


def wrk(url, seconds, connections, folders=2000):
    """Run wrk with the Sonarr script for `seconds`."""
    out = subprocess.run(wrk_cmd(url, seconds, connections, folders), check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    return wrk_parse(out)


def wrk_fill(daemon, folders, connections=16, timeout=600):
    """Queue exactly `folders` different folders: wrk's thread stops sending after that many
    answers (the script's STOP_AFTER); wrk itself is ended (SIGINT: it prints its report) once
    the daemon's queue holds them all."""
    url = "http://127.0.0.1:%d/webhook/sonarr" % daemon.port
    p = subprocess.Popen(wrk_cmd(url, timeout, connections, folders, stop_after=folders),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ok = wait_until(lambda: p.poll() is not None or daemon.depth() >= folders, timeout, 0.1)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        out = p.communicate(timeout=30)[0]
    r = wrk_parse(out)
    if not ok or r["non2xx"] or r["errors"]:
        raise RuntimeError("filling %d folders: depth %d, %d non-2xx, %d socket errors"
                           % (folders, daemon.depth(), r["non2xx"], r["errors"]))
    return r


# ---------------------------------------------------------------------------------------------
# nginx: the machine's reference

NGINX_BODY = ('{"status":"queued","entries":[{"section":1,"plex_path":"/tv/Bench Show 000001 '
              '(1991)/Season 01","arr_path":"/tv/Bench Show 000001 (1991)/Season 01","id":1,'
              '"state":"waiting","queued_as":"merged"}]}')


class Nginx:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def start(self):
        conf = os.path.join(self.dir, "nginx.conf")
        d = self.dir
        with open(conf, "w") as f:
            f.write("""worker_processes 1;
daemon off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %(d)s/body;
  proxy_temp_path %(d)s/proxy;
  fastcgi_temp_path %(d)s/fastcgi;
  uwsgi_temp_path %(d)s/uwsgi;
  scgi_temp_path %(d)s/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 60s;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      default_type application/json;
      return 202 '%(body)s';
    }
  }
}
""" % {"d": d, "port": self.port, "body": NGINX_BODY})
        logf = open(os.path.join(d, "stdout.log"), "ab")
        try:
            self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        finally:
            logf.close()
        if not wait_until(lambda: self.proc.poll() is not None or port_open(self.port), 10) \
                or self.proc.poll() is not None:
            raise RuntimeError("nginx did not start: see %s/error.log" % d)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its worker
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---------------------------------------------------------------------------------------------
# 1. ingest

def ingest_env(durability):
    # One Plex server (nothing listens there: its list is never read, and SECTION_MAPPING gives
    # every folder its delivery), as a real setup has: each queued folder carries one delivery.
    return {"DURABILITY": durability, "PLEX_URL": "http://127.0.0.1:9", "PLEX_TOKEN": "bench",
            "SECTION_MAPPING": '{"/tv": 1}', "WEBHOOK_DELAY": "1h", "WEBHOOK_MAX_DELAY": "2h",
            "USE_RCLONE": "false"}


def recovered_events(db_path):
    """Events a killed daemon's database holds: merged into entries, or still in the inbox."""
    db = sqlite3.connect(db_path)
    try:
        in_entries, n_entries = db.execute("SELECT coalesce(sum(events), 0), count(*) "
                                           "FROM entries").fetchone()
        (in_inbox,) = db.execute("SELECT count(*) FROM inbox").fetchone()
        return in_entries + in_inbox, n_entries
    finally:
        db.close()


def bench_ingest(binary, tmp, opts):
    seconds = 3 if opts.quick else opts.ingest_seconds
    rounds = 1 if opts.quick else opts.rounds
    conns = opts.connections
    nginx = Nginx(tmp).start()
    daemons = {}
    try:
        for mode in ("process", "full"):
            daemons[mode] = Daemon(binary, os.path.join(tmp, "ingest-" + mode),
                                   ingest_env(mode)).start()
        targets = [("nginx", "http://127.0.0.1:%d/webhook/sonarr" % nginx.port)]
        targets += [(m, "http://127.0.0.1:%d/webhook/sonarr" % d.port) for m, d in daemons.items()]
        acked = {m: 0 for m in daemons}
        cut = {m: 0 for m in daemons}   # requests a stopped wrk may have left unanswered
        bad = {name: 0 for name, _ in targets}
        # warm up: fill the queues with their 2,000 folders, grow the WAL to its working size
        for name, url in targets:
            r = wrk(url, 2, conns)
            bad[name] += r["non2xx"] + r["errors"]
            if name in acked:
                acked[name] += r["requests"]
                cut[name] += conns
        results = {name: [] for name, _ in targets}
        for rnd in range(rounds):
            for name, url in targets:
                r = wrk(url, seconds, conns)
                log("ingest round %d %-8s %8.0f req/s  p50 %s  p99 %s" % (
                    rnd + 1, name, r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"])))
                results[name].append(r)
                bad[name] += r["non2xx"] + r["errors"]
                if name in acked:
                    acked[name] += r["requests"]
                    cut[name] += conns
        # Each round measures the three back to back, so the machine is in the same state for
        # a daemon and its reference: the ratio is taken per round, and the round with the
        # median ratio is the one shown.
        out = {"connections": conns, "seconds": seconds, "rounds": rounds,
               "all_rps": {name: [r["rps"] for r in rs] for name, rs in results.items()}}
        ng = results["nginx"]
        for mode in daemons:
            rs = results[mode]
            ratios = [r["rps"] / n["rps"] if n["rps"] else 0.0 for r, n in zip(rs, ng)]
            k = sorted(range(len(ratios)), key=lambda i: ratios[i])[len(ratios) // 2]
            out[mode] = {"rps": rs[k]["rps"], "p50": rs[k]["p50"], "p99": rs[k]["p99"],
                         "ratio": ratios[k], "ratios": ratios, "round": k + 1, "bad": bad[mode],
                         "nginx": {"rps": ng[k]["rps"], "p50": ng[k]["p50"], "p99": ng[k]["p99"]}}
        out["nginx"] = {"bad": bad["nginx"]}
        for mode, d in daemons.items():
            depth = d.depth()
            d.kill()  # SIGKILL: what the database holds now is what a crash leaves
            events, entries = recovered_events(d.db_path)
            out[mode].update({"acked": acked[mode], "recovered": events, "entries": entries,
                              "depth": depth, "slack": cut[mode]})
        return out
    finally:
        nginx.stop()
        for d in daemons.values():
            d.kill()


# ---------------------------------------------------------------------------------------------
# 2. memory

def bench_memory(binary, tmp, opts):
    out = {}
    cases = [("idle", 0), ("2000", 2000), ("100000", 20000 if opts.quick else 100000)]
    for name, folders in cases:
        env = ingest_env("full")
        env["MAX_PENDING"] = "200000"
        d = Daemon(binary, os.path.join(tmp, "memory-" + name), env, time_v=True).start()
        try:
            if folders:
                wrk_fill(d, folders)
            # let the last answers' entry snapshots reach the database, then read the depth
            wait_until(lambda: d.depth() >= folders, 30, 0.1)
            time.sleep(1.0)
            depth = d.depth()
            hwm = d.status_kib("VmHWM")
            rss = d.status_kib("VmRSS")
        finally:
            code = d.stop()
        max_rss = d.max_rss_kib()
        log("memory %-7s depth %6d  VmHWM %6d KiB  time -v max RSS %s KiB (exit %s)"
            % (name, depth, hwm, max_rss, code))
        out[name] = {"folders": folders, "depth": depth, "max_rss_kib": max_rss,
                     "vmhwm_kib": hwm, "vmrss_kib": rss}
    return out


# ---------------------------------------------------------------------------------------------
# 3. end to end

class PlexProcess:
    """plexdouble.py as its own process (--log prints each refresh with its CLOCK_MONOTONIC
    receipt time), so the client measuring here shares no interpreter with it."""

    LINE = re.compile(r"^([\d.]+) refresh section=(\S+) path=(.*)$")

    def __init__(self, tmp, sections, delay=0.0):
        self.port = None
        self.sections_path = os.path.join(tmp, "sections.json")
        with open(self.sections_path, "w") as f:
            json.dump(sections, f)
        self.delay = delay
        self.proc = None
        self.cond = threading.Condition()
        self.seen = {}      # path -> receipt time (monotonic)
        self.order = []

    def start(self):
        cmd = [sys.executable, os.path.join(ROOT, "test", "integration", "plexdouble.py"),
               "--port", "0", "--token", PLEX_TOKEN, "--sections", self.sections_path,
               "--delay", str(self.delay), "--no-record", "--log"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1,
                                     start_new_session=True)
        first = self.proc.stdout.readline()
        m = re.search(r"listening on [\d.]+:(\d+)", first)
        if not m:
            raise RuntimeError("the Plex double did not start: %r" % first)
        self.port = int(m.group(1))
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self):
        for line in self.proc.stdout:
            m = self.LINE.match(line.rstrip("\n"))
            if not m:
                continue
            with self.cond:
                self.seen.setdefault(m.group(3), float(m.group(1)))
                self.order.append(m.group(3))
                self.cond.notify_all()

    def wait_path(self, path, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while path not in self.seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.seen[path]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def plex_round_trips(port, n=200):
    """Reference: the client's own refresh call to the Plex double, the request the daemon makes
    (keep-alive; the double answers it in one write, as it answers the daemon)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        for i in range(n):
            t = time.monotonic()
            c.request("GET", "/library/sections/1/refresh?path=%%2Fbench-reference%%2F%d" % i,
                      headers={"X-Plex-Token": PLEX_TOKEN})
            c.getresponse().read()
            times.append(time.monotonic() - t)
    finally:
        c.close()
    return times


def rclone_refresh_times(rc, media, n=200):
    """Reference: the RC calls the daemon makes for a folder of a new series, made directly:
    vfs/forget of the folder, vfs/refresh of it (not listed yet), of its parent (not listed
    either), of the library root (listed), then of the folder again."""
    times = []
    for i in range(n):
        show = "Ref Show %04d" % i
        season = os.path.join(media, "tv", show, "Season 01")
        os.makedirs(season)
        with open(os.path.join(season, "e.mkv"), "wb") as f:
            f.write(b"x")
        rel = "tv/%s/Season 01" % show
        t = time.monotonic()
        rc.rc("vfs/forget", {"dir": rel})
        rc.rc("vfs/refresh", {"dir": rel, "recursive": "true"})
        rc.rc("vfs/refresh", {"dir": "tv/" + show})
        rc.rc("vfs/refresh", {"dir": "tv"})
        rc.rc("vfs/refresh", {"dir": rel, "recursive": "true"})
        times.append(time.monotonic() - t)
    return times


def bench_e2e(binary, tmp, opts, with_rclone):
    n = 200 if opts.quick else 1000
    base = os.path.join(tmp, "e2e-rclone" if with_rclone else "e2e-plain")
    media = os.path.join(base, "media")
    tv = os.path.join(media, "tv")
    os.makedirs(tv)
    plex = PlexProcess(base, [{"key": "1", "type": "show", "title": "TV", "locations": [tv]}]).start()
    rc = None
    d = None
    try:
        env = {"PLEX_URL": plex.url, "PLEX_TOKEN": PLEX_TOKEN, "WEBHOOK_DELAY": "0",
               "MINIMUM_AGE": "0", "USE_RCLONE": "false"}
        ref = None
        if with_rclone:
            rc = Rclone(media, base).start()
            env.update({"USE_RCLONE": "true", "RCLONE_RC_URL": rc.rc_url,
                        "RCLONE_MOUNT_ROOT": media})
        d = Daemon(binary, os.path.join(base, "daemon"), env).start()
        conn = Conn(d.port)
        # the daemon reads Plex's library list at start: wait until a webhook is "queued"
        probe = os.path.join(tv, "Probe Show")
        os.makedirs(os.path.join(probe, "Season 01"))
        body = webhook_body(probe, "Probe Show")
        if not wait_until(lambda: json.loads(conn.post("/webhook/sonarr", body)[1]).get("status")
                          == "queued", 20, 0.1):
            raise RuntimeError("the daemon never read the Plex double's library list")
        if plex.wait_path(os.path.join(probe, "Season 01"), 30) is None:
            raise RuntimeError("the probe folder was never scanned")
        # From the 2xx, as the benchmark is defined. With DURABILITY=full (the default) the 2xx
        # waits for the WAL's sync while the scan has already begun, so this can be negative;
        # from the request's sending it is the latency a user sees.
        lat, lat_sent = [], []
        for i in range(n):
            show = "E2E Show %04d" % i
            series = os.path.join(tv, show)
            season = os.path.join(series, "Season 01")
            os.makedirs(season)
            fname = "%s - S01E01 - Pilot [WEBDL-1080p].mkv" % show
            with open(os.path.join(season, fname), "wb") as f:
                f.write(b"x")
            body = webhook_body(series, show)
            t_sent = time.monotonic()
            status, data = conn.post("/webhook/sonarr", body)
            t_ack = time.monotonic()
            if status != 202:
                raise RuntimeError("webhook answered %d: %r" % (status, data[:200]))
            t_ref = plex.wait_path(season, 30)
            if t_ref is None:
                raise RuntimeError("no refresh for %s within 30 s" % season)
            lat.append(t_ref - t_ack)
            lat_sent.append(t_ref - t_sent)
        conn.close()
        if with_rclone:
            ref = rclone_refresh_times(rc, media, 100 if opts.quick else 200)
        else:
            ref = plex_round_trips(plex.port)
        res = {"n": n, "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat),
               "sent_p50": pct(lat_sent, 50), "sent_p99": pct(lat_sent, 99),
               "ref_p50": pct(ref, 50), "ref_p99": pct(ref, 99)}
        log("e2e %s rclone: p50 %s p99 %s max %s; from sending p50 %s p99 %s (reference p50 %s "
            "p99 %s)" % ("with" if with_rclone else "without", fmt_ms(res["p50"]),
                         fmt_ms(res["p99"]), fmt_ms(res["max"]), fmt_ms(res["sent_p50"]),
                         fmt_ms(res["sent_p99"]), fmt_ms(res["ref_p50"]), fmt_ms(res["ref_p99"])))
        return res
    finally:
        if d:
            d.stop()
        if rc:
            rc.stop()
        plex.stop()


# ---------------------------------------------------------------------------------------------
# 4. drain

def bench_drain(binary, tmp, opts, concurrency):
    n = 40 if opts.quick else 200
    delay = 0.5
    base = os.path.join(tmp, "drain-%d" % concurrency)
    tv = "/bench/tv"
    plex = PlexDouble(token=PLEX_TOKEN, sections=[{"key": "1", "type": "show", "title": "TV",
                                                   "locations": [tv]}], delay=delay, record=True)
    plex.start()
    d = None
    try:
        env = {"PLEX_URL": plex.url, "PLEX_TOKEN": PLEX_TOKEN, "WEBHOOK_DELAY": "0",
               "MINIMUM_AGE": "0", "USE_RCLONE": "false", "MAX_CONCURRENT_SYNCS": concurrency}
        d = Daemon(binary, base, env).start()
        if not wait_until(lambda: d.health()["plex"]["libraries"] >= 1, 20, 0.05):
            raise RuntimeError("the daemon never read the Plex double's library list")
        bodies = [webhook_body("%s/Drain Show %03d" % (tv, i), "Drain Show %03d" % i)
                  for i in range(n)]
        workers = 20
        conns = [Conn(d.port) for _ in range(workers)]

        def post_slice(k):
            for i in range(k, n, workers):
                status, data = conns[k].post("/webhook/sonarr", bodies[i])
                if status != 202:
                    raise RuntimeError("webhook answered %d: %r" % (status, data[:200]))

        t0 = time.monotonic()
        with ThreadPoolExecutor(workers) as ex:
            for f in [ex.submit(post_slice, k) for k in range(workers)]:
                f.result()
        t_queued = time.monotonic() - t0
        done = plex.wait_for(lambda p: p.counts["refresh_ok"] >= n, timeout=n * delay * 3 + 30)
        elapsed = time.monotonic() - t0
        for c in conns:
            c.close()
        if not done:
            raise RuntimeError("only %d of %d folders scanned" % (plex.counts["refresh_ok"], n))
        paths = {r.scan_path for r in plex.scans()}
        ideal = n * delay / concurrency
        res = {"n": n, "elapsed": elapsed, "ideal": ideal, "ratio": elapsed / ideal,
               "queued_in": t_queued, "distinct": len(paths),
               "max_concurrent": plex.max_concurrent_refreshes}
        log("drain c=%-2d %.2f s (ideal %.2f s, x%.3f), all queued in %.2f s, %d distinct, "
            "max %d at once" % (concurrency, elapsed, ideal, res["ratio"], t_queued, len(paths),
                                res["max_concurrent"]))
        return res
    finally:
        if d:
            d.stop()
        plex.stop()


# ---------------------------------------------------------------------------------------------
# 5. slowloris

def slowloris_holder(port, count, seconds):
    """(A separate process.) Keep `count` connections open, each sending one more header line
    every ~2 s and never ending its head; a connection the server closes is opened again. Prints
    "ready" once all are open, then one JSON line of statistics at the end."""
    raise_nofile(count + 256)
    sel = selectors.DefaultSelector()
    conns = {}
    reopened = 0
    min_open = count

    def open_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(True)
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"POST /webhook/sonarr HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\n")
        s.setblocking(False)
        conns[s] = time.monotonic() + 2.0 * (len(conns) % 100) / 100.0
        sel.register(s, selectors.EVENT_READ)

    for _ in range(count):
        open_one()
    print("ready", flush=True)
    end = time.monotonic() + seconds
    n_line = 0
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.02):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:  # closed (or answered 408 and closing): replace it
                sel.unregister(s)
                s.close()
                del conns[s]
                reopened += 1
        min_open = min(min_open, len(conns))
        while len(conns) < count:
            open_one()
        now = time.monotonic()
        for s, due in list(conns.items()):
            if due <= now:
                n_line += 1
                try:
                    s.send(b"X-Slow-%d: %d\r\n" % (n_line % 1000, n_line))
                except OSError:
                    pass
                conns[s] = now + 2.0
    for s in list(conns):
        s.close()
    print(json.dumps({"reopened": reopened, "min_open": min_open}), flush=True)


def webhook_latencies(port, bodies, spacing):
    """One webhook per fresh connection, `spacing` s apart; returns the latencies (connect to
    complete answer)."""
    lat = []
    for body in bodies:
        t = time.monotonic()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("POST", "/webhook/sonarr", body=body,
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 202:
                raise RuntimeError("webhook answered %d" % r.status)
        finally:
            c.close()
        lat.append(time.monotonic() - t)
        time.sleep(spacing)
    return lat


def bench_slowloris(binary, tmp, opts):
    count = 200 if opts.quick else 1000
    samples = 50 if opts.quick else 100
    env = {"SECTION_MAPPING": '{"/tv": 1}', "USE_RCLONE": "false"}  # everything else default
    d = Daemon(binary, os.path.join(tmp, "slowloris"), env).start()
    holder = None
    try:
        bodies = [webhook_body("/tv/Slow Show %04d" % i, "Slow Show %04d" % i)
                  for i in range(2 * samples)]
        base = webhook_latencies(d.port, bodies[:samples], 0.02)
        holder = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--slowloris-holder",
                                   str(d.port), str(count), "60"],
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
        if holder.stdout.readline().strip() != "ready":
            raise RuntimeError("the slowloris connections could not be opened")
        time.sleep(1.0)
        under = webhook_latencies(d.port, bodies[samples:], 0.02)
        holder.send_signal(signal.SIGTERM)
        holder.wait(15)
        res = {"count": count, "n": samples, "p50": pct(under, 50), "p99": pct(under, 99),
               "max": max(under), "ref_p50": pct(base, 50), "ref_p99": pct(base, 99),
               "ref_max": max(base)}
        log("slowloris %d: p50 %s p99 %s max %s (alone: p50 %s p99 %s max %s)" % (
            count, fmt_ms(res["p50"]), fmt_ms(res["p99"]), fmt_ms(res["max"]),
            fmt_ms(res["ref_p50"]), fmt_ms(res["ref_p99"]), fmt_ms(res["ref_max"])))
        return res
    finally:
        if holder and holder.poll() is None:
            holder.kill()
            holder.wait(5)
        d.stop()


# ---------------------------------------------------------------------------------------------
# the table

def mark(ok):
    return "pass" if ok else "**MISS**"


def table(res, env_note):
    rows = []

    def row(*cells):
        rows.append("| " + " | ".join(str(c) for c in cells) + " |")

    rows.append("| # | benchmark | measured | reference (same run) | target | result |")
    rows.append("|---|---|---|---|---|---|")
    ing = res.get("ingest")
    if isinstance(ing, dict):
        for mode, want in (("process", 0.6), ("full", 0.4)):
            r = ing[mode]
            ng = r["nginx"]
            ratio = r["ratio"]
            row("1", "ingest, DURABILITY=%s" % mode,
                "%s req/s, p50 %s, p99 %s" % (fmt_int(r["rps"]), fmt_ms(r["p50"]), fmt_ms(r["p99"])),
                "nginx, same round: %s req/s, p50 %s, p99 %s" % (
                    fmt_int(ng["rps"]), fmt_ms(ng["p50"]), fmt_ms(ng["p99"])),
                "≥ %.1f × nginx" % want,
                "%s (%.2f ×)" % (mark(ratio >= want and r["bad"] == 0 and ing["nginx"]["bad"] == 0),
                                 ratio))
        for mode in ("process", "full"):
            r = ing[mode]
            ok = r["acked"] <= r["recovered"] <= r["acked"] + r["slack"] and r["bad"] == 0
            row("1", "acknowledged = committed, %s" % mode,
                "%s events answered 202; after SIGKILL the database holds %s in %s folders"
                % (fmt_int(r["acked"]), fmt_int(r["recovered"]), fmt_int(r["entries"])),
                "up to %s more: requests in flight when wrk stopped" % fmt_int(r["slack"]),
                "every 2xx on disk", mark(ok))
    elif ing:
        row("1", "ingest", "could not run: %s" % ing, "", "", "**MISS**")

    mem = res.get("memory")
    if isinstance(mem, dict):
        idle = mem["idle"]["max_rss_kib"] / 1024.0
        for key, label, limit in (("idle", "idle", None), ("2000", "2,000 pending folders", 16),
                                  ("100000", "%s pending folders" % fmt_int(mem["100000"]["folders"]),
                                   64)):
            m = mem[key]
            mib = m["max_rss_kib"] / 1024.0
            ok = m["depth"] == m["folders"] and (limit is None or mib <= limit)
            row("2", "peak RSS, %s" % label,
                "%.1f MiB (%s queued)" % (mib, fmt_int(m["depth"])),
                "idle %.1f MiB" % idle if key != "idle" else "—",
                "≤ %d MiB" % limit if limit else "—",
                mark(ok) if limit else "info")
    elif mem:
        row("2", "memory", "could not run: %s" % mem, "", "", "**MISS**")

    for key, label, limit, refname in (("e2e_plain", "end to end, without rclone", 0.010,
                                        "a refresh sent to the Plex double by the client"),
                                       ("e2e_rclone", "end to end, with rclone serve", 0.050,
                                        "rclone forget + refresh called directly")):
        e = res.get(key)
        if isinstance(e, dict):
            row("3", "%s (%s folders)" % (label, fmt_int(e["n"])),
                "from the 2xx: p50 %s, p99 %s (max %s); from sending the request: p50 %s, p99 %s"
                % (fmt_ms(e["p50"]), fmt_ms(e["p99"]), fmt_ms(e["max"]), fmt_ms(e["sent_p50"]),
                   fmt_ms(e["sent_p99"])),
                "%s: p50 %s, p99 %s" % (refname, fmt_ms(e["ref_p50"]), fmt_ms(e["ref_p99"])),
                "p99 < %d ms" % int(limit * 1000), mark(e["p99"] < limit))
        elif e:
            row("3", label, "could not run: %s" % e, "", "", "**MISS**")

    for c in (1, 4, 16):
        dr = res.get("drain_%d" % c)
        if isinstance(dr, dict):
            row("4", "drain %d folders, MAX_CONCURRENT_SYNCS=%d" % (dr["n"], c),
                "%.2f s (at most %d refresh%s at once)" % (
                    dr["elapsed"], dr["max_concurrent"], "" if dr["max_concurrent"] == 1 else "es"),
                "ideal %d × 0.5 s / %d = %.2f s" % (dr["n"], c, dr["ideal"]),
                "≤ 1.2 × ideal",
                "%s (%.3f ×)" % (mark(dr["ratio"] <= 1.2 and dr["distinct"] == dr["n"]),
                                 dr["ratio"]))
        elif dr:
            row("4", "drain, MAX_CONCURRENT_SYNCS=%d" % c, "could not run: %s" % dr, "", "",
                "**MISS**")

    sl = res.get("slowloris")
    if isinstance(sl, dict):
        row("5", "webhook under %s slowloris connections (%d webhooks)" % (fmt_int(sl["count"]),
                                                                         sl["n"]),
            "p50 %s, p99 %s, max %s" % (fmt_ms(sl["p50"]), fmt_ms(sl["p99"]), fmt_ms(sl["max"])),
            "no slowloris: p50 %s, p99 %s, max %s" % (fmt_ms(sl["ref_p50"]), fmt_ms(sl["ref_p99"]),
                                                      fmt_ms(sl["ref_max"])),
            "every one < 100 ms", mark(sl["max"] < 0.100))
    elif sl:
        row("5", "slowloris", "could not run: %s" % sl, "", "", "**MISS**")
    return "\n".join(rows) + "\n\n" + env_note + "\n"


def machine_note(opts, res):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = m.group(1).strip() if m else "?"
    except OSError:
        pass
    ing = res.get("ingest") if isinstance(res.get("ingest"), dict) else None
    parts = ["Machine: %d cores (%s)." % (os.cpu_count() or 0, cpu)]
    if ing:
        rounds = ["%d: nginx %s, process %s (%.2f ×), full %s (%.2f ×)" % (
            i + 1, fmt_int(ing["all_rps"]["nginx"][i]), fmt_int(ing["all_rps"]["process"][i]),
            ing["process"]["ratios"][i], fmt_int(ing["all_rps"]["full"][i]),
            ing["full"]["ratios"][i]) for i in range(ing["rounds"])]
        parts.append("Ingest: `wrk -t1 -c%d -d%ds --latency -s test/bench/sonarr.lua` (one core "
                     "for the client, one for the server), after a 2 s warm-up of each; %d rounds, "
                     "each running nginx, DURABILITY=process and DURABILITY=full back to back; "
                     "the ratio is taken within a round and the round with the median ratio is "
                     "shown. Rounds, req/s: %s." % (ing["connections"], ing["seconds"],
                                                    ing["rounds"], "; ".join(rounds)))
    parts.append("Peak RSS is the whole process's, from `/usr/bin/time -v` "
                 "(\"Maximum resident set size\").")
    return " ".join(parts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build-bench", "plex-servarr-sync"))
    ap.add_argument("--only", default="ingest,memory,e2e,drain,slowloris")
    ap.add_argument("--quick", action="store_true", help="short runs (checking the harness)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (ingest)")
    ap.add_argument("--ingest-seconds", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--results", help="write the table here as Markdown")
    ap.add_argument("--json", help="write the raw figures here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--slowloris-holder", nargs=3, metavar=("PORT", "COUNT", "SECONDS"),
                    help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.slowloris_holder:
        port, count, seconds = (int(x) for x in opts.slowloris_holder)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        try:
            slowloris_holder(port, count, seconds)
        except SystemExit:
            pass
        return 0

    raise_nofile(8192)
    binary = os.path.abspath(opts.binary)
    if not os.access(binary, os.X_OK):
        sys.exit("no daemon binary at %s (run test/bench/run.sh)" % binary)
    only = set(x.strip() for x in opts.only.split(",") if x.strip())
    tmp = os.path.realpath(tempfile.mkdtemp(prefix="pss-bench-"))
    res = {}
    failed = False
    plan = []
    if "ingest" in only:
        plan.append(("ingest", lambda: bench_ingest(binary, tmp, opts)))
    if "memory" in only:
        plan.append(("memory", lambda: bench_memory(binary, tmp, opts)))
    if "e2e" in only:
        plan.append(("e2e_plain", lambda: bench_e2e(binary, tmp, opts, False)))
        plan.append(("e2e_rclone", lambda: bench_e2e(binary, tmp, opts, True)))
    if "drain" in only:
        for c in (16, 4, 1):
            plan.append(("drain_%d" % c, lambda c=c: bench_drain(binary, tmp, opts, c)))
    if "slowloris" in only:
        plan.append(("slowloris", lambda: bench_slowloris(binary, tmp, opts)))
    try:
        for name, fn in plan:
            log("running %s" % name)
            try:
                res[name] = fn()
            except Exception as e:  # report it in the table, go on with the others
                log("%s failed: %s" % (name, e))
                res[name] = "%s" % e
                failed = True
    finally:
        if opts.keep:
            log("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    text = table(res, machine_note(opts, res))
    print(text)
    if opts.results:
        with open(opts.results, "w", encoding="utf-8") as f:
            f.write("# Benchmark results\n\nWritten by `test/bench/run.sh` on %s.\n\n%s"
                    % (time.strftime("%Y-%m-%d %H:%M %Z"), text))
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(res, f, indent=2, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
