"""Nothing acknowledged is ever lost: the durable queue, restart recovery and the history.

Each test runs the real binary against the Plex double (and real rclone where a scan happens)
with a STATE_DIR in its temp dir, kills it with SIGKILL or stops it with SIGTERM, and starts it
again on the same STATE_DIR. Outcomes are awaited by polling with generous timeouts; the only
fixed waits are quiet periods proving that something does NOT happen.

A failing commit is produced from outside, honestly: the daemon's file-size limit
(RLIMIT_FSIZE, set on the running process with prlimit) is lowered so SQLite's writes fail with
EFBIG, as on a full disk; the daemon runs with SIGXFSZ ignored (inherited), so the write fails
instead of the signal killing it."""

import hashlib
import http.client
import json
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
import unittest
import urllib.parse

import rig
from rig import (MANUAL_PASS, MANUAL_USER, Daemon, DaemonError, RigTestCase, stays, touch,
                 wait_until)

DB_NAME = "plex-servarr-sync.db"
AUTH = (MANUAL_USER, MANUAL_PASS)


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class DurabilityCase(RigTestCase):
    """Helpers shared by the durability tests."""

    @property
    def state_dir(self):
        return os.path.join(self.tmp, "state")

    @property
    def db_path(self):
        return os.path.join(self.state_dir, DB_NAME)

    # ---- the JSON API ----
    def api(self, target):
        r = self.daemon.get(target, auth=AUTH)
        self.assertEqual(r.status, 200, "%s: %r" % (target, r))
        return r.json()

    def queue(self):
        return self.api("/api/queue?limit=1000")

    def entries(self):
        """Queued entries by folder (the *arr path: the queue's key since 0.2.0)."""
        return {e["arr_path"]: e for e in self.queue()["entries"]}

    def depth(self):
        return self.daemon.get("/health").json()["queue"]["depth"]

    def history(self, search=None, status=None, limit=500):
        """History rows, oldest first."""
        q = {"limit": limit}
        if search:
            q["search"] = search
        if status:
            q["status"] = status
        items = self.api("/api/history?" + urllib.parse.urlencode(q))["items"]
        return sorted(items, key=lambda h: h["id"])

    @staticmethod
    def sources(h):
        """A row's or entry's sources as a sorted list (the API may send a list or a string)."""
        v = h["sources"]
        return sorted(v) if isinstance(v, list) else sorted(x for x in v.split(",") if x)

    def wait_queue_empty(self, timeout=60.0):
        self.assertTrue(wait_until(lambda: self.depth() == 0, timeout, interval=0.1),
                        "the queue never emptied: %r" % self.queue())

    # ---- webhooks ----
    def wait_libraries(self, timeout=20.0):
        """Wait until the daemon has read Plex's library list, so webhooks are answered "queued"
        (not "unresolved"), without queueing anything (a probe webhook could add a scan)."""
        def have():
            h = self.daemon.get("/health").json()
            return (h.get("plex") or {}).get("libraries", 0) > 0
        self.assertTrue(wait_until(have, timeout, interval=0.1),
                        "the daemon never read Plex's library list")

    def show_folder(self, show):
        return os.path.dirname(self.show_file(show))

    def post_show(self, show, statuses=("queued",)):
        f = self.show_file(show)
        touch(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertWebhookAccepted(r, statuses)
        return os.path.dirname(f)

    # ---- restarts ----
    def restart(self, kill=True, **overrides):
        """SIGKILL (or SIGTERM, which must exit 0) the daemon, then start a new one on the same
        STATE_DIR."""
        if kill:
            self.daemon.kill()
        else:
            self.assertEqual(self.daemon.stop(), 0, "exit status after SIGTERM")
        return self.start_daemon(**overrides)

    def start_refused(self, **overrides):
        """Start the binary expecting it to refuse: returns the Daemon after it exited."""
        workdir = os.path.join(self.tmp, "run")
        os.makedirs(workdir, exist_ok=True)
        d = Daemon(workdir, self.daemon_env(**overrides))
        self.daemon = d
        self.addCleanup(d.kill)
        try:
            d.start(timeout=30)
        except DaemonError:
            pass
        else:
            self.fail("the daemon started; it should have refused")
        d.proc.wait(10)
        d.exit_code = d.proc.returncode
        return d

    def assertOneScanEach(self, folders, quiet=1.5):
        """After the queue emptied: exactly one refresh per folder (all 200), none of others."""
        want = {f.encode() for f in folders}

        def exact():
            refs = self.plex.refreshes()
            return (len(refs) == len(want) and {r.scan_path for r in refs} == want
                    and all(r.status == 200 for r in refs))
        self.assertTrue(wait_until(exact, 30), self._scan_summary(folders))
        self.assertTrue(stays(exact, quiet), self._scan_summary(folders))

    def _scan_summary(self, folders):
        counts = {f: len(self.plex.refreshes(path=f)) for f in folders}
        extra = [r for r in self.plex.refreshes()
                 if r.scan_path not in {f.encode() for f in folders}]
        return "refreshes per folder: %r; others: %r" % (counts, extra)


class RestartRecoveryTest(DurabilityCase):
    def test_twenty_folders_acknowledged_then_kill_9_are_each_scanned_once(self):
        """20 folders acknowledged, SIGKILL before their window closes, restart once they are
        overdue: all 20 run at once (within MAX_CONCURRENT_SYNCS), each exactly once."""
        env = dict(WEBHOOK_DELAY="4", DURABILITY="full", MAX_CONCURRENT_SYNCS="3")
        self.plex.delay = 0.2  # scans overlap, so the concurrency limit shows
        self.start_daemon(**env)
        self.wait_libraries()
        folders = [self.post_show("Recover %02d" % i) for i in range(20)]
        acked = time.time()
        self.daemon.kill()
        self.assertEqual(self.plex.refreshes(), [],
                         "precondition: a scan ran before the kill (window too short?)")

        # restart once every due time has passed: overdue entries must run at once
        self.assertTrue(wait_until(lambda: time.time() > acked + 4.5, 10))
        self.start_daemon(**env)
        ready = time.monotonic()
        self.assertIn("DURABILITY=full", self.daemon.own_log())
        self.assertTrue(wait_until(lambda: len(self.plex.scans()) >= 20, 60),
                        self._scan_summary(folders))
        first = min(r.time for r in self.plex.refreshes())
        self.assertLess(first - ready, 3.0, "overdue entries did not run at once")
        self.assertLessEqual(self.plex.max_concurrent_refreshes, 3,
                             "more scans at once than MAX_CONCURRENT_SYNCS")
        self.wait_queue_empty()
        self.assertOneScanEach(folders)

        rows = self.history(status="ok")
        self.assertEqual(sorted(h["plex_path"] for h in rows), sorted(folders))
        for h in rows:
            self.assertEqual(h["section"], 1, h)
            self.assertEqual(self.sources(h), ["sonarr"], h)
            self.assertEqual(h["plex"], "ok", h)
            self.assertIn(h["rclone"], ("ok", "absent"), h)
            self.assertEqual(h["attempt"], 1, h)
            self.assertGreaterEqual(h["events"], 1, h)
            self.assertGreater(h["started"], acked * 1000, h)
            self.assertGreaterEqual(h["duration_ms"], 0, h)

    def test_two_thousand_webhooks_then_kill_9_all_pending_after_restart(self):
        """2,000 webhooks over four keep-alive connections, SIGKILL right after the last 2xx:
        every acknowledged folder is pending after the restart."""
        env = dict(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.start_daemon(**env)
        n = 2000
        shows = ["Bulk %04d" % i for i in range(n)]
        self.wait_libraries()
        payloads = [json.dumps(self.sonarr_for(self.show_file(s))).encode() for s in shows]
        answers = [None] * len(payloads)
        n_conns = 4
        port = self.daemon.port

        def send(k):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                for i in range(k, len(payloads), n_conns):
                    try:
                        conn.request("POST", "/webhook/sonarr", body=payloads[i],
                                     headers={"Content-Type": "application/json"})
                        resp = conn.getresponse()
                        answers[i] = (resp.status, resp.read())
                    except (OSError, http.client.HTTPException) as e:
                        answers[i] = e
                        conn.close()
            finally:
                conn.close()
        threads = [threading.Thread(target=send, args=(k,)) for k in range(n_conns)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.daemon.kill()
        elapsed = time.monotonic() - t0

        acked = set()
        for i, a in enumerate(answers):
            self.assertIsInstance(a, tuple, "request %d: %r" % (i, a))
            self.assertEqual(a[0], 202, "request %d: %r" % (i, a))
            body = json.loads(a[1])
            self.assertEqual(body["status"], "queued", body)
            acked.update(e["plex_path"] for e in body["entries"])
        self.assertEqual(len(acked), n)

        self.start_daemon(**env)
        q = self.queue()
        self.assertEqual(q["depth"], n, "sent in %.1f s; pending after restart: %d"
                         % (elapsed, q["depth"]))
        # the folders themselves, from the database the daemon just loaded
        with sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True) as db:
            stored = {row[0] for row in db.execute("SELECT path FROM entries")}
            inbox = db.execute("SELECT count(*) FROM inbox").fetchone()[0]
        db.close()
        self.assertEqual(stored, acked)
        self.assertEqual(inbox, 0, "start-up applied every leftover event to an entry")
        self.assertEqual(self.plex.refreshes(), [])


class EntryStateAcrossRestartTest(DurabilityCase):
    KEPT = ("id", "section", "plex_path", "arr_path", "state", "first_seen", "last_event", "due",
            "attempts", "events", "files", "dirty", "manual", "sources")

    def test_every_field_of_a_pending_entry_survives_kill_9(self):
        env = dict(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.start_daemon(**env)
        show = "Field Show"
        self.wait_libraries()
        for ep in (1, 2, 3):  # three files of one season: one entry, three events
            f = self.show_file(show, name="%s - S01E%02d.mkv" % (show, ep))
            touch(f)
            self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f)))
        folder = self.show_folder(show)
        before = self.entries()[folder]
        self.assertEqual((before["events"], before["state"]), (3, "waiting"), before)
        self.daemon.kill()

        self.start_daemon(**env)
        after = self.entries()[folder]
        self.assertEqual({k: after.get(k) for k in self.KEPT},
                         {k: before.get(k) for k in self.KEPT})

    def test_far_future_due_time_is_clamped_at_start(self):
        env = dict(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.start_daemon(**env)
        self.wait_libraries()
        folder = self.post_show("Clock Show")
        self.assertEqual(self.daemon.stop(), 0)
        ten_years = 10 * 365 * 86400 * 1000
        with sqlite3.connect(self.db_path) as db:  # as if the clock had jumped back 10 years
            db.execute("UPDATE entries SET due = due + ?", (ten_years,))
        db.close()

        started = time.time() * 1000
        self.start_daemon(**env)
        e = self.entries()[folder]
        self.assertEqual(e["state"], "waiting", e)
        # clamped to now + WEBHOOK_DELAY rather than kept a decade away
        self.assertGreaterEqual(e["due"], started + 3600 * 1000 - 60 * 1000, e)
        self.assertLessEqual(e["due"], time.time() * 1000 + 3600 * 1000 + 60 * 1000, e)

    def test_dirty_flag_of_an_interrupted_sync_survives_kill_9(self):
        """A folder is syncing (Plex is slow to answer) when another event for it arrives: the
        entry is dirty, and that is committed. SIGKILL: after the restart the interrupted scan
        runs again at once (not an hour later: WEBHOOK_DELAY), and since it starts after the
        dirty event it covers it (one history row with both events); nothing runs after it."""
        env = dict(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        show = "Dirty Show"
        folder = self.show_folder(show)
        entered, release = threading.Event(), threading.Event()
        self.addCleanup(release.set)

        def hook(rec):
            if rec.route == "refresh" and rec.scan_path == folder.encode() \
                    and not entered.is_set():
                entered.set()
                release.wait(60)  # the first scan hangs until the daemon is gone
            return None
        self.plex.hook = hook
        self.start_daemon(**env)
        touch(self.show_file(show))
        r = self.daemon.manual_post(folder, MANUAL_USER, MANUAL_PASS)  # runs at once
        self.assertEqual(r.status, 200, r)
        self.assertTrue(entered.wait(30), "the manual scan never reached Plex")
        f2 = self.show_file(show, name="%s - S01E02.mkv" % show)
        touch(f2)
        body = self.assertWebhookAccepted(self.daemon.webhook("sonarr", self.sonarr_for(f2)))
        self.assertEqual(body["entries"][0].get("queued_as"), "rerun", body)
        self.assertTrue(wait_until(lambda: self.entries()[folder]["dirty"], 10))
        self.daemon.kill()
        release.set()
        self.plex.clear()  # forget the hung request (the double answers it 200 to no one)
        with sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True) as db:
            row = db.execute("SELECT state, dirty, events FROM entries WHERE path = ?",
                             (folder,)).fetchone()
        db.close()
        self.assertEqual(row, ("syncing", 1, 2), "the committed entry")

        self.start_daemon(**env)
        restarted = time.monotonic()
        self.assertTrue(self.wait_scans(folder, n=1, timeout=30),
                        "the interrupted scan did not run again")
        self.assertLess(self.plex.scans(path=folder)[0].time - restarted, 10)
        self.wait_queue_empty()
        rows = self.history(search=folder)
        self.assertEqual([(h["status"], h["events"]) for h in rows], [("ok", 2)], rows)
        self.assertTrue(stays(lambda: len(self.plex.scans(path=folder)) == 1, 1.0))


class RetryAcrossRestartTest(DurabilityCase):
    def test_plex_503_outage_with_kill_9_in_the_middle_backs_off_and_scans_all(self):
        self.outage = True
        self.plex.hook = lambda rec: 503 if rec.route == "refresh" and self.outage else None
        env = dict(WEBHOOK_DELAY="0", RETRY_MAX_DELAY="2s")
        self.start_daemon(**env)
        self.wait_libraries()
        folders = [self.post_show("Outage %d" % i) for i in range(5)]
        began = time.monotonic()

        def round_of(f):
            """The folder's one history row: its round, updated by every attempt."""
            rows = self.history(search=f)
            return rows[0] if len(rows) == 1 else None

        def attempts(f):
            r = round_of(f)
            return r["attempts"] if r and r["status"] == "retrying" else 0

        # two failed tries each, then SIGKILL in the middle of the outage
        self.assertTrue(wait_until(lambda: all(attempts(f) >= 2 for f in folders), 60, interval=0.2),
                        self._scan_summary(folders))
        before = {f: attempts(f) for f in folders}
        for f in folders:
            r = round_of(f)
            self.assertIn("503", r.get("error") or "", r)
            self.assertEqual([d["result"] for d in r["deliveries"]], ["retry"], r)
        self.daemon.kill()

        # still down after the restart: the attempt count goes on from where it was
        self.start_daemon(**env)
        for f in folders:
            e = self.entries().get(f)
            self.assertIsNotNone(e, "%s lost across the restart" % f)
            self.assertGreaterEqual(e["attempts"], before[f] - 1, e)
        self.assertTrue(wait_until(lambda: all(attempts(f) > before[f] for f in folders), 60, interval=0.2),
                        "no retry after the restart: %s" % self._scan_summary(folders))
        self.outage = False
        outage = time.monotonic() - began

        self.wait_queue_empty()
        for f in folders:
            refs = self.plex.refreshes(path=f)
            self.assertEqual([r.status for r in refs].count(200), 1, "%s: %r" % (f, refs))
            self.assertEqual(refs[-1].status, 200, refs)
            # full jitter up to RETRY_MAX_DELAY (2 s) averages one try a second; a busy loop
            # would make hundreds
            failed = len(refs) - 1
            self.assertLessEqual(failed, 3 + 3 * outage,
                                 "%s: %d failed tries in %.1f s" % (f, failed, outage))
            # one row for the whole round, ok, counting every attempt (the ones cut short by the
            # kill included at most once more than Plex saw)
            rows = self.history(search=f)
            self.assertEqual([h["status"] for h in rows], ["ok"], rows)
            self.assertGreaterEqual(rows[0]["attempts"], len(refs) - 1, rows)
            self.assertIsNone(rows[0]["error"], rows)
            times = [r.time for r in refs]
            gaps = [b - a for a, b in zip(times, times[1:])]
            # consecutive tries are spread out by the backoff (full jitter over up to 2 s: about
            # a second on average), not back to back
            self.assertGreaterEqual(sum(gaps) / max(1, len(gaps)), 0.3, "mean gap (s) between tries: %r" % gaps)
        self.assertTrue(stays(lambda: len(self.plex.scans()) == len(folders), 1.5),
                        self._scan_summary(folders))


class ParkedAcrossRestartTest(DurabilityCase):
    def test_parked_entry_stays_parked_with_its_reason_after_kill_9(self):
        self.plex.hook = lambda rec: 401 if rec.route == "refresh" else None
        self.start_daemon(WEBHOOK_DELAY="0")
        self.wait_libraries()
        folder = self.post_show("Parked Show")

        def parked():
            e = self.entries().get(folder)
            return e if e and e["state"] == "parked" else None
        before = wait_until(parked, 30)
        self.assertTrue(before, "never parked: %r" % self.queue())
        self.assertIn("PLEX_TOKEN", before["park_reason"])
        rows = self.history(search=folder)
        self.assertEqual([h["status"] for h in rows], ["parked"], rows)
        # the delivery to Plex is what is parked (the token); `plex` repeats its result
        self.assertEqual(rows[0]["plex"], "parked", rows)
        self.assertEqual([d["result"] for d in rows[0]["deliveries"]], ["parked"], rows)
        self.assertIn("PLEX_TOKEN", rows[0].get("error") or "")
        self.daemon.kill()

        # Plex still refuses the token (its library list too): the parked delivery waits as it
        # did; a list read that accepts the token would resume it by itself
        self.plex.hook = lambda rec: 401 if rec.route in ("refresh", "sections") else None
        self.plex.clear()
        self.start_daemon(WEBHOOK_DELAY="0")
        after = self.entries().get(folder)
        self.assertIsNotNone(after, "the parked entry was lost")
        for k in ("id", "state", "park_reason", "attempts", "first_seen", "section"):
            self.assertEqual(after[k], before[k], k)
        health = self.daemon.get("/health").json()
        self.assertEqual(health["queue"]["parked"], 1, health)
        self.assertTrue(stays(lambda: not self.plex.refreshes(), 2.0),
                        "a parked entry was tried after the restart: %r" % self.plex.refreshes())

        # Plex takes the token again; "retry" in the UI probes it first, then the delivery
        # resumes: one scan
        self.plex.hook = None
        r = self.daemon.request("POST", "/api/queue/%d/retry" % after["id"], body=b"",
                                headers={"Authorization": rig.basic_auth(*AUTH)})
        self.assertEqual(r.status, 202, r)
        self.wait_queue_empty()
        self.assertOneScanEach([folder])


class UnresolvedAcrossRestartTest(DurabilityCase):
    plex_running_at_start = False

    def test_unresolved_entry_stays_unresolved_until_a_library_list_resolves_it(self):
        env = dict(WEBHOOK_DELAY="0", SECTION_REFRESH="2s")
        self.start_daemon(**env)
        folder = self.post_show("Limbo Show", statuses=("unresolved",))
        # and one that no library will hold: the first list skips it, with a history row
        stray = os.path.join(self.tmp, "elsewhere", "Stray Show")
        touch(os.path.join(stray, "Season 01", "x.mkv"))
        self.assertWebhookAccepted(
            self.daemon.webhook("sonarr", rig.sonarr_download(stray, "Season 01/x.mkv")),
            ("unresolved",))
        stray = os.path.join(stray, "Season 01")
        self.daemon.kill()

        self.start_daemon(**env)
        e = self.entries().get(folder)
        self.assertIsNotNone(e, "the unresolved entry was lost: %r" % self.queue())
        self.assertEqual(e["state"], "unresolved", e)
        self.assertIsNone(e["section"], e)
        self.assertEqual(self.entries()[stray]["state"], "unresolved")
        self.assertTrue(stays(lambda: self.entries()[folder]["state"] == "unresolved", 1.0))

        self.plex.start()  # on the port the daemon was told: the next list resolves it
        self.assertTrue(self.wait_scans(folder, timeout=40), "not scanned once Plex came up")
        self.assertEqual(self.plex.scans(path=folder)[0].section, "1")
        self.wait_queue_empty()
        self.assertOneScanEach([folder])
        rows = self.history(search="Stray Show")
        self.assertEqual([(h["status"], h["plex_path"]) for h in rows], [("skipped", stray)],
                         rows)


class ReloadWithStaleListTest(DurabilityCase):
    use_rclone = False

    def test_a_reload_never_drops_an_entry_on_a_stale_library_list(self):
        """A reload re-maps pending folders. When the new mapping matches no library but the
        list in hand is stale (Plex is down), the entry stays; the next fresh list decides."""
        self.start_daemon(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h", SECTION_REFRESH="2s")
        self.wait_libraries()
        folder = self.post_show("Stale Show")
        self.plex.set_down()
        down = time.monotonic()
        # no list can arrive any more: past SECTION_REFRESH the one in hand is stale
        self.assertTrue(wait_until(lambda: time.monotonic() > down + 2.5, 10))

        # the new mapping sends the folder outside every library
        moved_tv = os.path.join(self.tmp, "elsewhere", "tv")
        d = self.daemon
        d.env["PATH_REPLACEMENTS"] = json.dumps({self.tv: moved_tv})
        with open(d.env_path, "w", encoding="utf-8") as f:
            for k, v in d.env.items():
                f.write("%s=%s\n" % (k, rig._dotenv_quote(v)))
        d.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: re.search(r"configuration reloaded", d.own_log()), 10),
                        "no reload")
        self.assertIn(folder, self.entries(), "dropped on a stale library list")
        self.assertEqual(self.history(status="skipped"), [])

        self.plex.set_up()  # a fresh list: now the folder is skipped, and that is recorded
        self.assertTrue(wait_until(lambda: self.depth() == 0, 30), self.queue())
        rows = self.history(status="skipped")
        moved = os.path.join(moved_tv, "Stale Show", "Season 01")
        self.assertEqual([(h["plex_path"], h["arr_path"]) for h in rows], [(moved, folder)], rows)
        self.assertEqual(self.plex.refreshes(), [])


