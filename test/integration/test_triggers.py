"""autoscan's and autopulse's addresses: /triggers/{sonarr,radarr,lidarr,readarr} and
/triggers/manual.

The calls are sent in the shapes the peers' callers send them: autoscan's Tdarr and Bazarr
integrations POST /triggers/manual?dir=/a&dir=/b with Basic auth and an empty body (or an ignored
form body); autopulse's callers name a file or a folder with ?path=; autoscan's own target probe
sends HEAD /triggers/manual. Every folder is mapped, debounced and answered as a webhook's, and
counted under its own source (autoscan, manual-trigger) in /api/queue, the history and /metrics."""

import json
import os
import re
import unittest
import urllib.parse

import rig
from rig import (MANUAL_PASS, MANUAL_USER, RigTestCase, basic_auth, sonarr_download, stays,
                 touch, wait_until)

HOOK_USER = "autoscan"
HOOK_PASS = "trigger-pass-Qw7"
TDARR_UA = "axios/1.6.7"  # Tdarr's plugins call through axios


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class TriggerCase(RigTestCase):
    use_rclone = False

    def start(self, **env):
        env.setdefault("WEBHOOK_USER", HOOK_USER)
        env.setdefault("WEBHOOK_PASS", HOOK_PASS)
        self.start_daemon(**env)

    def folder(self, *parts, root=None):
        """A folder under <media>/tv (created, with one episode file in it)."""
        d = os.path.join(root or self.tv, *parts)
        touch(os.path.join(d, "episode.mkv"))
        return d

    def wait_resolved(self, folder):
        """Wait until the daemon has read Plex's library list (the preview names a section for
        folder), so a trigger is answered "queued" and not "unresolved". Queues nothing."""
        target = "/api/resolve?" + urllib.parse.urlencode({"path": folder})

        def resolved():
            r = self.daemon.get(target, auth=(MANUAL_USER, MANUAL_PASS))
            return r.status == 200 and bool((r.json() or {}).get("sections"))
        self.assertTrue(wait_until(resolved, 20), "the Plex library list was never read")

    def trigger(self, method="POST", dirs=(), paths=(), auth=(HOOK_USER, HOOK_PASS), body=None,
                headers=None, query=None):
        """/triggers/manual with ?dir= and ?path= values (percent-encoded here), or a raw query."""
        if query is None:
            query = urllib.parse.urlencode([("dir", d) for d in dirs] + [("path", p) for p in paths])
        hdrs = {"User-Agent": TDARR_UA}
        if auth is not None:
            hdrs["Authorization"] = basic_auth(*auth)
        hdrs.update(headers or {})
        target = "/triggers/manual" + ("?" + query if query else "")
        return self.daemon.request(method, target, body=body, headers=hdrs)

    def arr_webhook(self, path, app, payload, method="POST"):
        """An *arr payload sent to /webhook/<app> or /triggers/<app> (path: which), as the apps
        send it (latin-1 Basic auth)."""
        hdrs = {"Content-Type": "application/json", "User-Agent": "Sonarr/4.0.16.2944 (ubuntu 22.04)",
                "Authorization": basic_auth(HOOK_USER, HOOK_PASS, encoding="latin-1")}
        body = json.dumps(payload).encode("utf-8")
        return self.daemon.request(method, "/%s/%s" % (path, app), body=body, headers=hdrs)

    def queue(self):
        r = self.daemon.get("/api/queue", auth=(MANUAL_USER, MANUAL_PASS))
        self.assertEqual(r.status, 200, r)
        return {e["path"]: e for e in r.json()["entries"]}

    def history(self):
        r = self.daemon.get("/api/history", auth=(MANUAL_USER, MANUAL_PASS))
        self.assertEqual(r.status, 200, r)
        return r.json()["items"]

    def metric(self, name, **labels):
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.daemon.get("/metrics").text.splitlines():
            m = re.match(r'^([a-z_]+)(?:\{([^}]*)\})? (\S+)$', line)
            if not m or m.group(1) != name:
                continue
            have = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
            if have == want:
                return float(m.group(3))
        return None

    def entry_paths(self, resp):
        return [e["arr_path"] for e in resp.json()["entries"]]


