"""Upgrading from the previous release, 0.2.0 (schema 2), to this tree (schema 3: titles, event
kinds, senders, the sources table, the history's 'warning' and 'cancelled').

0.2.0 is built from this clone's git history by rig.previous_binary() (once, cached; skipped
only when the commit is not in the clone). With two targets (the Plex double and a Jellyfin
double) it leaves a state with a folder scanned (an `ok` history row), one parked by Plex's 401,
one retrying on Jellyfin, one waiting and one unresolved (in a library only Plex holds, Plex
down); this tree then starts on the same STATE_DIR and must deliver each pending folder once to
each target still owing it (the parked one resumes when Plex's list, read at start, accepts the
token; the waiting one is sent with POST /api/queue/{id}/now), list the old rows as the
README's API section says (no title, `event` and `app` read from what their events did), answer
/api/sources, give a new webhook its title, and keep all of it across a second restart.
Outcomes are awaited by polling; the only fixed waits are quiet periods proving that nothing
is sent twice."""

import os
import sqlite3
import unittest

import rig
from rig import (MANUAL_PASS, MANUAL_USER, Daemon, RigTestCase, stays, touch, wait_until)

AUTH = (MANUAL_USER, MANUAL_PASS)
DB_NAME = "plex-servarr-sync.db"

# 0.2.0 (targets; state database schema 2)
RELEASE_0_2_0 = "0bfe14d9bb0fa0a77b2493aab710fe26cd37b8ba"

# (event, app) the README gives a row written before titles: read from its events' kinds and
# its sources (one *arr app sent all of it, else null)
DERIVED = {"done": ("import", "sonarr"), "parked": ("import", "sonarr"),
           "retry": ("manual", None), "waiting": ("import", "radarr"),
           "unresolved": ("import", "sonarr")}
PENDING = ("parked", "retry", "waiting", "unresolved")