class CooldownAcrossRestartTest(DurabilityCase):
    def test_cooldown_is_rebuilt_from_history_at_start(self):
        env = dict(WEBHOOK_DELAY="0", SYNC_COOLDOWN="1h")
        self.start_daemon(**env)
        show = "Cool Show"
        self.wait_libraries()
        folder = self.post_show(show)
        self.assertTrue(self.wait_scans(folder), "first scan missing")
        self.assertTrue(wait_until(lambda: self.history(search=folder, status="ok"), 20))
        ok = self.history(search=folder, status="ok")[0]
        self.daemon.kill()

        self.start_daemon(**env)
        self.wait_libraries()  # before the list is read, a new folder waits as "unresolved"
        self.post_show(show)
        other = self.post_show("Other Show")  # cooldown is per folder: this one runs now
        e = self.entries()[folder]
        self.assertEqual(e["state"], "waiting", e)
        self.assertGreaterEqual(e["due"], ok["started"] + ok["duration_ms"] + 3600 * 1000 - 1,
                                "due %r vs last scan %r" % (e, ok))
        self.assertTrue(self.wait_scans(other), "the other folder was not scanned")
        self.assertTrue(stays(lambda: len(self.plex.refreshes(path=folder)) == 1, 1.5),
                        "scanned again within SYNC_COOLDOWN after a restart")


