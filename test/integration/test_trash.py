"""Plex's "empty trash", made safe (PLEX_EMPTY_TRASH, or "empty_trash" on a Plex item of
MEDIA_SERVERS): off by default; after a round that delivered to a Plex section and whose events
include a delete, rename or upgrade, one PUT /library/sections/{id}/emptyTrash for that section,
only when every location of the section is guarded by an anchor that is present, Plex no longer
reports the section refreshing, no other folder of it is syncing, and the last call for it is at
least 5 minutes old. A refusal or a failure is logged and not retried.

Each test starts the real binary, real rclone (`rclone serve http --rc`) and the doubles it needs
(plexdouble.py, mbdouble.py) on free ports, in its own temp dir; arr, host and Plex paths are the
same (no replacements). The daemon polls Plex's `refreshing` and a busy section every 5 s (fixed),
so the tests that exercise those keep the number of polls small. Outcomes are awaited by polling
with generous timeouts; the only fixed waits are quiet periods proving that something does NOT
happen."""

import copy
import json
import os
import re
import subprocess
import threading
import time
import unittest

import rig
from rig import (FIXTURE_MEDIA_ROOT, PLEX_TOKEN, RigTestCase, load_fixture, media_server,
                 rewrite_paths, stays, touch, wait_until)

# The daemon looks at Plex's `refreshing` (and at a busy section) again every 5 s.
POLL_S = 5.0