def user_version(state_dir):
    db = sqlite3.connect(os.path.join(state_dir, DB_NAME))
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class UpgradeFrom020Test(RigTestCase):
    def sections(self):
        # a third library only Plex holds: a folder there stays unresolved while Plex is down
        self.anime = os.path.join(self.tmp, "media", "anime")
        return super().sections() + [{"key": "3", "type": "show", "title": "Anime",
                                      "locations": [self.anime]}]

    def setUp(self):
        super().setUp()
        self.jf = self.add_mb("jellyfin")
        self.state_dir = os.path.join(self.tmp, "state")
        self.old_daemon = None
        self.folders = {}
        for key, root, name in (("done", self.tv, "Done Show"), ("parked", self.tv, "Parked Show"),
                                ("retry", self.movies, "Retry Film (1999)"),
                                ("waiting", self.movies, "Waiting Film (2001)"),
                                ("unresolved", self.anime, "Unresolved Show"),
                                ("new", self.tv, "New Show")):
            f = (os.path.join(root, name, "Season 01", "%s - S01E01 - Pilot.mkv" % name)
                 if root != self.movies else os.path.join(root, name, "film.mkv"))
            touch(f)
            self.folders[key] = (f, os.path.dirname(f))

    def _dump_logs_on_failure(self):
        if self._failed() and self.old_daemon is not None:
            print("--- 0.2.0's log (last run), last 120 lines:\n%s" % self.old_daemon.log_tail(120))
        super()._dump_logs_on_failure()

    def servers(self, **overrides):
        """The two targets (and overrides) as start_daemon()'s or daemon_env()'s overrides."""
        env = self.media_servers_env([("plex", self.plex), ("jf", self.jf)])
        env.update(overrides)
        return env

    def api(self, target, daemon=None):
        r = (daemon or self.daemon).get(target, auth=AUTH)
        self.assertEqual(r.status, 200, "%s: %r" % (target, r))
        return r.json()

    def post(self, target):
        return self.daemon.request("POST", target, headers={
            "Authorization": rig.basic_auth(*AUTH), "Sec-Fetch-Site": "same-origin"})

    def path_of(self, key):
        return self.folders[key][1]

    def key_of(self, path):
        return next((k for k, (_, p) in self.folders.items() if p == path), path)

    def queue(self, daemon=None):
        return {self.key_of(e["path"]): e
                for e in self.api("/api/queue?limit=1000", daemon)["entries"]}

    def history(self, daemon=None):
        return self.api("/api/history?limit=500", daemon)["items"]

    def plex_scans(self, key):
        return len(self.plex.scans(path=self.path_of(key)))

    def jf_scans(self, key):
        return len([u for u in self.jf.updates() if u[0] == self.path_of(key)])

    # ---- 0.2.0 ----
    def run_old(self, workdir, **overrides):
        os.makedirs(self.state_dir, exist_ok=True)
        d = Daemon(os.path.join(self.tmp, workdir), self.daemon_env(**self.servers(**overrides)),
                   binary=rig.previous_binary(RELEASE_0_2_0))
        self.addCleanup(lambda: d.stop(check=False) if d.running() else None)
        self.old_daemon = d
        return d.start()

    def old_states(self, d):
        return {k: e["state"] for k, e in self.queue(d).items()}

    def make_old_state(self):
        f = self.folders
        # 1: both servers answer. One folder scanned by both; one refused by Plex with 401
        # (parked there, done on Jellyfin)
        self.plex.hook = lambda rec: (401 if rec.route == "refresh"
                                      and rec.scan_path == self.path_of("parked").encode() else None)
        d = self.run_old("old-1", WEBHOOK_DELAY="0")
        self.assertEqual(d.webhook("sonarr", self.sonarr_for(f["done"][0])).status, 202)
        self.assertTrue(wait_until(lambda: self.plex_scans("done") == 1
                                   and self.jf_scans("done") == 1, 30), "0.2.0 scanned nothing")
        self.assertEqual(d.webhook("sonarr", self.sonarr_for(f["parked"][0])).status, 202)
        self.assertTrue(wait_until(lambda: self.old_states(d).get("parked") == "parked"
                                   and self.jf_scans("parked") == 1, 30), self.old_states(d))
        self.assertEqual(d.stop(), 0)

        # 2: Plex down (a list that answers would resume the parked folder: see
        # deliver_after_upgrade), so a folder only Plex holds stays unresolved; Jellyfin answers
        # 503 for a manual scan's folder (retrying) and a Radarr import waits out a long
        # WEBHOOK_DELAY
        self.plex.hook = None
        self.plex.set_down()
        self.jf.hook = lambda rec: (503 if rec.route == "media_updated" and rec.updates
                                    and rec.updates[0][0] == self.path_of("retry") else None)
        d = self.run_old("old-2", WEBHOOK_DELAY="1h", WEBHOOK_MAX_DELAY="2h")
        r = d.manual_post(self.path_of("retry"), MANUAL_USER, MANUAL_PASS)
        self.assertIn(r.status, (200, 202, 303), r)
        film, folder = f["waiting"]
        self.assertEqual(d.webhook("radarr", rig.radarr_download(
            folder, os.path.basename(film))).status, 202)
        show = os.path.join(self.anime, "Unresolved Show")
        self.assertEqual(d.webhook("sonarr", rig.sonarr_download(
            show, os.path.relpath(f["unresolved"][0], show), title="Unresolved Show")).status, 202)
        self.assertTrue(wait_until(lambda: self.old_states(d) == {k: k for k in PENDING}, 30),
                        self.old_states(d))
        self.assertEqual(d.stop(), 0)
        self.old_daemon = None

    def check_old_database(self):
        self.assertEqual(user_version(self.state_dir), 2, "precondition: 0.2.0's schema")
        db = sqlite3.connect(os.path.join(self.state_dir, DB_NAME))
        try:
            history = db.execute("SELECT path, status FROM history").fetchall()
            entries = [p for (p,) in db.execute("SELECT path FROM entries")]
        finally:
            db.close()
        self.assertEqual(sorted(map(self.key_of, entries)), sorted(PENDING))
        self.assertEqual(sorted((self.key_of(p), s) for p, s in history),
                         [("done", "ok"), ("parked", "parked"), ("retry", "retrying")], history)

    # ---- this tree ----
    def check_old_rows(self, rows, keys, what):
        """Rows written by 0.2.0 (queue entries or history rows): no title, event and app
        derived."""
        for k in keys:
            row = rows[k]
            self.assertIsNone(row["title"], (what, k, row))
            self.assertEqual((row["event"], row["app"]), DERIVED[k], (what, k, row))

    def deliver_after_upgrade(self):
        q = self.queue()
        self.assertLessEqual(set(q), set(PENDING), q)
        # the waiting folder keeps its due time (README: "At start the daemon reloads every
        # pending folder as it was"); the others may already be on their way: Plex's list,
        # read at start, accepts its token, which resumes the parked folder
        self.assertEqual(q["waiting"]["state"], "waiting", q)
        self.check_old_rows(q, q, "queue")
        old_rows = {self.key_of(h["path"]): h for h in self.history()}
        self.check_old_rows(old_rows, ("done",), "history")
        self.assertEqual(old_rows["done"]["status"], "ok")

        # the migration leaves the senders' table empty: nothing was sent to this version yet
        sources = self.api("/api/sources")["sources"]
        self.assertEqual([s["app"] for s in sources],
                         ["sonarr", "radarr", "lidarr", "readarr", "manual"])
        for s in sources:
            self.assertEqual((s["events"], s["last_event"], s["last_test_at"]), (0, None, None), s)

        r = self.post("/api/queue/%d/now" % q["waiting"]["id"])
        self.assertEqual(r.status, 200, r)
        self.assertTrue(wait_until(lambda: not self.queue(), 60), self.queue())

        # each pending folder once to each server that still owed it: with what 0.2.0 sent,
        # every folder was scanned exactly once by each
        # (Jellyfin does not hold the unresolved folder)
        def counts():
            return {k: (self.plex_scans(k), self.jf_scans(k)) for k in ("done",) + PENDING}
        want = {k: (1, 0 if k == "unresolved" else 1) for k in ("done",) + PENDING}
        self.assertTrue(stays(lambda: counts() == want, 2.0), counts())
        self.assertEqual(user_version(self.state_dir), 3)

    def check_history_after_upgrade(self):
        items = self.history()
        rows = {}
        for h in items:
            rows.setdefault(self.key_of(h["path"]), []).append(h)
        self.assertEqual(sorted(rows), sorted(("done",) + PENDING), items)
        for k, hs in rows.items():
            self.assertEqual([h["status"] for h in hs], ["ok"], (k, hs))
        self.check_old_rows({k: hs[0] for k, hs in rows.items()}, rows, "history")
        done = rows["done"][0]
        self.assertEqual(sorted((d["target"], d["result"]) for d in done["deliveries"]),
                         [("jf", "ok"), ("plex", "ok")], done)

    def new_webhook_gets_a_title(self):
        film, folder = self.folders["new"]
        r = self.daemon.webhook("sonarr", self.sonarr_for(film))
        self.assertEqual(r.status, 202, r)
        self.assertTrue(wait_until(lambda: self.plex_scans("new") == 1
                                   and self.jf_scans("new") == 1 and not self.queue(), 30),
                        self.queue())
        row = next(h for h in self.history() if h["path"] == folder)
        self.assertEqual((row["status"], row["event"], row["app"]), ("ok", "import", "sonarr"), row)
        self.assertTrue(row["title"] and row["title"].startswith("New Show S01E01"), row)
        sonarr = self.api("/api/sources")["sources"][0]
        self.assertEqual((sonarr["app"], sonarr["events"], sonarr["last_event"]["title"]),
                         ("sonarr", 1, row["title"]), sonarr)

    def test_a_020_state_is_migrated_delivered_once_and_kept(self):
        self.make_old_state()
        self.check_old_database()

        self.jf.hook = None
        self.plex.set_up()
        self.start_daemon(**self.servers(WEBHOOK_DELAY="1"))
        self.deliver_after_upgrade()
        self.check_history_after_upgrade()
        self.new_webhook_gets_a_title()

        # a second start of this version: schema 3 already, nothing migrated or sent again
        before = (self.history(), self.api("/api/sources"))
        env = self.daemon.env
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon = Daemon(self.daemon.workdir, env)
        self.daemon.start()
        self.assertEqual(user_version(self.state_dir), 3)
        self.assertEqual((self.history(), self.api("/api/sources")), before)
        self.assertEqual(self.queue(), {})
        counts = {k: (self.plex_scans(k), self.jf_scans(k)) for k in self.folders}
        self.assertTrue(stays(lambda: {k: (self.plex_scans(k), self.jf_scans(k))
                                       for k in self.folders} == counts, 2.0), counts)


if __name__ == "__main__":
    unittest.main()