class HistoryTest(DurabilityCase):
    def test_skipped_folder_is_a_history_row_that_survives_a_restart(self):
        self.start_daemon(WEBHOOK_DELAY="0")
        self.wait_libraries()  # "skipped" needs a fresh library list
        elsewhere = os.path.join(self.tmp, "elsewhere", "Stray Show")
        touch(os.path.join(elsewhere, "Season 01", "x.mkv"))
        r = self.daemon.webhook("sonarr", rig.sonarr_download(elsewhere, "Season 01/x.mkv"))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "skipped", r)
        stray = os.path.join(elsewhere, "Season 01")

        def skipped_rows():
            return self.history(search="Stray Show", status="skipped")
        self.assertTrue(wait_until(skipped_rows, 10), "no skipped row: %r" % self.history())
        rows = skipped_rows()
        self.assertEqual(len(rows), 1, rows)
        h = rows[0]
        self.assertEqual(h["plex_path"], stray, h)
        self.assertEqual(h["arr_path"], stray, h)
        self.assertEqual(self.sources(h), ["sonarr"], h)
        self.assertIn(h["section"], (None, -1), h)
        self.assertEqual((h["rclone"], h["plex"]), ("skipped", "skipped"), h)
        self.assertIn("no library of any media server holds", h.get("error") or "", h)
        self.assertIn("PATH_REPLACEMENTS", h.get("error") or "", h)
        self.assertEqual(self.depth(), 0)

        self.restart(kill=False)
        self.assertEqual([x["id"] for x in skipped_rows()], [h["id"]])
        self.assertEqual(self.plex.refreshes(), [])

    def test_old_history_is_pruned_in_batches_at_start(self):
        self.start_daemon(HISTORY_DAYS="1")
        self.assertEqual(self.daemon.stop(), 0)
        now_ms = int(time.time() * 1000)
        old = now_ms - 3 * 86400 * 1000
        with sqlite3.connect(self.db_path) as db:
            db.executemany(
                "INSERT INTO history (path, started, status, rclone, deliveries)"
                " VALUES (?, ?, 'ok', 'ok', '[]')",
                [("/old/%d" % i, old + i) for i in range(2500)]
                + [("/recent/%d" % i, now_ms - 3600 * 1000) for i in range(5)])
        db.close()
        self.start_daemon(HISTORY_DAYS="1")

        def remaining():
            with sqlite3.connect("file:%s?mode=ro" % self.db_path, uri=True) as c:
                n = c.execute("SELECT count(*) FROM history").fetchone()[0]
            c.close()
            return n
        self.assertTrue(wait_until(lambda: remaining() == 5, 30),
                        "history rows left: %d" % remaining())
        self.assertEqual({h["path"] for h in self.history()},
                         {"/recent/%d" % i for i in range(5)})