class AutoscanManualTriggerTest(TriggerCase):
    def test_tdarr_and_bazarr_calls_queue_their_folders_and_plex_scans_them(self):
        self.start(WEBHOOK_DELAY="2")
        a = self.folder("Tdarr Show", "Season 01")
        b = self.folder("Tdarr Show", "Season 02")
        c = self.folder("Bazarr Show (2019)", "Season 03")
        self.wait_resolved(a)
        # Tdarr: POST, two dirs, an empty body
        r = self.trigger(dirs=[a, b], body=b"")
        body = self.assertWebhookAccepted(r)
        self.assertEqual(self.entry_paths(r), [a, b])
        self.assertEqual([e["queued_as"] for e in body["entries"]], ["new", "new"])
        self.assertEqual([e["section"] for e in body["entries"]], [1, 1])
        # Bazarr: POST, one dir with spaces and parentheses, a form body that is ignored
        r = self.trigger(dirs=[c], body=b"dir=%2Fignored",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertWebhookAccepted(r)
        self.assertEqual(self.entry_paths(r), [c])
        q = self.queue()
        for d in (a, b, c):
            self.assertIn(d, q)
            self.assertEqual(q[d]["sources"], ["autoscan"])
            self.assertFalse(q[d]["manual"], "a trigger is debounced, as a webhook")
        self.assertNotIn("/ignored", q)
        for d in (a, b, c):
            self.assertEqual(len(self.wait_scans(d)), 1, d)
        self.assertTrue(wait_until(lambda: len(self.history()) >= 3, 20))
        self.assertEqual({h["path"]: h["sources"] for h in self.history()},
                         {a: ["autoscan"], b: ["autoscan"], c: ["autoscan"]})
        self.assertTrue(self.daemon.log_matches(r"autoscan: POST trigger for .* via /triggers/manual"))

    def test_get_with_dirs_queues_too(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Get Show", "Season 01")
        self.wait_resolved(a)
        r = self.trigger("GET", dirs=[a])
        self.assertWebhookAccepted(r)
        self.assertEqual(len(self.wait_scans(a)), 1)

    def test_head_and_bare_get_answer_200_and_queue_nothing(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Probe Show", "Season 01")
        self.wait_resolved(a)
        r = self.trigger("HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        r = self.trigger("GET")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "ok")
        # a HEAD never queues, even when it names a folder
        r = self.trigger("HEAD", dirs=[a])
        self.assertEqual(r.status, 200, r)
        # a POST must name something
        r = self.trigger("POST", body=b"")
        self.assertEqual(r.status, 400, r)
        self.assertIn("?dir=", r.json()["message"])
        self.assertEqual(self.queue(), {})
        self.assertTrue(stays(lambda: not self.plex.refreshes() and not self.queue(), 1.5),
                        self.plex.refreshes())
        self.assertEqual(self.metric("pss_triggers_total", source="autoscan"), 0)

    def test_without_credentials_the_trigger_is_refused(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Locked Show", "Season 01")
        for method, body in (("POST", b""), ("GET", None), ("HEAD", None)):
            r = self.trigger(method, dirs=[a], auth=None, body=body)
            self.assertEqual(r.status, 401, (method, r))
            self.assertIn("Basic", r.headers.get("WWW-Authenticate", ""))
        r = self.trigger(dirs=[a], auth=(HOOK_USER, "wrong"), body=b"")
        self.assertEqual(r.status, 401, r)
        r = self.daemon.request("POST", "/triggers/sonarr", body=b"{}",
                                headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 401, r)
        self.assertTrue(stays(lambda: not self.plex.refreshes(path=a), 1.0))
        self.assertEqual(self.queue(), {})
        # with them, the same call is taken
        self.assertWebhookAccepted(self.trigger(dirs=[a], body=b""), ("queued", "unresolved"))

    def test_bad_paths_are_400_with_the_reason(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Fine Show", "Season 01")
        cases = [
            (dict(dirs=["relative/Show"]), ["relative/Show", "not absolute"]),
            (dict(paths=["Show/Season 01/x.mkv"]), ["Show/Season 01/x.mkv", "not absolute"]),
            (dict(dirs=[a, "/tv/../etc"]), ["/tv/../etc", "'..'"]),
            (dict(dirs=[""]), ["path is empty"]),
            (dict(dirs=[a], paths=[a]), ["not both"]),
            (dict(query="dir=%2Ftv%ZZ"), ["percent-encoding"]),
            (dict(query="dir=%2Ftv%00x"), ["percent-encoding"]),
            (dict(dirs=[self.tv]), ["library location"]),
        ]
        for kw, words in cases:
            r = self.trigger(body=b"", **kw)
            self.assertEqual(r.status, 400, (kw, r))
            for w in words:
                self.assertIn(w, r.json()["message"], (kw, r))
        self.assertEqual(self.queue(), {})
        # as a webhook's: a request refused at its query is not counted; one whose folder the
        # path rules refuse (the library root) was read, and is
        self.assertEqual(self.metric("pss_triggers_total", source="autoscan"), 1)


class AutopulsePathTest(TriggerCase):
    def test_a_file_means_its_folder_and_a_folder_itself(self):
        self.start(WEBHOOK_DELAY="2")
        a = self.folder("Pulse Show", "Season 01")
        b = self.folder("Pulse Show & Co #1 100%", "Season 02")
        self.wait_resolved(a)
        r = self.trigger(paths=[os.path.join(a, "Pulse Show - S01E01.mkv"),
                                os.path.join(a, "Pulse Show - S01E01.en.srt")], body=b"")
        self.assertWebhookAccepted(r)
        self.assertEqual(self.entry_paths(r), [a], "two files of one folder are one folder")
        r = self.trigger(paths=[b], body=b"")
        self.assertWebhookAccepted(r)
        self.assertEqual(self.entry_paths(r), [b])
        q = self.queue()
        self.assertEqual(q[a]["sources"], ["manual-trigger"])
        self.assertEqual(q[a]["files"], 2)
        self.assertEqual(q[b]["sources"], ["manual-trigger"])
        self.assertEqual(len(self.wait_scans(a)), 1)
        self.assertEqual(len(self.wait_scans(b)), 1)
        self.assertTrue(self.daemon.log_matches(r"manual-trigger: POST trigger for .* via /triggers/manual"))

    def test_a_path_outside_every_library_is_skipped_as_a_webhooks(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Known Show", "Season 01")
        self.wait_resolved(a)
        outside = os.path.join(self.tmp, "elsewhere", "Some Show")
        os.makedirs(outside)
        r = self.trigger(paths=[os.path.join(outside, "Some Show - S01E01.mkv")], body=b"")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "skipped")
        self.assertEqual([s["arr_path"] for s in r.json()["skipped"]], [outside])
        hook = self.arr_webhook("webhook", "sonarr",
                                sonarr_download(outside, "Some Show - S01E02.mkv", title="Some Show"))
        self.assertEqual(hook.status, 200, hook)
        self.assertEqual(hook.json()["skipped"][0]["reason"], r.json()["skipped"][0]["reason"])
        # one skipped, one queued: 202 with both
        r = self.trigger(dirs=[outside, a], body=b"")
        body = self.assertWebhookAccepted(r)
        self.assertEqual(self.entry_paths(r), [a])
        self.assertEqual([s["arr_path"] for s in body["skipped"]], [outside])
        self.assertEqual(len(self.wait_scans(a)), 1)
        self.assertFalse(self.plex.refreshes(path=outside))


class ArrTriggerTest(TriggerCase):
    def test_triggers_sonarr_is_webhook_sonarr(self):
        self.start(WEBHOOK_DELAY="2")
        show_a = os.path.dirname(self.folder("Hook Show", "Season 01"))
        show_b = os.path.dirname(self.folder("Trigger Show", "Season 01"))
        self.wait_resolved(show_a)
        fixture = rig.load_fixture("sonarr-download")
        old_root = fixture["series"]["path"]
        via_hook = self.arr_webhook("webhook", "sonarr", rig.rewrite_paths(fixture, old_root, show_a))
        via_trigger = self.arr_webhook("triggers", "sonarr", rig.rewrite_paths(fixture, old_root, show_b))
        self.assertEqual(via_hook.status, via_trigger.status)
        hb, tb = via_hook.json(), via_trigger.json()
        self.assertWebhookAccepted(via_trigger)

        def shape(body, root):
            text = json.dumps(body, sort_keys=True).replace(root, "<show>")
            return re.sub(r'"id": \d+', '"id": 0', text)
        self.assertEqual(shape(tb, show_b), shape(hb, show_a))
        self.assertEqual([e["arr_path"] for e in tb["entries"]],
                         [os.path.join(show_b, "Season 01")])
        q = self.queue()
        self.assertEqual(q[os.path.join(show_b, "Season 01")]["sources"], ["sonarr"])
        # PUT, as at /webhook/; an unknown app and the test event answer as there
        r = self.arr_webhook("triggers", "sonarr", rig.load_fixture("sonarr-test"), method="PUT")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["status"], "test_success")
        r = self.arr_webhook("triggers", "prowlarr", rig.load_fixture("sonarr-test"))
        self.assertEqual(r.status, 404, r)
        self.assertIn("unknown trigger", r.json()["message"])
        r = self.arr_webhook("triggers", "sonarr", {"series": {"path": "relative"}, "eventType": "Download"})
        self.assertEqual(r.status, 400, r)
        self.assertEqual(self.metric("pss_webhooks_total", app="sonarr", event="download"), 2)
        self.assertTrue(self.daemon.log_matches(r"sonarr: Download event for .* via /triggers"))
        self.assertEqual(len(self.wait_scans(os.path.join(show_b, "Season 01"))), 1)

    def test_a_body_over_the_webhook_limit_is_refused_as_there(self):
        self.start(WEBHOOK_DELAY="0", MAX_WEBHOOK_BODY="1024")
        payload = {"eventType": "Download", "pad": "x" * 4096}
        for path in ("webhook", "triggers"):
            r = self.arr_webhook(path, "sonarr", payload)
            self.assertEqual(r.status, 413, (path, r))


class CountingAndDebounceTest(TriggerCase):
    def test_metrics_count_each_source(self):
        self.start(WEBHOOK_DELAY="0")
        a = self.folder("Count Show", "Season 01")
        b = self.folder("Count Show", "Season 02")
        self.wait_resolved(a)
        self.assertEqual(self.metric("pss_triggers_total", source="autoscan"), 0)
        self.assertEqual(self.metric("pss_triggers_total", source="manual-trigger"), 0)
        self.assertWebhookAccepted(self.trigger(dirs=[a], body=b""))
        self.assertWebhookAccepted(self.trigger(dirs=[b], body=b""))
        self.assertWebhookAccepted(self.trigger(paths=[os.path.join(a, "episode.mkv")], body=b""))
        self.assertEqual(self.metric("pss_triggers_total", source="autoscan"), 2)
        self.assertEqual(self.metric("pss_triggers_total", source="manual-trigger"), 1)
        self.assertEqual(self.metric("pss_manual_requests_total"), 0)
        self.assertEqual(self.metric("pss_webhooks_total", app="sonarr", event="download"), 0)
        text = self.daemon.get("/metrics").text
        self.assertNotIn('app="autoscan"', text)
        self.assertNotIn('app="manual"', text)

    def test_several_triggers_for_one_folder_are_one_scan(self):
        self.start(WEBHOOK_DELAY="2")
        a = self.folder("Debounce Show", "Season 01")
        self.wait_resolved(a)
        answers = [self.trigger(dirs=[a], body=b"") for _ in range(3)]
        answers.append(self.trigger(paths=[os.path.join(a, "episode.mkv")], body=b""))
        answers.append(self.trigger("GET", dirs=[a]))
        kinds = [self.assertWebhookAccepted(r)["entries"][0]["queued_as"] for r in answers]
        self.assertEqual(kinds, ["new"] + ["merged"] * 4)
        q = self.queue()
        self.assertEqual(q[a]["events"], 5)
        self.assertEqual(sorted(q[a]["sources"]), ["autoscan", "manual-trigger"])
        self.assertEqual(len(self.wait_scans(a)), 1)
        self.assertTrue(stays(lambda: len(self.plex.refreshes()) == 1, 2.5), self.plex.refreshes())


if __name__ == "__main__":
    unittest.main()
