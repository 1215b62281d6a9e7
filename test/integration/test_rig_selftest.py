"""Tests of the rig itself: the Plex double is strict, rclone starts and behaves as the core tests
assume (a cached listing hides new folders until vfs/refresh). None of these need the daemon."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import rig
from plexdouble import PlexDouble, parse_query_bytes
from rig import Rclone, http_request, wait_until

TOKEN = "selftest-token"
ODD = "Amélie & Co's #1 100% ?+x (2001)"


def plexapi_quote(path):
    """python-plexapi / autoscan encoding: quote_plus (space as '+')."""
    return urllib.parse.quote_plus(path)


def strict_quote(path):
    """The daemon's encoding: every byte outside unreserved percent-encoded."""
    return urllib.parse.quote(path, safe="-._~")


class PlexDoubleTest(unittest.TestCase):
    def setUp(self):
        self.tv = "/srv/media/tv"
        self.plex = PlexDouble(token=TOKEN, sections=[
            {"key": "1", "type": "show", "title": "TV Shows", "locations": [self.tv]},
            {"key": "7", "type": "movie", "title": "Movies & <Films>",
             "locations": ["/srv/media/movies", "/srv/other/movies"]},
        ])
        self.plex.start()
        self.addCleanup(self.plex.stop)

    def get(self, target, headers=None, method="GET", token=True):
        h = {"Accept": "application/json"}
        if token:
            h["X-Plex-Token"] = TOKEN
        h.update(headers or {})
        return http_request(method, self.plex.port, target, headers=h)

    def refresh(self, section, encoded_path, **kw):
        return self.get("/library/sections/%s/refresh?path=%s" % (section, encoded_path), **kw)

    # ---- auth ----
    def test_sections_without_token_is_401(self):
        self.assertEqual(self.get("/library/sections", token=False).status, 401)

    def test_wrong_token_is_401(self):
        r = self.get("/library/sections", token=False, headers={"X-Plex-Token": "nope"})
        self.assertEqual(r.status, 401)
        r = self.get("/library/sections?X-Plex-Token=nope", token=False)
        self.assertEqual(r.status, 401)

    def test_token_as_query_parameter_is_accepted(self):
        r = self.get("/library/sections?X-Plex-Token=%s" % TOKEN, token=False)
        self.assertEqual(r.status, 200)

    def test_refresh_without_token_is_401_and_recorded(self):
        r = self.refresh("1", strict_quote(self.tv + "/Show"), token=False)
        self.assertEqual(r.status, 401)
        recs = self.plex.refreshes()
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0].status, 401)
        self.assertEqual(self.plex.scans(), [])

    def test_identity_needs_no_token(self):
        r = self.get("/identity", token=False)
        self.assertEqual(r.status, 200)
        mc = r.json()["MediaContainer"]
        self.assertIn("machineIdentifier", mc)
        self.assertIn("version", mc)
        r = self.get("/identity", token=False, headers={"Accept": "*/*"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["MediaContainer"]["machineIdentifier"], mc["machineIdentifier"])
        self.assertEqual(self.get("/identity", method="POST").status, 405)

    # ---- sections ----
    def test_sections_json_shape(self):
        r = self.get("/library/sections")
        self.assertEqual(r.status, 200)
        self.assertIn("application/json", r.headers.get("Content-Type"))
        mc = r.json()["MediaContainer"]
        self.assertEqual(mc["size"], 2)
        d = mc["Directory"]
        self.assertEqual([x["key"] for x in d], ["1", "7"])  # key is a JSON string
        self.assertIsInstance(d[0]["refreshing"], bool)
        self.assertEqual([loc["path"] for loc in d[1]["Location"]],
                         ["/srv/media/movies", "/srv/other/movies"])
        self.assertIsInstance(d[1]["Location"][0]["id"], int)
        self.assertEqual(d[0]["type"], "show")

    def test_sections_xml_without_accept_json(self):
        r = self.get("/library/sections", headers={"Accept": "*/*"})
        self.assertEqual(r.status, 200)
        self.assertIn("xml", r.headers.get("Content-Type"))
        root = ET.fromstring(r.body)
        self.assertEqual(root.tag, "MediaContainer")
        dirs = root.findall("Directory")
        self.assertEqual([x.get("key") for x in dirs], ["1", "7"])
        self.assertEqual(dirs[1].get("title"), "Movies & <Films>")
        self.assertEqual([x.get("path") for x in dirs[1].findall("Location")],
                         ["/srv/media/movies", "/srv/other/movies"])

    # ---- refresh ----
    def test_refresh_ok_is_200_empty_and_recorded_with_exact_bytes(self):
        folder = self.tv + "/" + ODD + "/Season 01"
        r = self.refresh("7", strict_quote(folder), headers={"X-Plex-Client-Identifier": "x"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        recs = self.plex.refreshes()
        self.assertEqual(len(recs), 1)
        rec = recs[0]
        self.assertEqual(rec.scan_path, folder.encode("utf-8"))
        self.assertEqual(rec.section, "7")
        self.assertEqual(rec.method, "GET")
        self.assertEqual(rec.status, 200)
        self.assertEqual(rec.headers["x-plex-client-identifier"], "x")
        self.assertTrue(rec.target.startswith("/library/sections/7/refresh?path="))
        self.assertLessEqual(rec.time, time.monotonic())
        self.assertEqual(self.plex.scans(path=folder), [rec])

    def test_plus_decodes_as_space_like_plex(self):
        # python-plexapi sends quote_plus: '+' is a space, a literal '+' must be %2B
        folder = self.tv + "/" + ODD
        self.assertEqual(self.refresh("1", plexapi_quote(folder)).status, 200)
        self.assertEqual(self.plex.refreshes()[-1].scan_path, folder.encode())
        raw = folder.replace("+", "%2B").replace(" ", "+")  # hand-made, still correct
        self.assertEqual(self.refresh("1", urllib.parse.quote(raw, safe="/+%")).status, 200)
        # a raw '+' (a client bug) decodes as a space, so a test comparing bytes catches it
        self.assertEqual(self.refresh("1", "/a+b").status, 200)
        self.assertEqual(self.plex.refreshes()[-1].scan_path, b"/a b")

    def test_percent_escapes_decode_to_raw_bytes(self):
        self.assertEqual(self.refresh("1", "/tv/%FF%00x%25").status, 200)
        self.assertEqual(self.plex.refreshes()[-1].scan_path, b"/tv/\xff\x00x%")
        self.assertEqual(parse_query_bytes("a=1&path=%2Fx+y&b"),
                         [(b"a", b"1"), (b"path", b"/x y"), (b"b", b"")])

    def test_unknown_section_is_404(self):
        r = self.refresh("99", strict_quote(self.tv + "/Show"))
        self.assertEqual(r.status, 404)
        self.assertEqual(self.plex.refreshes()[-1].status, 404)
        self.assertEqual(self.plex.scans(), [])

    def test_missing_or_empty_path_is_400(self):
        self.assertEqual(self.get("/library/sections/1/refresh").status, 400)
        self.assertEqual(self.get("/library/sections/1/refresh?force=1").status, 400)
        self.assertEqual(self.get("/library/sections/1/refresh?path=").status, 400)
        self.assertEqual(self.plex.scans(), [])

    def test_other_methods_on_refresh_are_405(self):
        for m in ("POST", "PUT", "DELETE", "HEAD"):
            r = self.refresh("1", strict_quote(self.tv + "/Show"), method=m)
            self.assertEqual(r.status, 405, m)
        self.assertEqual(self.plex.scans(), [])

    def test_unknown_routes_are_404(self):
        for t in ("/", "/library", "/library/sections/1", "/library/sections/1/refresh/x",
                  "/library/sections//refresh?path=%2Fx", "/library/sections/all/refreshx",
                  "/:/prefs"):
            self.assertEqual(self.get(t).status, 404, t)

    def test_fail_next_then_success(self):
        self.plex.fail_next(2, 503)
        p = strict_quote(self.tv + "/Show")
        self.assertEqual([self.refresh("1", p).status for _ in range(3)], [503, 503, 200])
        self.assertEqual([r.status for r in self.plex.refreshes()], [503, 503, 200])
        self.assertEqual(len(self.plex.scans(path=self.tv + "/Show")), 1)

    def test_hook_sees_request_and_may_override(self):
        seen = []

        def hook(rec):
            seen.append((rec.route, rec.scan_path))
            if rec.scan_path == b"/teapot":
                return 418
            return None
        self.plex.hook = hook
        self.assertEqual(self.refresh("1", "%2Fteapot").status, 418)
        self.assertEqual(self.refresh("1", "%2Fok").status, 200)
        self.assertEqual(seen, [("refresh", b"/teapot"), ("refresh", b"/ok")])

    def test_slow_refreshes_are_served_concurrently(self):
        self.plex.delay = 1.0
        results = []

        def one(i):
            results.append(self.refresh("1", strict_quote("%s/Show %d" % (self.tv, i))).status)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - t0
        self.assertEqual(results, [200] * 5)
        self.assertEqual(self.plex.max_concurrent_refreshes, 5)
        self.assertGreaterEqual(elapsed, 1.0)   # each one really waited
        self.assertLess(elapsed, 4.0)           # ... but not one after another (5 s)

    def test_down_then_up_on_the_same_port(self):
        port = self.plex.port
        self.plex.set_down()
        self.assertFalse(rig.port_open(port))
        with self.assertRaises(OSError):
            self.get("/identity")
        self.plex.set_up()
        self.assertEqual(self.plex.port, port)
        self.assertEqual(self.get("/identity").status, 200)

    def test_down_breaks_open_keep_alive_connections(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.plex.port, timeout=10)
        self.addCleanup(c.close)
        c.request("GET", "/identity")
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 200)
        self.plex.set_down()
        with self.assertRaises((OSError, http.client.HTTPException)):
            c.request("GET", "/identity")
            c.getresponse().read()

    def test_start_on_a_chosen_port_later(self):
        port = rig.free_port()
        later = PlexDouble(token=TOKEN, port=port)
        self.addCleanup(later.stop)
        self.assertFalse(rig.port_open(port))
        later.start()
        self.assertEqual(later.port, port)
        self.assertTrue(rig.port_open(port))

    def test_keep_alive_connection_serves_several_requests(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.plex.port, timeout=10)
        try:
            for i in range(3):
                c.request("GET", "/library/sections/1/refresh?path=%2Fk" + str(i),
                          headers={"X-Plex-Token": TOKEN})
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
        finally:
            c.close()
        self.assertEqual(len(self.plex.scans()), 3)

    def test_wait_for_wakes_on_request(self):
        threading.Timer(0.2, lambda: self.refresh("1", "%2Fw")).start()
        self.assertTrue(self.plex.wait_for(lambda p: p.scans(path="/w"), timeout=10))


class PlexDoubleScriptTest(unittest.TestCase):
    def test_script_mode(self):
        tmp = tempfile.mkdtemp(prefix="pss-selftest-")
        self.addCleanup(shutil.rmtree, tmp, True)
        sections = os.path.join(tmp, "sections.json")
        with open(sections, "w") as f:
            json.dump([{"key": "3", "type": "show", "title": "TV", "locations": ["/d/tv"]}], f)
        port = rig.free_port()
        p = subprocess.Popen([sys.executable, os.path.join(rig.HERE, "plexdouble.py"),
                              "--port", str(port), "--token", TOKEN, "--sections", sections],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        line = p.stdout.readline()
        self.assertEqual(line.strip(), "listening on 127.0.0.1:%d" % port)
        h = {"X-Plex-Token": TOKEN, "Accept": "application/json"}
        r = http_request("GET", port, "/library/sections", headers=h)
        self.assertEqual(r.json()["MediaContainer"]["Directory"][0]["Location"][0]["path"],
                         "/d/tv")
        self.assertEqual(http_request("GET", port, "/library/sections/3/refresh?path=%2Fd%2Ftv%2Fx",
                                      headers=h).status, 200)
        self.assertEqual(http_request("GET", port, "/library/sections/3/refresh?path=%2Fx").status,
                         401)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)
        stats = json.loads(out.strip().splitlines()[-1])
        self.assertEqual(stats["refreshes"], 2)
        self.assertEqual(stats["refresh_ok"], 1)


@unittest.skipUnless(shutil.which(rig.RCLONE) or os.access(rig.RCLONE, os.X_OK), "no rclone")
class RcloneRigTest(unittest.TestCase):
    """What the core tests rely on: rclone starts, its VFS listing is cached (a folder created
    behind its back stays invisible), and vfs/refresh makes it visible."""

    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="pss-selftest-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.media = os.path.join(self.tmp, "media")
        rig.touch(os.path.join(self.media, "tv", "Old Show", "Season 01", "e1.mkv"))
        self.rc = Rclone(self.media, self.tmp)
        self.addCleanup(self.rc.stop)
        self.rc.start()

    def test_noop_answers(self):
        status, body = self.rc.rc("rc/noop", {"x": "1"})
        self.assertEqual(status, 200)
        self.assertEqual(body, {"x": "1"})

    def test_new_folder_invisible_until_vfs_refresh(self):
        self.assertEqual(self.rc.list_dir("tv"), {"Old Show"})
        rig.touch(os.path.join(self.media, "tv", "New Show", "Season 01", "e1.mkv"))
        # cached: neither the new show nor its season is visible
        self.assertEqual(self.rc.list_dir("tv"), {"Old Show"})
        self.assertIsNone(self.rc.list_dir("tv/New Show/Season 01"))
        # refreshing the missing folder itself fails: its parent's listing lacks it
        status, body = self.rc.rc("vfs/refresh", {"dir": "tv/New Show/Season 01"})
        self.assertEqual(status, 200)
        self.assertEqual(body["result"]["tv/New Show/Season 01"], "file does not exist")
        # the walk up: refresh the nearest listed parent, then the folder
        status, body = self.rc.rc("vfs/refresh", {"dir": "tv"})
        self.assertEqual(body["result"]["tv"], "OK")
        status, body = self.rc.rc("vfs/refresh", {"dir": "tv/New Show/Season 01",
                                                  "recursive": "true"})
        self.assertEqual(body["result"]["tv/New Show/Season 01"], "OK")
        self.assertEqual(self.rc.list_dir("tv/New Show/Season 01"), {"e1.mkv"})

    def test_new_file_in_listed_folder_invisible_until_refresh(self):
        d = "tv/Old Show/Season 01"
        self.assertEqual(self.rc.list_dir(d), {"e1.mkv"})
        rig.touch(os.path.join(self.media, d, "e2.mkv"))
        self.assertEqual(self.rc.list_dir(d), {"e1.mkv"})
        status, body = self.rc.rc("vfs/forget", {"dir": d})
        self.assertEqual(status, 200)
        status, body = self.rc.rc("vfs/refresh", {"dir": d})
        self.assertEqual(body["result"][d], "OK")
        self.assertEqual(self.rc.list_dir(d), {"e1.mkv", "e2.mkv"})

    def test_recursive_as_json_boolean_is_refused(self):
        status, body = self.rc.rc("vfs/refresh", {"dir": "tv", "recursive": True})
        self.assertEqual(status, 500)
        self.assertIn("recursive", body.get("error", ""))

    def test_odd_names_round_trip_through_listing(self):
        rig.touch(os.path.join(self.media, "movies", ODD, ODD + ".mkv"))
        self.assertEqual(self.rc.list_dir("movies"), {ODD})
        self.assertEqual(self.rc.list_dir("movies/" + ODD), {ODD + ".mkv"})


class RigHelpersTest(unittest.TestCase):
    def test_rewrite_paths_by_component(self):
        p = {"a": "/home/user/media/tv/X", "b": ["/home/user/media", "/home/user/mediaX/y"],
             "c": 3, "d": {"e": "C:\\testpath"}}
        q = rig.rewrite_paths(p, "/home/user/media", "/tmp/m")
        self.assertEqual(q, {"a": "/tmp/m/tv/X", "b": ["/tmp/m", "/home/user/mediaX/y"],
                             "c": 3, "d": {"e": "C:\\testpath"}})
        self.assertEqual(p["a"], "/home/user/media/tv/X")  # a copy

    def test_fixtures_load(self):
        names = [n for n in os.listdir(rig.FIXTURES_DIR) if n.endswith(".json")]
        self.assertGreater(len(names), 10)
        for n in names:
            self.assertIn("eventType", rig.load_fixture(n), n)

    def test_sonarr_and_radarr_builders(self):
        p = rig.sonarr_download("/m/tv/Show", "Season 01/e.mkv")
        self.assertEqual(p["series"]["path"], "/m/tv/Show")
        self.assertEqual(p["episodeFile"]["relativePath"], "Season 01/e.mkv")
        self.assertEqual(p["eventType"], "Download")
        p = rig.radarr_download("/m/movies/" + ODD, "x.mkv")
        self.assertEqual(p["movie"]["folderPath"], "/m/movies/" + ODD)
        self.assertEqual(p["movieFile"]["path"], "/m/movies/%s/x.mkv" % ODD)

    def test_dotenv_quoting(self):
        self.assertEqual(rig._dotenv_quote('["/a/.anchor"]'), "'[\"/a/.anchor\"]'")
        self.assertEqual(rig._dotenv_quote("it's"), '"it\'s"')
        with self.assertRaises(ValueError):
            rig._dotenv_quote("a\nb")

    def test_wait_until_and_stays(self):
        t0 = time.monotonic()
        self.assertEqual(wait_until(lambda: time.monotonic() - t0 > 0.1 and "ok", 5), "ok")
        self.assertFalse(wait_until(lambda: False, 0.1))
        self.assertTrue(rig.stays(lambda: True, 0.1))
        self.assertFalse(rig.stays(lambda: time.monotonic() - t0 < 0.2, 2))


if __name__ == "__main__":
    unittest.main()
