"""Notifications (NOTIFY) against strict doubles of a Discord webhook, an ntfy server, a Gotify
server and an Apprise API server: a parked delivery tells each destination what to fix, a burst is
one batched summary, a hanging destination delays nothing else, an *arr Test event and the page's
button reach every destination, and no URL secret or token shows in the log or the API."""

import json
import os
import re
import unittest

import rig
from rig import (MANUAL_PASS, MANUAL_USER, RigTestCase, basic_auth, load_fixture, stays, touch,
                 wait_until)
from notifydouble import NotifyDouble

AUTH = (MANUAL_USER, MANUAL_PASS)
NTFY_TOKEN = "tk_ntfy-S3CRET-0451"
GOTIFY_TOKEN = "AgotifyS3CRETkey"
SECRETS = ("d1sc0rd-s3cret-path", "pss-topic-s3cret", "appr1se-s3cret-key", NTFY_TOKEN, GOTIFY_TOKEN)


def parked_count(msg):
    """Parked folders a message accounts for: those it lists and those it counts."""
    text = msg.text
    listed = len(re.findall(r"^Parked '", text, re.M))
    more = sum(int(n) for n in re.findall(r"^and (\d+) more parked folders?$", text, re.M))
    return listed + more


@unittest.skipUnless(rig.binary_available(), "daemon not built (set PSS_BINARY)")
class NotifyCase(RigTestCase):
    use_rclone = False

    def add_double(self, kind, **kw):
        d = NotifyDouble(kind, **kw).start()
        self.addCleanup(d.stop)
        return d

    def all_four(self):
        return [self.add_double("discord"), self.add_double("ntfy", token=NTFY_TOKEN),
                self.add_double("gotify", token=GOTIFY_TOKEN), self.add_double("apprise")]

    def start_with(self, doubles, **env):
        notify = json.dumps([d.notify_item() for d in doubles])
        self.start_daemon(WEBHOOK_DELAY="0", NOTIFY=notify, **env)
        self.wait_plex_list()

    def api(self, target):
        r = self.daemon.get(target, auth=AUTH)
        self.assertEqual(r.status, 200, "%s: %r" % (target, r))
        return r.json()

    def wait_plex_list(self):
        def read():
            ts = {t["name"]: t for t in self.api("/api/stats").get("targets", [])}
            return ts.get("plex", {}).get("libraries_read_at")
        self.assertTrue(wait_until(read, 20, interval=0.1), "plex's library list not read")

    def episode(self, show):
        f = os.path.join(self.tv, show, "Season 01", "e01.mkv")
        touch(f)
        return f, os.path.dirname(f)

    def send(self, f):
        r = self.daemon.webhook("sonarr", self.sonarr_for(f))
        self.assertIn(r.status, (200, 202), r)

    def assertStrict(self, doubles):
        for d in doubles:
            self.assertEqual(d.errors(), [], "%s refused what the daemon sent" % d.kind)

    def assertNoSecrets(self):
        texts = {"log": self.daemon.log(), "/api/stats": self.daemon.get("/api/stats", auth=AUTH).text,
                 "/api/notify": self.daemon.get("/api/notify", auth=AUTH).text,
                 "/metrics": self.daemon.get("/metrics").text,
                 "/health": self.daemon.get("/health").text}
        for where, text in texts.items():
            for s in SECRETS:
                self.assertNotIn(s, text, "%s shows a secret" % where)


class ParkedTest(NotifyCase):
    def test_a_parked_delivery_tells_every_destination_the_variable_to_fix(self):
        doubles = self.all_four()
        self.start_with(doubles)
        self.plex.token = "a-token-the-daemon-does-not-have"  # Plex now refuses PLEX_TOKEN
        f, folder = self.episode("Refused Show")
        self.send(f)
        for d in doubles:
            self.assertTrue(d.wait_for(lambda x: x.messages(), 20), "%s heard nothing" % d.kind)
        self.assertTrue(stays(lambda: all(len(d.requests()) == 1 for d in doubles), 2.0),
                        [d.requests() for d in doubles])
        for d in doubles:
            m = d.messages()[0]
            self.assertIn("1 parked folder", m.title, d.kind)
            self.assertIn("Parked '%s' on plex" % folder, m.text, d.kind)
            self.assertIn("set PLEX_TOKEN in", m.text, d.kind)
            self.assertIn("and reload", m.text, d.kind)
        self.assertEqual(doubles[0].messages()[0].json["embeds"][0]["color"], 0xe74c3c)
        self.assertEqual(doubles[1].messages()[0].headers["authorization"], "Bearer " + NTFY_TOKEN)
        self.assertEqual(doubles[2].messages()[0].headers["x-gotify-key"], GOTIFY_TOKEN)
        self.assertEqual(doubles[3].messages()[0].json["type"], "failure")
        self.assertStrict(doubles)

        # the page and the API show each destination, redacted, with its last result
        dests = self.api("/api/notify")["destinations"]
        self.assertEqual([x["type"] for x in dests], ["discord", "ntfy", "gotify", "apprise"])
        for x, d in zip(dests, doubles):
            self.assertEqual(x["url"], "http://127.0.0.1:%d" % d.port)
            self.assertTrue(x["last"]["ok"], x)
            self.assertNotIn("scan", x["events"])
        self.assertEqual(self.api("/api/stats")["notifications"], dests)
        metrics = self.daemon.get("/metrics").text
        self.assertIn('pss_notifications_total{type="gotify",outcome="sent"} 1\n', metrics)
        self.assertNoSecrets()