class WalSyncTest(DurabilityCase):
    """What DURABILITY means at the system-call level, watched with strace on the running daemon:
    with `full` a webhook's 202 is written only after an fdatasync of the database's WAL has
    returned, one that began after the commit wrote its frames (so the answer survives a power
    loss); with `process` the answer does not wait for any sync."""
    use_rclone = False

    def trace_webhook(self, durability):
        if not shutil.which("strace"):
            self.fail("strace is not installed (packaging/bootstrap.sh packages test lists it)")
        self.start_daemon(DURABILITY=durability, WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.wait_libraries()
        self.post_show("Warm Show")  # the WAL exists and libuv's thread pool has started
        pid = self.daemon.proc.pid
        out = os.path.join(self.tmp, "strace-%s.txt" % durability)
        cmd = ["strace", "-f", "-qq", "-s", "64", "-e",
               "trace=fdatasync,fsync,pwrite64,write,writev,sendmsg", "-o", out]
        for tid in os.listdir("/proc/%d/task" % pid):  # every thread, pool threads included
            cmd += ["-p", tid]
        err_path = out + ".err"
        with open(err_path, "wb") as err_f:
            tracer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err_f)
        self.addCleanup(lambda: tracer.poll() is None and tracer.kill())

        def traced():
            with open("/proc/%d/status" % pid) as f:
                return re.search(r"^TracerPid:\s+[1-9]", f.read(), re.M) is not None
        if not wait_until(lambda: tracer.poll() is not None or traced(), 10) or not traced():
            with open(err_path, encoding="utf-8", errors="replace") as f:
                err = f.read().strip()
            self.skipTest("cannot trace the daemon here (ptrace not permitted?): %s" % err)
        self.post_show("Traced Show")
        tracer.terminate()
        tracer.wait(10)
        with open(out, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        answer = [i for i, ln in enumerate(lines) if "HTTP/1.1 202" in ln]
        self.assertTrue(answer, "no 202 in the trace:\n%s" % "\n".join(lines[-40:]))
        frames = [i for i, ln in enumerate(lines[:answer[0]]) if "pwrite64(" in ln]
        self.assertTrue(frames, "the commit wrote no WAL frames before the 202")
        synced = [i for i, ln in enumerate(lines[frames[-1]:answer[0]], frames[-1])
                  if re.search(r"(fdatasync\(\d+\)|<\.\.\. fdatasync resumed>\)) += 0", ln)]
        return lines, synced

    def test_full_answers_after_the_wal_is_synced(self):
        lines, synced = self.trace_webhook("full")
        self.assertTrue(synced, "202 written before any fdatasync of the WAL returned:\n%s"
                        % "\n".join(lines[-40:]))

    def test_process_answers_without_waiting_for_a_sync(self):
        lines, synced = self.trace_webhook("process")
        self.assertEqual(synced, [], "\n".join(lines[-40:]))


class CommitFailureTest(DurabilityCase):
    use_rclone = False
    daemon_popen_kwargs = {"restore_signals": False}  # SIGXFSZ stays ignored, as in Python

    def set_fsize(self, limit):
        pid = self.daemon.proc.pid
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))

    def stable(self, entries):
        drop = ("due_in_ms",)
        return {k: {f: v for f, v in e.items() if f not in drop} for k, e in entries.items()}

    def test_a_failed_commit_answers_503_keeps_the_scan_and_writes_it_later(self):
        """A full disk: nothing of the request is on disk, so it is not acknowledged (503); its
        scan stays queued in memory (the *arr apps do not resend a webhook) and is written with
        the first commit that succeeds."""
        env = dict(WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")
        self.start_daemon(**env)
        self.wait_libraries()
        kept = self.post_show("Kept Show")
        self.assertTrue(wait_until(lambda: kept in self.entries(), 10))
        before = self.entries()
        self.addCleanup(lambda: self.daemon.running() and self.set_fsize(resource.RLIM_INFINITY))

        self.set_fsize(1)  # every write past the first byte of a file fails: a full disk
        lost = None
        for show in ("Lost Show", "Kept Show"):  # a new folder, and one merging into an entry
            f = self.show_file(show)
            touch(f)
            r = self.daemon.webhook("sonarr", self.sonarr_for(f))
            self.assertEqual(r.status, 503, r)
            body = r.json()
            self.assertEqual(body["status"], "unavailable", r)
            self.assertRegex(body["message"], r"could not be recorded.*in memory only", r)
            if show == "Lost Show":
                lost = self.show_folder(show)
        metrics = self.daemon.get("/metrics").text
        self.assertRegex(metrics, r'pss_commits_total\{outcome="failed"\} [1-9]')
        # /health says so (and strict monitors get 503) while commits fail
        h = self.daemon.get("/health")
        self.assertEqual(h.json()["status"], "degraded", h)
        self.assertTrue([d for d in h.json()["degraded"] if d.startswith("state database")], h)
        self.assertEqual(self.daemon.get("/health?strict=1").status, 503)
        now = self.entries()
        self.assertEqual(set(now), {kept, lost}, "the scans are queued in memory")
        self.assertEqual(now[kept]["events"], before[kept]["events"] + 1)

        # killed before the disk has room: what was never committed is gone, the rest stays
        self.restart(**env)
        self.wait_libraries()
        self.assertEqual(set(self.entries()), {kept})
        self.assertEqual(self.entries()[kept]["events"], before[kept]["events"])

        self.set_fsize(1)
        r = self.daemon.webhook("sonarr", self.sonarr_for(self.show_file("Lost Show")))
        self.assertEqual(r.status, 503, r)
        self.set_fsize(resource.RLIM_INFINITY)  # space again: the next turn writes both
        later = self.post_show("Later Show")
        self.assertEqual(set(self.entries()), {kept, lost, later})
        h = self.daemon.get("/health").json()
        self.assertFalse([d for d in h["degraded"] if d.startswith("state database")], h)

        self.restart(**env)
        got = self.entries()
        self.assertEqual(set(got), {kept, lost, later}, "after SIGKILL and restart")
        self.assertEqual(self.plex.refreshes(), [])

    def failed_commits(self):
        m = re.search(r'pss_commits_total\{outcome="failed"\} (\d+)',
                      self.daemon.get("/metrics").text)
        return int(m.group(1))

    def test_state_that_cannot_be_written_is_retried_without_spinning(self):
        """A scan ends while the disk is full: its outcome stays in memory and is written once
        there is room again, without a busy loop of failing commits meanwhile."""
        show = "Slow Show"
        folder = self.show_folder(show)
        entered, release = threading.Event(), threading.Event()
        self.addCleanup(release.set)

        def hook(rec):
            if rec.route == "refresh" and rec.scan_path == folder.encode():
                entered.set()
                release.wait(60)
            return None
        self.plex.hook = hook
        self.start_daemon(WEBHOOK_DELAY="0", PLEX_TIMEOUT="1m")
        self.wait_libraries()
        self.post_show(show)
        self.assertTrue(entered.wait(30), "the scan never reached Plex")
        self.addCleanup(lambda: self.daemon.running() and self.set_fsize(resource.RLIM_INFINITY))
        self.set_fsize(1)
        release.set()  # Plex answers: the entry is done, but that cannot be written
        self.assertTrue(wait_until(lambda: self.failed_commits() >= 1, 10),
                        "the commit did not fail: the test proves nothing")
        first = self.failed_commits()
        # a quiet period with no requests (each request is a loop turn, and a turn retries):
        # a loop retrying by itself would fail thousands of commits meanwhile
        time.sleep(1.5)
        self.assertLessEqual(self.failed_commits(), first + 5, "failing commits in a loop")
        self.assertEqual(self.depth(), 0)

        self.set_fsize(resource.RLIM_INFINITY)
        # the next turn writes it (a webhook for another folder wakes the loop)
        other = self.post_show("Other Show")
        self.assertTrue(wait_until(lambda: self.history(search=folder, status="ok"), 10),
                        "the scan's outcome was never written")
        self.assertTrue(wait_until(lambda: self.history(search=other, status="ok"), 20),
                        "the other folder was not scanned")
        self.daemon.kill()
        self.plex.hook = None
        self.plex.clear()
        self.start_daemon(WEBHOOK_DELAY="0")
        self.assertEqual(self.depth(), 0)
        self.assertTrue(stays(lambda: not self.plex.refreshes(), 1.0),
                        "a finished scan ran again: %r" % self.plex.refreshes())


class StateFilesReplacedTest(DurabilityCase):
    """The database's -wal (or the database) removed or replaced under the running daemon with
    DURABILITY=process: SQLite would go on writing into a file no one will ever read again, so a
    crash would lose what was acknowledged since. The daemon notices at its next commit, answers
    that turn 503, moves what is left aside, writes everything it holds in memory into a fresh
    database, and acknowledges again; after SIGKILL every acknowledged folder is still there."""
    use_rclone = False
    env = dict(DURABILITY="process", WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="1h")

    def send(self, show):
        """One webhook for a new folder: (folder, acknowledged?). 503 is allowed, nothing else."""
        f = self.show_file(show)
        touch(f)
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertIn(r.status, (202, 503), r)
        return os.path.dirname(f), r.status == 202

    def state_files(self):
        return sorted(os.listdir(self.state_dir))

    def assert_all_kept_after_kill_9(self, acked):
        self.restart(**self.env)
        self.wait_libraries()
        pending = set(self.entries())
        done = {h["plex_path"] for h in self.history()}
        missing = sorted(set(acked) - pending - done)
        self.assertEqual(missing, [], "acknowledged, then lost at the crash (of %d)" % len(acked))

    def swap_and_recover(self, swap, changed="-wal"):
        self.start_daemon(**self.env)
        self.wait_libraries()
        acked = [self.send("Before %02d" % i) for i in range(5)]
        self.assertTrue(all(ok for _, ok in acked), acked)
        acked = [f for f, _ in acked]
        wal = self.db_path + "-wal"
        self.assertTrue(os.path.exists(wal), self.state_files())
        swap(wal)
        answers = [self.send("After %02d" % i) for i in range(10)]
        refused = [f for f, ok in answers if not ok]
        acked += [f for f, ok in answers if ok]
        self.assertLessEqual(len(refused), 1, "acknowledging did not resume: %r" % answers)
        self.assertTrue(answers[-1][1], answers)
        log = self.daemon.own_log()
        self.assertIn("STATE FILES REPLACED", log)
        self.assertIn("%s was " % (self.db_path + changed), log)
        self.assertEqual(log.count("STATE FILES REPLACED"), 1, log)
        moved = [n for n in self.state_files() if n.startswith(DB_NAME + ".replaced-")]
        self.assertTrue(moved, self.state_files())
        h = self.daemon.get("/health?strict=1")
        self.assertEqual(h.status, 200, h)
        # the refused folders are queued all the same (in memory, and now in the fresh file)
        self.assertTrue(set(refused) <= set(self.entries()))
        self.assert_all_kept_after_kill_9(acked + refused)

    def test_removed_wal_is_noticed_and_everything_acknowledged_survives_kill_9(self):
        self.swap_and_recover(os.unlink)

    def test_wal_replaced_by_a_copy_is_noticed_and_everything_survives_kill_9(self):
        def copy_over(wal):
            shutil.copyfile(wal, wal + ".tmp")
            os.replace(wal + ".tmp", wal)
        self.swap_and_recover(copy_over)

    def test_wal_replaced_by_another_file_is_noticed_and_everything_survives_kill_9(self):
        def other_over(wal):
            with open(wal + ".tmp", "wb") as f:
                f.write(os.urandom(8192))
            os.replace(wal + ".tmp", wal)
        self.swap_and_recover(other_over)

    def test_removed_database_is_noticed_and_everything_survives_kill_9(self):
        self.swap_and_recover(lambda wal: os.unlink(self.db_path), changed="")

    def test_while_no_fresh_database_can_be_made_webhooks_get_503_and_health_degraded(self):
        """The state directory itself moved away: no fresh database can be made at the path.
        Every turn retries and answers 503, one log line for the whole streak, /health
        degraded; once the directory is back, the next turn renews and acknowledging resumes."""
        self.start_daemon(**self.env)
        self.wait_libraries()
        acked = [self.post_show("Before %02d" % i) for i in range(3)]
        away = self.state_dir + ".away"
        os.rename(self.state_dir, away)
        refused = []
        for i in range(4):
            folder, ok = self.send("Stuck %02d" % i)
            self.assertFalse(ok, "acknowledged while nothing can be written")
            refused.append(folder)
        h = self.daemon.get("/health")
        self.assertEqual(h.json()["status"], "degraded", h)
        self.assertTrue([d for d in h.json()["degraded"] if d.startswith("state database")], h)
        self.assertEqual(self.daemon.get("/health?strict=1").status, 503)
        self.assertTrue(wait_until(
            lambda: "could not write the state database" in self.daemon.own_log(), 10))
        log = self.daemon.own_log()
        self.assertEqual(log.count("could not write the state database"), 1, log)
        self.assertRegex(log, r"\.db was removed under the running daemon.*no fresh database yet")
        self.assertNotIn("STATE FILES REPLACED", log)
        self.assertEqual(set(self.entries()), set(acked) | set(refused))

        os.mkdir(self.state_dir, 0o750)
        answers = [self.send("Later %02d" % i) for i in range(3)]
        self.assertLessEqual(len([a for a in answers if not a[1]]), 1, answers)
        self.assertTrue(answers[-1][1], answers)
        acked += [f for f, ok in answers if ok]
        self.assertTrue(wait_until(lambda: "STATE FILES REPLACED" in self.daemon.own_log(), 10))
        self.assertIn("the state database can be written again", self.daemon.own_log())
        self.assertEqual(self.daemon.get("/health?strict=1").status, 200)
        self.assert_all_kept_after_kill_9(acked + refused)

class BadStateTest(DurabilityCase):
    use_rclone = False

    def test_corrupt_database_is_moved_aside_and_the_daemon_starts_empty(self):
        os.makedirs(self.state_dir)
        junk = {"": os.urandom(16384), "-wal": os.urandom(4096), "-shm": os.urandom(32768)}
        for suffix, data in junk.items():
            with open(self.db_path + suffix, "wb") as f:
                f.write(data)
        self.start_daemon(WEBHOOK_DELAY="0")
        log = self.daemon.own_log()
        m = re.search(r"DATABASE CORRUPT.*moved it to (\S+\.corrupt-\d+(?:\.\d+)?)", log)
        self.assertIsNotNone(m, "no loud log line about the corrupt database:\n" + log)
        moved = m.group(1)
        self.assertEqual(os.path.dirname(moved), self.state_dir)
        for suffix in ("", "-wal"):
            with open(moved + suffix, "rb") as f:
                self.assertEqual(f.read(), junk[suffix], "moved%s differs" % suffix)
        # the -shm is SQLite's index of the -wal, rebuilt by whoever opens it: moved along, but
        # its bytes need not be the original ones
        self.assertTrue(os.path.isfile(moved + "-shm"), "the -shm was not moved along")
        if os.path.exists(self.db_path + "-shm"):  # the fresh database's own
            with open(self.db_path + "-shm", "rb") as f:
                self.assertNotEqual(f.read(), junk["-shm"])
        self.assertEqual(self.depth(), 0)
        # the fresh database works
        folder = self.post_show("After Corruption")
        self.assertTrue(self.wait_scans(folder), "no scan with the fresh database")

    def test_database_from_a_newer_version_is_refused_and_left_untouched(self):
        os.makedirs(self.state_dir)
        with sqlite3.connect(self.db_path) as db:
            db.execute("CREATE TABLE future (x)")
            db.execute("INSERT INTO future VALUES ('acknowledged work')")
            db.execute("PRAGMA user_version = 99")
        db.close()
        with open(self.db_path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        listing = sorted(os.listdir(self.state_dir))
        mtime = os.stat(self.db_path).st_mtime_ns

        d = self.start_refused()
        self.assertNotEqual(d.exit_code, 0)
        log = d.own_log()
        self.assertRegex(log, r"newer version")
        self.assertIn(self.db_path, log)
        with open(self.db_path, "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, "the file changed")
        self.assertEqual(os.stat(self.db_path).st_mtime_ns, mtime)
        self.assertEqual(sorted(os.listdir(self.state_dir)), listing)

    def test_state_dir_that_cannot_be_created_refuses_the_start_naming_it(self):
        blocker = os.path.join(self.tmp, "a-file")
        touch(blocker)
        for state in (os.path.join(blocker, "state"), blocker):
            d = self.start_refused(STATE_DIR=state)
            self.assertNotEqual(d.exit_code, 0)
            log = d.own_log()
            self.assertIn("STATE_DIR", log)
            self.assertIn(state, log)
            self.assertRegex(log, r"(?i)not a directory")

    def test_missing_parents_of_state_dir_are_created(self):
        state = os.path.join(self.tmp, "deep", "er", "state")
        workdir = os.path.join(self.tmp, "run")
        os.makedirs(workdir)
        # not start_daemon(): that creates STATE_DIR beforehand
        self.daemon = Daemon(workdir, self.daemon_env(STATE_DIR=state))
        self.addCleanup(self._stop_daemon)
        self.daemon.start()
        self.assertTrue(os.path.isfile(os.path.join(state, DB_NAME)))


if __name__ == "__main__":
    unittest.main()