def sonarr_file_event(fixture, series_path, relative_path, title):
    """A Sonarr payload of fixture (EpisodeFileDelete or an upgrading Download) moved to the
    episode file series_path/relative_path."""
    p = copy.deepcopy(load_fixture(fixture))
    p["series"]["path"] = series_path
    p["series"]["title"] = title
    p["episodeFile"]["relativePath"] = relative_path
    p["episodeFile"]["path"] = os.path.join(series_path, relative_path)
    for d in p.get("deletedFiles") or []:  # an upgrade replaced the file next to it
        d["relativePath"] = os.path.join(os.path.dirname(relative_path), "old " +
                                         os.path.basename(relative_path))
        d["path"] = os.path.join(series_path, d["relativePath"])
    return p


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class TrashCase(RigTestCase):
    """TV (section 1) = <media>/tv and Movies (section 2) = <media>/movies, both guarded by the
    anchor <media>/.anchor (present)."""

    def prepare_media(self):
        self.anchor = os.path.join(self.media, ".anchor")
        touch(self.anchor)

    def trash_env(self, **overrides):
        env = {"WEBHOOK_DELAY": "0", "PLEX_EMPTY_TRASH": "true",
               "ANCHOR_FILES": json.dumps([self.anchor])}
        env.update(overrides)
        return env

    def start_trash(self, **overrides):
        return self.start_daemon(**self.trash_env(**overrides))

    # ---- events ----
    def episode(self, show, n=1, season="Season 01"):
        """(series path, path relative to it) of episode n of show under <media>/tv."""
        return (os.path.join(self.tv, show),
                os.path.join(season, "%s - S01E%02d - Episode [WEBDL-1080p].mkv" % (show, n)))

    def delete(self, show, n=1):
        """Sonarr's EpisodeFileDelete of episode n of show: the file is gone, its season folder
        (with another episode) stays. Sends it; returns the season folder."""
        series, rel = self.episode(show, n)
        touch(os.path.join(series, os.path.dirname(rel), "kept.mkv"))
        self.send(sonarr_file_event("sonarr-episodefiledelete", series, rel, show))
        return os.path.dirname(os.path.join(series, rel))

    def upgrade(self, show, n=1):
        """Sonarr's Download with isUpgrade and deletedFiles for episode n of show."""
        series, rel = self.episode(show, n)
        touch(os.path.join(series, rel))
        self.send(sonarr_file_event("sonarr-download-upgrade", series, rel, show))
        return os.path.dirname(os.path.join(series, rel))

    def import_(self, show, n=1):
        """A plain Sonarr Download (no upgrade) of episode n of show."""
        series, rel = self.episode(show, n)
        touch(os.path.join(series, rel))
        p = rig.sonarr_download(series, rel, title=show)
        self.assertFalse(p.get("isUpgrade"))
        self.assertFalse(p.get("deletedFiles"))
        self.send(p)
        return os.path.dirname(os.path.join(series, rel))

    def rename(self):
        """Sonarr's Rename fixture (Doctor Who: Season 1 -> Season 01) under <media>; returns
        both folders (old, new)."""
        p = rewrite_paths(load_fixture("sonarr-rename"), FIXTURE_MEDIA_ROOT, self.media)
        for f in p["renamedEpisodeFiles"]:
            touch(f["path"])
            os.makedirs(os.path.dirname(f["previousPath"]), exist_ok=True)
        self.send(p)
        f = p["renamedEpisodeFiles"][0]
        return os.path.dirname(f["previousPath"]), os.path.dirname(f["path"])

    def radarr_delete(self, title):
        """Radarr's MovieFileDelete of a movie under <media>/movies; returns its folder."""
        p = rewrite_paths(load_fixture("radarr-moviefiledelete"), FIXTURE_MEDIA_ROOT, self.media)
        folder = os.path.join(self.movies, title)
        old = p["movie"]["folderPath"]
        p = rewrite_paths(p, old, folder)
        touch(os.path.join(folder, "kept.nfo"))
        self.send(p, app="radarr")
        return folder

    def send(self, payload, app="sonarr"):
        self.assertWebhookAccepted(self.daemon.webhook(app, payload), ("queued", "unresolved"))

    # ---- what Plex saw ----
    def trashes(self, section=None, double=None):
        return (double or self.plex).empty_trashes(section=section)

    def wait_trash(self, n=1, section="1", double=None, timeout=30.0):
        """Wait until the double saw n emptyTrash calls for section; returns them."""
        d = double or self.plex
        self.assertTrue(d.wait_for(lambda p: len(p.empty_trashes(section=section)) >= n, timeout),
                        "no emptyTrash call for section %s: %r" % (section, d.requests()))
        return d.empty_trashes(section=section)

    def wait_scan(self, folder, n=1, double=None, timeout=30.0):
        d = double or self.plex
        self.assertTrue(d.wait_for(lambda p: len(p.scans(path=folder)) >= n, timeout),
                        "%s was not scanned: %r" % (folder, d.requests()))
        return d.scans(path=folder)

    def no_trash_for(self, seconds, n=0, double=None):
        """The quiet period: the double sees no emptyTrash call beyond the n it has."""
        d = double or self.plex
        return stays(lambda: len(d.empty_trashes()) == n, seconds)

    def wait_log(self, pattern, timeout=30.0):
        self.assertTrue(wait_until(lambda: self.daemon.log_matches(pattern), timeout),
                        "no log line matching %r" % pattern)
        return re.search(pattern, self.daemon.log(), re.IGNORECASE).group(0)

    def assertOneCallAfter(self, call, *folders):
        """call is a good emptyTrash: PUT, answered 200, made after every scan of folders, and
        while Plex did not report the section refreshing."""
        self.assertEqual(call.method, "PUT")
        self.assertEqual(call.status, 200)
        self.assertIs(call.section_refreshing, False)
        for folder in folders:
            scans = self.plex.scans(path=folder)
            self.assertTrue(scans, "%s was never scanned" % folder)
            self.assertGreater(call.time, max(s.time for s in scans),
                               "emptyTrash came before the scan of %s" % folder)


class DefaultOffTest(TrashCase):
    def test_unset_never_empties_the_trash(self):
        # everything else is in place: anchors guard both sections
        self.start_daemon(WEBHOOK_DELAY="0", ANCHOR_FILES=json.dumps([self.anchor]))
        folder = self.delete("Off Show")
        self.wait_scan(folder)
        folder2 = self.upgrade("Off Show Two")
        self.wait_scan(folder2)
        self.assertTrue(self.no_trash_for(3.0), "emptyTrash without PLEX_EMPTY_TRASH: %r"
                        % self.trashes())
        self.assertEqual(self.trashes(), [])
        self.assertNotRegex(self.daemon.log(), r"(?i)emptied the trash|emptying the trash|"
                            r"trash of section")