class BurstTest(NotifyCase):
    def test_fifty_parked_folders_in_a_burst_are_a_batched_summary(self):
        doubles = [self.add_double("discord"), self.add_double("ntfy")]
        self.start_with(doubles)
        self.plex.token = "refused"
        for i in range(50):
            f, _ = self.episode("Burst Show %02d" % i)
            self.send(f)

        def accounted(d):
            return sum(parked_count(m) for m in d.messages()) >= 50
        for d in doubles:
            self.assertTrue(d.wait_for(accounted, 60), "%s: %r" % (d.kind, [m.text for m in d.messages()]))
            self.assertEqual(sum(parked_count(m) for m in d.messages()), 50)
            self.assertLessEqual(len(d.requests()), 3, "%s got %d messages, not a summary"
                                 % (d.kind, len(d.requests())))
            self.assertTrue(any(re.search(r"^and \d+ more parked folders$", m.text, re.M)
                                for m in d.messages()), [m.text for m in d.messages()])
            self.assertTrue(all(len(re.findall(r"^Parked '", m.text, re.M)) <= 10 for m in d.messages()))
        self.assertStrict(doubles)


class HangingTest(NotifyCase):
    def test_a_hanging_destination_delays_no_scan_and_no_other_destination(self):
        hanging, ntfy = self.add_double("discord"), self.add_double("ntfy")
        hanging.hang()
        self.start_with([hanging, ntfy])
        r = self.daemon.request("POST", "/api/notify/test", headers={"Authorization": basic_auth(*AUTH)})
        self.assertEqual(r.status, 202, r)
        self.assertEqual(r.json()["destinations"], 2)
        self.assertTrue(ntfy.wait_for(lambda d: d.messages(), 3), "ntfy waited for the hanging discord")
        self.assertTrue(hanging.wait_for(lambda d: d.requests(), 3))
        f, folder = self.episode("Scanned Meanwhile")
        self.send(f)
        self.assertTrue(self.wait_scans(folder, timeout=8), "the scan waited for the hanging destination")
        self.assertEqual([x.status for x in hanging.requests()], [None], "discord answered?")
        # the hanging request times out (about 10 s) and is tried again; ntfy is not held by it
        r = self.daemon.request("POST", "/api/notify/test", headers={"Authorization": basic_auth(*AUTH)})
        self.assertEqual(r.status, 202, r)
        self.assertTrue(ntfy.wait_for(lambda d: len(d.messages()) == 2, 15))
        last = {x["type"]: x for x in self.api("/api/notify")["destinations"]}
        self.assertTrue(last["ntfy"]["last"]["ok"])
        self.assertTrue(wait_until(lambda: {x["type"]: x for x in self.api("/api/notify")["destinations"]}
                                   ["discord"]["last"], 15), "the hanging request never timed out")
        last = {x["type"]: x for x in self.api("/api/notify")["destinations"]}
        self.assertEqual(last["discord"]["last"]["error"], "timed out")
        self.assertNoSecrets()


class TestEventTest(NotifyCase):
    def test_an_arr_test_event_and_the_page_button_reach_every_destination(self):
        doubles = self.all_four()
        self.start_with(doubles)
        st, body = self.daemon.post_webhook("sonarr", load_fixture("sonarr-test"))
        self.assertEqual(st, 200, body)
        for d in doubles:
            self.assertTrue(d.wait_for(lambda x: x.messages(), 5), "%s heard no test" % d.kind)
            m = d.messages()[0]
            self.assertIn("test notification", m.title)
            self.assertIn("sonarr sent a Test event", m.text)

        # the button: same-site only, like every state-changing call of the page
        r = self.daemon.request("POST", "/api/notify/test", headers={
            "Authorization": basic_auth(*AUTH), "Origin": "http://evil.example", "Host": "127.0.0.1"})
        self.assertEqual(r.status, 403, r)
        r = self.daemon.request("POST", "/api/notify/test")
        self.assertEqual(r.status, 401, r)
        r = self.daemon.request("POST", "/api/notify/test", headers={
            "Authorization": basic_auth(*AUTH), "Sec-Fetch-Site": "same-origin"})
        self.assertEqual(r.status, 202, r)
        for d in doubles:  # the next message waits for the 10 s window
            self.assertTrue(d.wait_for(lambda x: len(x.messages()) == 2, 15), "%s: no button test" % d.kind)
            self.assertIn("sent from the page", d.messages()[1].text)
        self.assertStrict(doubles)
        self.assertNoSecrets()

    def test_the_button_without_destinations_says_so(self):
        self.start_daemon()
        r = self.daemon.request("POST", "/api/notify/test", headers={"Authorization": basic_auth(*AUTH)})
        self.assertEqual(r.status, 409, r)
        self.assertIn("NOTIFY", r.json()["message"])


if __name__ == "__main__":
    unittest.main()