class QualifyingRoundTest(TrashCase):
    def test_delete_empties_that_section_once_after_the_scan(self):
        self.start_trash()
        folder = self.delete("Deleted Show")
        call, = self.wait_trash(section="1")
        self.assertOneCallAfter(call, folder)
        self.wait_log(r"emptied the trash of section 1\b")
        self.assertTrue(self.no_trash_for(3.0, n=1), "more than one call: %r" % self.trashes())
        self.assertEqual(self.trashes(section="2"), [], "the other section was emptied")
        # the call carried the token, as every call to Plex does
        self.assertEqual(call.headers.get("x-plex-token"), PLEX_TOKEN)

    def test_rename_empties_once_after_both_folders(self):
        self.start_trash()
        old, new = self.rename()
        call, = self.wait_trash(section="1")
        self.assertOneCallAfter(call, old, new)
        self.assertTrue(self.no_trash_for(3.0, n=1), "more than one call: %r" % self.trashes())

    def test_upgrade_empties_once(self):
        self.start_trash()
        folder = self.upgrade("Upgraded Show")
        call, = self.wait_trash(section="1")
        self.assertOneCallAfter(call, folder)
        self.assertTrue(self.no_trash_for(3.0, n=1), "more than one call: %r" % self.trashes())

    def test_movie_delete_empties_the_movies_section(self):
        self.start_trash()
        folder = self.radarr_delete("Gone Movie (2001)")
        call, = self.wait_trash(section="2")
        self.assertOneCallAfter(call, folder)
        self.assertEqual(self.trashes(section="1"), [])

    def test_import_never_empties_then_a_delete_does(self):
        self.start_trash()
        folder = self.import_("Imported Show")
        self.wait_scan(folder)
        self.assertTrue(self.no_trash_for(3.0), "an import emptied the trash: %r" % self.trashes())
        # the same daemon does empty it after a delete (so the quiet period above meant something)
        folder2 = self.delete("Imported Show", n=2)
        self.assertEqual(folder2, folder)
        call, = self.wait_trash(section="1")
        self.assertGreater(call.time, self.plex.scans(path=folder)[-1].time)


class AnchorTest(TrashCase):
    def test_anchor_gone_before_the_call_refuses_and_says_why(self):
        self.start_trash()
        # the anchor disappears while Plex scans (after the scan's own anchor check, before
        # the trash's): the mount went away between the two
        gone = threading.Event()

        def hook(rec):
            if rec.route == "refresh" and not gone.is_set():
                os.unlink(self.anchor)
                gone.set()
        self.plex.hook = hook
        folder = self.delete("Anchor Show")
        self.wait_scan(folder)
        self.wait_log(r"not emptying the trash of section 1: .*anchor")
        self.assertIn(self.anchor, self.wait_log(r"not emptying the trash of section 1: [^\n]*"))
        self.assertTrue(self.no_trash_for(3.0), "emptied with its anchor missing: %r"
                        % self.trashes())
        # refused, not retried; once the anchor is back, the next qualifying round tries again
        self.plex.hook = None
        touch(self.anchor)
        self.delete("Anchor Show", n=2)
        call, = self.wait_trash(section="1", timeout=60)
        self.assertOneCallAfter(call, folder)


class UnguardedSectionTest(TrashCase):
    """Only <media>/tv is guarded (its anchor is <media>/tv/.anchor): Movies and Mixed (one
    location under the anchor, one not) are never emptied."""

    def sections(self):
        self.other = os.path.join(self.tmp, "other", "kids")
        return super().sections() + [
            {"key": "3", "type": "show", "title": "Mixed",
             "locations": [os.path.join(self.tv, "kids"), self.other]}]

    def prepare_media(self):
        self.anchor = os.path.join(self.tv, ".anchor")
        touch(self.anchor)
        os.makedirs(self.other)

    def check(self, **overrides):
        """`plex-servarr-sync --check` with the daemon's environment: (exit code, output)."""
        env = self.daemon_env(**self.trash_env(**overrides))
        env.pop("PORT", None)
        path = os.path.join(self.tmp, "check.env")
        with open(path, "w", encoding="utf-8") as f:
            for k, v in env.items():
                f.write("%s=%s\n" % (k, rig._dotenv_quote(v)))
        os.chmod(path, 0o600)
        penv = {k: os.environ[k] for k in rig.PASSTHROUGH_ENV if k in os.environ}
        p = subprocess.run([rig.BINARY, "--check", "--env-file", path], env=penv, cwd=self.tmp,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    @staticmethod
    def lines(out, name):
        return [(m.group(1), m.group(2)) for m in
                re.finditer(r"^(OK|WARN|FAIL|SKIP)\s+%s\s+(.*)$" % re.escape(name), out, re.M)]

    def test_check_says_per_section_whether_its_trash_may_be_emptied(self):
        rc, out = self.check()
        found = self.lines(out, "plex-trash")
        self.assertEqual(len(found), 3, out)
        by_section = {re.match(r"section (\S+)", text).group(1): text for _, text in found}
        self.assertRegex(by_section["1"], r"^section 1 'TV Shows': trash may be emptied")
        self.assertIn(self.anchor, by_section["1"])
        self.assertRegex(by_section["2"], r"^section 2 'Movies': trash is never emptied: "
                         r"location %s .*under no anchor" % re.escape(self.movies))
        self.assertRegex(by_section["3"], r"^section 3 'Mixed': trash is never emptied: "
                         r"location %s .*under no anchor" % re.escape(self.other))
        # off by default: no trash lines at all
        rc, out = self.check(PLEX_EMPTY_TRASH=None)
        self.assertEqual(self.lines(out, "plex-trash"), [], out)

    def test_unguarded_section_is_never_emptied_and_the_log_says_why(self):
        self.start_trash()
        # the start says so, per section, once Plex's library list is read
        self.wait_log(r"the trash of section 2 is never emptied: location %s"
                      % re.escape(self.movies), timeout=15)
        self.wait_log(r"the trash of section 3 is never emptied: location %s"
                      % re.escape(self.other), timeout=15)
        self.assertIn(self.anchor, self.wait_log(
            r"the trash of section 1 'TV Shows' may be emptied[^\n]*", timeout=15))
        folder = self.radarr_delete("Unguarded Movie (1999)")
        self.wait_scan(folder)
        self.assertTrue(self.no_trash_for(3.0), "an unguarded section was emptied: %r"
                        % self.trashes())
        # said once, not again for the round
        self.assertEqual(len(re.findall(r"section 2 is never emptied", self.daemon.log())), 1,
                         self.daemon.log())
        # the guarded section still is
        self.delete("Guarded Show")
        self.wait_trash(section="1")
        self.assertEqual(self.trashes(section="2"), [])


class RefreshingTest(TrashCase):
    def test_waits_until_plex_no_longer_reports_the_section_refreshing(self):
        reported = []  # (monotonic time, section 1's refreshing) of every list Plex answered
        make_json = self.plex._sections_json

        def recording_json():
            reported.append((time.monotonic(), self.plex.refreshing("1")))
            return make_json()
        self.plex._sections_json = recording_json
        self.start_trash()
        # each scan leaves the section refreshing for the next 2 polls (a background scan)
        self.plex.scan_sets_refreshing = 2
        folder = self.delete("Refreshing Show")
        scan, = self.wait_scan(folder)
        call, = self.wait_trash(section="1", timeout=4 * POLL_S + 20)
        self.assertIs(call.section_refreshing, False)
        polls = [(t, on) for t, on in reported if scan.time < t < call.time]
        self.assertEqual([on for _, on in polls], [True, True, False],
                         "polls between the scan and the call: %r" % polls)
        self.assertOneCallAfter(call, folder)


class CooldownTest(TrashCase):
    def test_two_delete_rounds_seconds_apart_make_one_call(self):
        self.start_trash()
        self.delete("First Show")
        self.wait_trash(section="1")
        folder2 = self.delete("Second Show")
        self.wait_scan(folder2)
        # the second round waits for the 5 minutes since the first call
        self.assertTrue(self.no_trash_for(15.0, n=1), "a second call within 5 minutes: %r"
                        % self.trashes())


class BusySectionTest(TrashCase):
    def test_waits_while_another_folder_of_the_section_syncs(self):
        self.start_trash()
        slow_seen, quick_seen = threading.Event(), threading.Event()
        answered = []  # when Plex answered the slow folder's scan

        def hook(rec):
            if rec.route != "refresh" or not rec.scan_path:
                return None
            if b"Quick Show" in rec.scan_path:
                quick_seen.set()
            elif b"Slow Show" in rec.scan_path:
                # still scanning when the quick folder's round ends, and a while after
                slow_seen.set()
                quick_seen.wait(60)
                time.sleep(2.0)
                answered.append(time.monotonic())
            return None
        self.plex.hook = hook
        slow_folder = self.import_("Slow Show")
        self.assertTrue(slow_seen.wait(30), "the slow folder was never scanned")
        folder = self.delete("Quick Show")
        quick, = self.wait_scan(folder)
        call, = self.wait_trash(section="1", timeout=3 * POLL_S + 20)
        self.assertTrue(answered, "the slow scan never ended")
        self.assertLess(quick.time, answered[0])
        self.assertGreater(call.time, answered[0], "emptyTrash while %s was still being scanned"
                           % slow_folder)
        self.assertOneCallAfter(call, folder, slow_folder)
        self.assertTrue(self.no_trash_for(2.0, n=1), "more than one call: %r" % self.trashes())


class FailureTest(TrashCase):
    def test_a_failed_call_is_logged_and_not_retried(self):
        self.start_trash()
        self.plex.fail_next(1, 500, route="empty_trash")
        self.delete("Failing Show")
        call, = self.wait_trash(section="1")
        self.assertEqual(call.status, 500)
        self.wait_log(r"emptying the trash of section 1 failed: [^\n]*500[^\n]*not retried")
        self.assertTrue(self.no_trash_for(2 * POLL_S + 2, n=1), "retried: %r" % self.trashes())
        self.assertFalse(self.daemon.log_matches(r"emptied the trash of section 1\b"))


class MediaServersTest(TrashCase):
    def test_plex_item_with_empty_trash_and_never_jellyfin(self):
        plex_b = self.add_plex()
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([
            media_server("plexa", self.plex, empty_trash=True),
            ("plexb", plex_b),
            ("jf", jf),
        ])
        env.pop("PLEX_EMPTY_TRASH", None)
        self.start_daemon(WEBHOOK_DELAY="0", ANCHOR_FILES=json.dumps([self.anchor]), **env)
        folder = self.delete("Servers Show")
        call, = self.wait_trash(section="1")
        self.assertOneCallAfter(call, folder)
        self.wait_scan(folder, double=plex_b)
        self.assertTrue(self.wait_updates(jf, folder), "Jellyfin was not told")
        self.assertTrue(self.no_trash_for(3.0, n=1))
        self.wait_log(r"plexa: emptied the trash of section 1\b")
        # the item without empty_trash: never; Jellyfin: only its library list and the update
        self.assertEqual(plex_b.empty_trashes(), [])
        self.assertFalse(self.daemon.log_matches(r"plexb: .*trash"))
        self.assertEqual({r.route for r in jf.requests()}, {"virtual_folders", "media_updated"},
                         jf.requests())
        self.assertFalse([r for r in jf.requests() if "trash" in r.path.lower()
                          or r.method not in ("GET", "POST")], jf.requests())

    def test_empty_trash_on_a_jellyfin_item_is_refused(self):
        jf = self.add_mb("jellyfin")
        env = self.media_servers_env([media_server("jf", jf, empty_trash=True)])
        daemon_env = self.daemon_env(WEBHOOK_DELAY="0", **env)
        d = rig.Daemon(os.path.join(self.tmp, "run-bad"), daemon_env)
        self.addCleanup(lambda: d.running() and d.kill())
        with self.assertRaises(rig.DaemonError):
            d.start(timeout=10)
        self.assertRegex(d.log(), r"empty_trash")


if __name__ == "__main__":
    unittest.main()
