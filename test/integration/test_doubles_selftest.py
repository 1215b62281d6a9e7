"""Tests of the media server doubles: the Jellyfin/Emby double (mbdouble.py) refuses every
credential form its kind does not read and every body the protocol does not allow, and the Plex
double runs several instances side by side, empties trash and reports scans in progress. None
of these need the daemon."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import xml.etree.ElementTree as ET

import rig
from mbdouble import LEGACY_AUTH_FORMS, MBDouble, parse_authorization
from plexdouble import PlexDouble
from rig import http_request

KEY = "mb-admin-key-1"
USER_KEY = "mb-user-key-2"
TV = "/srv/media/tv"
MOVIES = "/srv/media/movies"
LIBS = [{"Name": "Shows", "Locations": [TV], "CollectionType": "tvshows"},
        {"Name": "Films", "Locations": [MOVIES, "/srv/more/movies"], "CollectionType": "movies"}]
SHOW = TV + "/Amélie & Co's #1 (2001)/Season 01"


def mb_auth(key, scheme="MediaBrowser"):
    return {"Authorization": '%s Client="test", Device="d", DeviceId="x", Version="1", '
                             'Token="%s"' % (scheme, key)}


def updates_body(*items):
    return json.dumps({"Updates": [{"Path": p, "UpdateType": t} for p, t in items]}).encode()


class MBCase(unittest.TestCase):
    kind = "jellyfin"
    plugin = False

    def setUp(self):
        self.mb = MBDouble(self.kind, token=KEY, user_token=USER_KEY, libraries=LIBS,
                           scan_path_plugin=self.plugin).start()
        self.addCleanup(self.mb.stop)

    def call(self, method, target, headers=None, body=None):
        return http_request(method, self.mb.port, target, headers=headers, body=body)

    def folders(self, headers=None, query="", prefix=""):
        return self.call("GET", prefix + "/Library/VirtualFolders" + query, headers=headers)

    def updated(self, body, headers=None, ctype="application/json", prefix=""):
        h = dict(mb_auth(KEY) if self.kind != "emby" else {"X-Emby-Token": KEY})
        if ctype is not None:
            h["Content-Type"] = ctype
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        return self.call("POST", prefix + "/Library/Media/Updated", headers=h, body=body)

    def good_auth(self, key=KEY):
        return mb_auth(key) if self.kind != "emby" else {"X-Emby-Token": key}


# ---- auth ----------------------------------------------------------------------------------

class AuthTable:
    """Mix-in: each form in ACCEPTED gets 200 on VirtualFolders with the right key and 401 with
    a wrong one; each form in REFUSED gets 401 even with the right key."""

    def form(self, name, key):
        return {
            "authorization:mediabrowser": ({"Authorization": 'MediaBrowser Token="%s"' % key}, ""),
            "authorization:emby": ({"Authorization": 'Emby Token="%s"' % key}, ""),
            "x-emby-authorization": ({"X-Emby-Authorization":
                                      'MediaBrowser Client="c", Token="%s"' % key}, ""),
            "x-emby-token": ({"X-Emby-Token": key}, ""),
            "x-mediabrowser-token": ({"X-MediaBrowser-Token": key}, ""),
            "query:ApiKey": ({}, "?ApiKey=" + urllib.parse.quote(key)),
            "query:api_key": ({}, "?api_key=" + urllib.parse.quote(key)),
        }[name]

    def test_accepted_forms(self):
        for name in self.ACCEPTED:
            with self.subTest(form=name):
                h, q = self.form(name, KEY)
                r = self.folders(h, q)
                self.assertEqual(r.status, 200, (name, r))
                self.assertEqual(self.mb.requests()[-1].auth_form, name)
                h, q = self.form(name, "wrong-key")
                self.assertEqual(self.folders(h, q).status, 401, name)

    def test_refused_forms(self):
        for name in self.REFUSED:
            with self.subTest(form=name):
                h, q = self.form(name, KEY)
                self.assertEqual(self.folders(h, q).status, 401, name)
                self.assertIn(name, self.mb.requests()[-1].auth_forms)

    def test_no_credentials_is_401(self):
        self.assertEqual(self.folders().status, 401)
        self.assertEqual(self.folders({"X-Emby-Token": ""}, "?ApiKey=&api_key=").status, 401)


class JellyfinAuthTest(AuthTable, MBCase):
    kind = "jellyfin"
    ACCEPTED = ("authorization:mediabrowser", "authorization:emby", "x-emby-authorization",
                "x-emby-token", "x-mediabrowser-token", "query:ApiKey", "query:api_key")
    REFUSED = ()

    def test_the_first_form_present_decides(self):
        # a wrong token in Authorization is not rescued by a right X-Emby-Token
        h = dict(mb_auth("wrong"), **{"X-Emby-Token": KEY})
        self.assertEqual(self.folders(h).status, 401)
        # X-Emby-Authorization is read only when there is no Authorization at all
        h = {"Authorization": "Basic eDp5", "X-Emby-Authorization": 'MediaBrowser Token="%s"' % KEY}
        self.assertEqual(self.folders(h).status, 401)
        h["X-Emby-Token"] = KEY
        self.assertEqual(self.folders(h).status, 200)

    def test_legacy_forms_are_noted_even_when_accepted(self):
        self.folders(mb_auth(KEY))
        self.assertFalse(self.mb.legacy_auth_seen)
        self.folders({"X-Emby-Token": KEY})
        self.assertTrue(self.mb.legacy_auth_seen)
        self.mb.clear()
        self.assertFalse(self.mb.legacy_auth_seen)


class Jellyfin12AuthTest(AuthTable, MBCase):
    kind = "jellyfin12"
    ACCEPTED = ("authorization:mediabrowser", "query:ApiKey")
    REFUSED = LEGACY_AUTH_FORMS

    def test_x_emby_token_is_401_and_noted(self):
        r = self.updated(updates_body((SHOW, "Created")))
        self.assertEqual(r.status, 204)
        self.assertFalse(self.mb.legacy_auth_seen)
        r = self.call("POST", "/Library/Media/Updated", body=updates_body((SHOW, "Created")),
                      headers={"X-Emby-Token": KEY, "Content-Type": "application/json"})
        self.assertEqual(r.status, 401)
        self.assertTrue(self.mb.legacy_auth_seen)
        self.assertEqual(self.mb.updates(), [(SHOW, "Created")])

    def test_new_form_with_a_legacy_one_beside_it_is_401(self):
        h = dict(mb_auth(KEY), **{"X-Emby-Token": KEY})
        self.assertEqual(self.folders(h).status, 401)
        self.mb.refuse_mixed_legacy = False
        self.assertEqual(self.folders(h).status, 200)
        self.assertEqual(self.mb.requests()[-1].auth_form, "authorization:mediabrowser")

    def test_emby_scheme_is_not_read(self):
        self.mb.refuse_mixed_legacy = False
        self.assertEqual(self.folders(mb_auth(KEY, scheme="Emby")).status, 401)
        self.assertEqual(self.folders(mb_auth(KEY, scheme="mediabrowser")).status, 200)


class EmbyAuthTest(AuthTable, MBCase):
    kind = "emby"
    ACCEPTED = ("x-emby-token", "query:api_key")
    REFUSED = ("authorization:mediabrowser", "authorization:emby", "x-emby-authorization",
               "x-mediabrowser-token", "query:ApiKey")

    def test_routes_under_emby_prefix(self):
        r = self.folders({"X-Emby-Token": KEY}, prefix="/emby")
        self.assertEqual(r.status, 200)
        self.assertEqual([x["Name"] for x in r.json()], ["Shows", "Films"])
        self.assertTrue(self.mb.requests()[-1].emby_prefix)
        r = self.updated(updates_body((SHOW, "Modified")), prefix="/emby")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.headers.get("Content-Length"), "0")
        self.assertEqual(self.mb.updates(), [(SHOW, "Modified")])
        for t in ("/emby", "/emby/", "/emby/emby/Library/VirtualFolders",
                  "/Emby/Library/VirtualFolders"):
            self.assertEqual(self.call("GET", t, headers={"X-Emby-Token": KEY}).status, 404, t)

    def test_jellyfin_has_no_emby_prefix(self):
        jf = MBDouble("jellyfin", token=KEY, libraries=LIBS).start()
        self.addCleanup(jf.stop)
        r = http_request("GET", jf.port, "/emby/Library/VirtualFolders", headers=mb_auth(KEY))
        self.assertEqual(r.status, 404)


class AuthorizationParsingTest(MBCase):
    def test_parser(self):
        self.assertEqual(parse_authorization('MediaBrowser Client="a, b", Token="t%2Bx"'),
                         ("MediaBrowser", {"Client": "a, b", "Token": "t+x"}))
        self.assertEqual(parse_authorization("MediaBrowser Token=abc"),
                         ("MediaBrowser", {"Token": "abc"}))
        for bad in ('MediaBrowser Token="abc', 'MediaBrowser Token="a"b', 'Token="abc"',
                    "MediaBrowser Token", 'MediaBrowser Token="a", Token="b"', "MediaBrowser",
                    'MediaBrowser ="x"'):
            self.assertIsNone(parse_authorization(bad), bad)

    def test_substring_is_not_enough(self):
        for h in ('MediaBrowser Client="Token=\\"%s\\""' % KEY,   # the key inside another value
                  'MediaBrowser token="%s"' % KEY,                # names are case-sensitive
                  'MediaBrowser Token="%s' % KEY,                 # unterminated
                  'MediaBrowserToken="%s"' % KEY,                 # no scheme
                  'Bearer Token="%s"' % KEY,                      # another scheme
                  'MediaBrowser Token="%s"x' % KEY):              # junk after the quote
            with self.subTest(header=h):
                self.assertEqual(self.folders({"Authorization": h}).status, 401)

    def test_commas_and_spaces_inside_quotes(self):
        h = 'MediaBrowser  Client="a, b=c" ,Device="x y",Token="%s"' % KEY
        self.assertEqual(self.folders({"Authorization": h}).status, 200)

    def test_duplicate_credential_header_is_401(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.mb.port, timeout=10)
        self.addCleanup(c.close)
        c.putrequest("GET", "/Library/VirtualFolders")
        c.putheader("Authorization", 'MediaBrowser Token="%s"' % KEY)
        c.putheader("Authorization", 'MediaBrowser Token="%s"' % KEY)
        c.endheaders()
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 401)


# ---- libraries -----------------------------------------------------------------------------

class VirtualFoldersTest(MBCase):
    def test_shape(self):
        r = self.folders(mb_auth(KEY))
        self.assertEqual(r.status, 200)
        self.assertIn("application/json", r.headers.get("Content-Type"))
        libs = r.json()
        self.assertEqual([(x["Name"], x["Locations"], x["CollectionType"]) for x in libs],
                         [("Shows", [TV], "tvshows"),
                          ("Films", [MOVIES, "/srv/more/movies"], "movies")])
        self.assertTrue(all(isinstance(x["ItemId"], str) and x["ItemId"] for x in libs))
        self.assertNotEqual(libs[0]["ItemId"], libs[1]["ItemId"])

    def test_non_admin_key_gets_403_there_only(self):
        self.assertEqual(self.folders(mb_auth(USER_KEY)).status, 403)
        self.assertIs(self.mb.requests()[-1].admin, False)
        r = self.updated(updates_body((SHOW, "Created")), headers=mb_auth(USER_KEY))
        self.assertEqual(r.status, 204)

    def test_set_libraries(self):
        self.mb.set_libraries([{"Name": "Only", "Locations": ["/x"]}])
        self.assertEqual([x["Name"] for x in self.folders(mb_auth(KEY)).json()], ["Only"])

    def test_only_get(self):
        for m in ("POST", "DELETE", "PUT", "HEAD"):
            r = self.call(m, "/Library/VirtualFolders", headers=mb_auth(KEY))
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.headers.get("Allow"), "GET")


# ---- Media/Updated -------------------------------------------------------------------------

class MediaUpdatedTest(MBCase):
    def test_ok_is_204_and_recorded(self):
        r = self.updated(updates_body((SHOW, "Created"), (MOVIES + "/Heat (1995)", "Deleted")))
        self.assertEqual((r.status, r.body), (204, b""))
        self.assertEqual(self.mb.updates(),
                         [(SHOW, "Created"), (MOVIES + "/Heat (1995)", "Deleted")])
        self.assertEqual(self.mb.protocol_errors(), [])
        rec = self.mb.requests("media_updated")[0]
        self.assertEqual(rec.json["Updates"][0]["Path"], SHOW)
        self.assertEqual(rec.headers["content-type"], "application/json")

    def test_charset_utf8_is_accepted(self):
        r = self.updated(updates_body((SHOW, "Modified")), ctype="application/json; charset=utf-8")
        self.assertEqual(r.status, 204)

    def test_content_type_must_be_json(self):
        for ctype in (None, "text/plain", "application/x-www-form-urlencoded",
                      "application/json; charset=latin-1", "application/jsonx"):
            with self.subTest(ctype=ctype):
                r = self.updated(updates_body((SHOW, "Created")), ctype=ctype)
                self.assertEqual(r.status, 415)
        self.assertEqual(len(self.mb.protocol_errors()), 5)
        self.assertEqual(self.mb.updates(ok_only=False), [])

    def test_bad_bodies_are_400_protocol_errors(self):
        bad = [
            b"", b"{", b"not json", b"[]", b"null",
            b'{"Updates": []}',
            b'{"Updates": {"Path": "/x", "UpdateType": "Created"}}',
            b'{"updates": [{"Path": "/x", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "Created"}], "Extra": 1}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "Created", "ItemId": "1"}]}',
            b'{"Updates": [{"Path": "/x"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "created"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "Renamed"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": 0}]}',
            b'{"Updates": [{"Path": "x/y", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x/", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x//y", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x/../y", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": null, "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x", "Path": "/y", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "Created"}]} trailing',
            b'\xef\xbb\xbf{"Updates": [{"Path": "/x", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/\xff", "UpdateType": "Created"}]}',
            b'{"Updates": [{"Path": "/x", "UpdateType": "Created"}], "n": NaN}',
        ]
        for body in bad:
            with self.subTest(body=body):
                self.assertEqual(self.updated(body).status, 400)
        self.assertEqual(len(self.mb.protocol_errors()), len(bad))
        self.assertTrue(all(r.error for r, _ in self.mb.protocol_errors()))
        self.assertEqual(self.mb.updates(ok_only=False), [])

    def test_update_types(self):
        for t in ("Created", "Modified", "Deleted"):
            self.assertEqual(self.updated(updates_body((SHOW, t))).status, 204)
        self.assertEqual([u[1] for u in self.mb.updates()], ["Created", "Modified", "Deleted"])

    def test_chunked_body_is_read(self):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.mb.port, timeout=10)
        self.addCleanup(c.close)
        c.request("POST", "/Library/Media/Updated", body=iter([updates_body((SHOW, "Created"))]),
                  headers=dict(mb_auth(KEY), **{"Content-Type": "application/json"}),
                  encode_chunked=True)
        r = c.getresponse()
        r.read()
        self.assertEqual(r.status, 204)
        self.assertEqual(self.mb.updates(), [(SHOW, "Created")])

    def test_auth_before_body(self):
        r = self.updated(b"junk", headers={"Authorization": 'MediaBrowser Token="no"'})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.mb.protocol_errors(), [])

    def test_only_post(self):
        r = self.call("GET", "/Library/Media/Updated", headers=mb_auth(KEY))
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers.get("Allow"), "POST")


class RoutesTest(MBCase):
    def test_unknown_routes_are_404(self):
        for t in ("/", "/Library", "/Library/VirtualFolders/", "/library/virtualfolders",
                  "//Library/VirtualFolders", "/Library/Media/Updated/x", "/Library/Refresh",
                  "/Library/ScanPaths", "/Items"):
            self.assertEqual(self.call("GET", t, headers=mb_auth(KEY)).status, 404, t)

    def test_base_path(self):
        mb = MBDouble("jellyfin12", token=KEY, libraries=LIBS, base_path="/jellyfin").start()
        self.addCleanup(mb.stop)
        self.assertTrue(mb.url.endswith(":%d/jellyfin" % mb.port))
        self.assertEqual(http_request("GET", mb.port, "/jellyfin/Library/VirtualFolders",
                                      headers=mb_auth(KEY)).status, 200)
        self.assertEqual(http_request("GET", mb.port, "/Library/VirtualFolders",
                                      headers=mb_auth(KEY)).status, 404)
        self.assertEqual(http_request("GET", mb.port, "/jellyfin//Library/VirtualFolders",
                                      headers=mb_auth(KEY)).status, 404)

    def test_hook_may_override(self):
        self.mb.hook = lambda rec: 418 if rec.route == "media_updated" else None
        self.assertEqual(self.updated(updates_body((SHOW, "Created"))).status, 418)
        self.assertEqual(self.folders(mb_auth(KEY)).status, 200)


# ---- the Targeted Scans plugin -------------------------------------------------------------

class ScanPathWithoutPluginTest(MBCase):
    plugin = False

    def test_404_with_empty_body(self):
        for h in (mb_auth(KEY), {}):
            r = self.call("POST", "/Library/ScanPath", body=json.dumps({"Path": SHOW}).encode(),
                          headers=dict(h, **{"Content-Type": "application/json"}))
            self.assertEqual((r.status, r.body), (404, b""))
        self.assertEqual(self.mb.scan_paths(ok_only=False), [])


class ScanPathPluginTest(MBCase):
    plugin = True

    def scan(self, body, key=KEY, ctype="application/json"):
        h = dict(mb_auth(key))
        if ctype:
            h["Content-Type"] = ctype
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        return self.call("POST", "/Library/ScanPath", headers=h, body=body)

    def test_created_then_refreshed(self):
        r = self.scan({"Path": SHOW})
        self.assertEqual(r.status, 200)
        j = r.json()
        self.assertEqual(j["Status"], "Created")
        self.assertEqual(j["ItemName"], "Season 01")
        self.assertTrue(j["ItemId"])
        self.assertIsInstance(j["Message"], str)
        self.assertEqual(self.scan({"Path": SHOW}).json()["Status"], "Refreshed")
        self.assertEqual(self.scan({"Path": TV}).json()["Status"], "Refreshed")
        self.assertEqual(self.mb.scan_paths(), [SHOW, SHOW, TV])

    def test_outside_every_library_is_404_path_not_found(self):
        for p in ("/srv/media/tvx/Show", "/elsewhere"):
            r = self.scan({"Path": p})
            self.assertEqual(r.status, 404)
            self.assertEqual(r.json()["Status"], "PathNotFound")
        self.assertEqual(self.mb.scan_paths(), [])
        self.assertEqual([x[1:] for x in self.mb.scan_results()], [(404, "PathNotFound")] * 2)

    def test_library_id(self):
        lib = self.folders(mb_auth(KEY)).json()[1]
        self.assertEqual(self.scan({"Path": MOVIES + "/Heat", "LibraryId": lib["ItemId"]}).status,
                         200)
        r = self.scan({"Path": SHOW, "LibraryId": lib["ItemId"]})  # not that library's path
        self.assertEqual((r.status, r.json()["Status"]), (404, "PathNotFound"))
        self.assertEqual(self.scan({"Path": SHOW, "LibraryId": "nope"}).status, 400)

    def test_forced_statuses(self):
        self.mb.force_scan_status("ParentNotFound")
        self.mb.force_scan_status("Failed")
        r = self.scan({"Path": SHOW})
        self.assertEqual((r.status, r.json()["Status"]), (404, "ParentNotFound"))
        r = self.scan({"Path": SHOW})
        self.assertEqual((r.status, r.json()["Status"]), (200, "Failed"))
        self.assertEqual(self.mb.scan_paths(), [])
        self.assertEqual(self.scan({"Path": SHOW}).json()["Status"], "Created")

    def test_strict_body_and_auth(self):
        for body in ({"path": SHOW}, {"Path": SHOW, "Recursive": True}, {"Paths": [SHOW]},
                     {"Path": SHOW + "/"}, {"Path": 1}, b"{"):
            self.assertEqual(self.scan(body).status, 400, body)
        self.assertEqual(self.scan({"Path": SHOW}, ctype=None).status, 415)
        self.assertEqual(self.scan({"Path": SHOW}, key="wrong").status, 401)
        self.assertEqual(self.scan({"Path": SHOW}, key=USER_KEY).status, 200)
        self.assertEqual(len(self.mb.protocol_errors()), 7)


# ---- knobs ---------------------------------------------------------------------------------

class KnobsTest(MBCase):
    def test_fail_next_then_success(self):
        self.mb.fail_next(2, 503)
        b = updates_body((SHOW, "Created"))
        self.assertEqual([self.updated(b).status for _ in range(3)], [503, 503, 204])
        self.assertEqual(self.mb.updates(), [(SHOW, "Created")])
        self.assertEqual(len(self.mb.updates(ok_only=False)), 3)
        # the library list is not failed unless asked
        self.mb.fail_next(1, 500, route="virtual_folders")
        self.assertEqual(self.folders(mb_auth(KEY)).status, 500)
        self.assertEqual(self.folders(mb_auth(KEY)).status, 200)

    def test_fail_until_cleared(self):
        self.mb.fail_until_cleared(429)
        b = updates_body((SHOW, "Created"))
        self.assertEqual([self.updated(b).status for _ in range(4)], [429] * 4)
        self.mb.clear_failures()
        self.assertEqual(self.updated(b).status, 204)

    def test_refuse_auth_until_accepted(self):
        self.mb.refuse_auth()
        self.assertEqual(self.folders(mb_auth(KEY)).status, 401)
        self.assertEqual(self.updated(updates_body((SHOW, "Created"))).status, 401)
        self.mb.accept_auth()
        self.assertEqual(self.folders(mb_auth(KEY)).status, 200)

    def test_switch_token(self):
        self.mb.set_token("new-key")
        self.assertEqual(self.folders(mb_auth(KEY)).status, 401)
        self.assertEqual(self.folders(mb_auth("new-key")).status, 200)
        self.mb.set_user_token(None)
        self.assertEqual(self.folders(mb_auth(USER_KEY)).status, 401)

    def test_slow_answers_overlap(self):
        self.mb.delay = 1.0
        results = []

        def one(i):
            results.append(self.updated(updates_body(("%s/S%d" % (TV, i), "Created"))).status)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        elapsed = time.monotonic() - t0
        self.assertEqual(results, [204] * 4)
        self.assertEqual(self.mb.max_concurrent_scans, 4)
        self.assertGreaterEqual(elapsed, 1.0)
        self.assertLess(elapsed, 3.5)

    def test_slow_library_list(self):
        self.mb.library_delay = 0.5
        t0 = time.monotonic()
        self.assertEqual(self.folders(mb_auth(KEY)).status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)

    def test_wait_requests_wakes(self):
        threading.Timer(0.2, lambda: self.updated(updates_body((SHOW, "Created")))).start()
        got = self.mb.wait_requests(1, route="media_updated", timeout=10)
        self.assertEqual([r.status for r in got], [204])
        self.assertEqual(self.mb.wait_requests(5, timeout=0.2), [])

    def test_down_then_up_on_the_same_port(self):
        port = self.mb.port
        self.mb.set_down()
        self.assertFalse(rig.port_open(port))
        self.mb.set_up()
        self.assertEqual(self.mb.port, port)
        self.assertEqual(self.folders(mb_auth(KEY)).status, 200)

    def test_script_mode(self):
        port = rig.free_port()
        p = subprocess.Popen([sys.executable, os.path.join(rig.HERE, "mbdouble.py"), "--kind",
                              "emby", "--port", str(port), "--token", KEY],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertEqual(p.stdout.readline().strip(), "listening on 127.0.0.1:%d" % port)
        r = http_request("POST", port, "/emby/Library/Media/Updated",
                         body=updates_body((SHOW, "Created")),
                         headers={"X-Emby-Token": KEY, "Content-Type": "application/json"})
        self.assertEqual(r.status, 200)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(json.loads(out.strip().splitlines()[-1])["media_updated_ok"], 1)


# ---- Plex: several servers, empty trash, refreshing ----------------------------------------

def plex_get(plex, target, token, method="GET", accept="application/json"):
    h = {"Accept": accept}
    if token is not None:
        h["X-Plex-Token"] = token
    return http_request(method, plex.port, target, headers=h)


class PlexSideBySideTest(unittest.TestCase):
    def setUp(self):
        self.a = rig.start_plex_double(sections=[{"key": "1", "type": "show", "title": "TV",
                                                  "locations": ["/a/tv"]}])
        self.b = rig.start_plex_double(sections=[{"key": "4", "type": "movie", "title": "Films",
                                                  "locations": ["/b/movies"]}])
        self.addCleanup(self.a.stop)
        self.addCleanup(self.b.stop)

    def test_own_tokens_sections_and_identifiers(self):
        a, b = self.a, self.b
        self.assertNotEqual(a.token, b.token)
        self.assertNotEqual(a.port, b.port)
        ida = plex_get(a, "/identity", None).json()["MediaContainer"]["machineIdentifier"]
        idb = plex_get(b, "/identity", None).json()["MediaContainer"]["machineIdentifier"]
        self.assertNotEqual(ida, idb)
        self.assertEqual(ida, a.machine_identifier)
        self.assertEqual(plex_get(a, "/library/sections", b.token).status, 401)
        self.assertEqual(plex_get(b, "/library/sections", a.token).status, 401)
        keys = [d["key"] for d in
                plex_get(b, "/library/sections", b.token).json()["MediaContainer"]["Directory"]]
        self.assertEqual(keys, ["4"])
        self.assertEqual(plex_get(a, "/library/sections/1/refresh?path=%2Fa%2Ftv%2FX",
                                  a.token).status, 200)
        self.assertEqual(plex_get(b, "/library/sections/1/refresh?path=%2Fa%2Ftv%2FX",
                                  b.token).status, 404)
        self.assertEqual(len(a.scans(path="/a/tv/X")), 1)
        self.assertEqual(b.scans(), [])

    def test_default_identifier_is_unchanged(self):
        p = PlexDouble()
        self.assertEqual(p.machine_identifier, PlexDouble.IDENTIFIER)


class PlexEmptyTrashTest(unittest.TestCase):
    def setUp(self):
        self.plex = rig.start_plex_double(sections=[
            {"key": "1", "type": "show", "title": "TV", "locations": ["/d/tv"]},
            {"key": "2", "type": "movie", "title": "Movies", "locations": ["/d/movies"],
             "refreshing": True}])
        self.addCleanup(self.plex.stop)
        self.tok = self.plex.token

    def trash(self, section, token=True, method="PUT"):
        return plex_get(self.plex, "/library/sections/%s/emptyTrash" % section,
                        self.tok if token else None, method=method)

    def test_put_is_200_empty_and_recorded(self):
        r = self.trash(1)
        self.assertEqual((r.status, r.body), (200, b""))
        recs = self.plex.empty_trashes()
        self.assertEqual([(x.section, x.status, x.method) for x in recs], [("1", 200, "PUT")])
        self.assertIs(recs[0].section_refreshing, False)
        self.assertEqual(self.plex.empty_trashes(section=1, status=200), recs)
        self.assertEqual(self.plex.refreshes(), [])

    def test_refusals(self):
        self.assertEqual(self.trash(1, token=False).status, 401)
        self.assertEqual(self.trash(99).status, 404)
        for m in ("GET", "POST", "DELETE"):
            r = self.trash(1, method=m)
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.headers.get("Allow"), "PUT")
        self.assertEqual(self.plex.empty_trashes(status=200), [])
        self.assertEqual(len(self.plex.empty_trashes()), 5)

    def test_records_the_section_refreshing(self):
        self.assertEqual(self.trash(2).status, 200)
        self.assertIs(self.plex.empty_trashes(section=2)[0].section_refreshing, True)

    def test_fail_next_for_empty_trash_only(self):
        self.plex.fail_next(1, 500, route="empty_trash")
        self.assertEqual(plex_get(self.plex, "/library/sections/1/refresh?path=%2Fd%2Ftv%2Fx",
                                  self.tok).status, 200)
        self.assertEqual([self.trash(1).status, self.trash(1).status], [500, 200])


class PlexRefreshingTest(unittest.TestCase):
    def setUp(self):
        self.plex = rig.start_plex_double(sections=[
            {"key": "1", "type": "show", "title": "TV", "locations": ["/d/tv"]},
            {"key": "2", "type": "movie", "title": "Movies", "locations": ["/d/movies"]}])
        self.addCleanup(self.plex.stop)

    def flags(self):
        """(JSON flags, XML flags) by section key: two polls."""
        j = plex_get(self.plex, "/library/sections", self.plex.token).json()
        x = ET.fromstring(plex_get(self.plex, "/library/sections", self.plex.token,
                                   accept="*/*").body)
        return ({d["key"]: d["refreshing"] for d in j["MediaContainer"]["Directory"]},
                {d.get("key"): d.get("refreshing") for d in x.findall("Directory")})

    def test_flag_in_json_and_xml(self):
        self.assertEqual(self.flags(), ({"1": False, "2": False}, {"1": "0", "2": "0"}))
        self.plex.set_refreshing(2)
        self.assertEqual(self.flags(), ({"1": False, "2": True}, {"1": "0", "2": "1"}))
        self.assertTrue(self.plex.refreshing("2"))
        self.plex.set_refreshing(2, False)
        self.assertEqual(self.flags(), ({"1": False, "2": False}, {"1": "0", "2": "0"}))

    def test_flips_after_n_polls(self):
        self.plex.set_refreshing("1", polls=3)
        seen = []
        for _ in range(5):
            j = plex_get(self.plex, "/library/sections", self.plex.token).json()
            seen.append(j["MediaContainer"]["Directory"][0]["refreshing"])
        self.assertEqual(seen, [True, True, True, False, False])
        self.assertEqual(self.plex.section_polls, 5)
        # a refused poll does not count
        self.plex.set_refreshing("1", polls=1)
        self.assertEqual(plex_get(self.plex, "/library/sections", "wrong").status, 401)
        self.assertTrue(self.plex.refreshing("1"))

    def test_a_scan_sets_refreshing_for_n_polls(self):
        self.plex.scan_sets_refreshing = 2
        self.assertEqual(plex_get(self.plex, "/library/sections/2/refresh?path=%2Fd%2Fmovies%2Fx",
                                  self.plex.token).status, 200)
        self.assertEqual(self.flags(), ({"1": False, "2": True}, {"1": "0", "2": "1"}))
        self.assertEqual(self.flags(), ({"1": False, "2": False}, {"1": "0", "2": "0"}))

    def test_refreshing_in_plex_json_input(self):
        self.plex.set_sections({"MediaContainer": {"Directory": [
            {"key": "5", "type": "show", "title": "T", "refreshing": True,
             "Location": [{"path": "/t"}]}]}})
        self.assertEqual(self.flags(), ({"5": True}, {"5": "1"}))


# ---- rig helpers ---------------------------------------------------------------------------

class RigTargetHelpersTest(unittest.TestCase):
    def test_media_servers_json_and_shorthand(self):
        p = rig.start_plex_double()
        jf = rig.start_mb_double("jellyfin12", libraries=LIBS)
        em = rig.start_mb_double("emby")
        for d in (p, jf, em):
            self.addCleanup(d.stop)
        self.assertEqual(len({p.token, jf.token, em.token}), 3)
        v = json.loads(rig.media_servers_json([
            ("plex2", p),
            rig.media_server("jf", jf, path_replacements={"/host": "/jf"}, scan_path=True),
            rig.media_server("em", em, token_file="/run/secrets/emby")]))
        self.assertEqual(v, [
            {"name": "plex2", "type": "plex", "url": p.url, "token": p.token},
            {"name": "jf", "type": "jellyfin", "url": jf.url, "token": jf.token,
             "path_replacements": {"/host": "/jf"}, "scan_path": True},
            {"name": "em", "type": "emby", "url": em.url, "token_file": "/run/secrets/emby"}])
        self.assertEqual(rig.target_env(jf), {"JELLYFIN_URL": jf.url, "JELLYFIN_TOKEN": jf.token})
        self.assertEqual(rig.target_env(em, path_replacements={"/a": "/b"}),
                         {"EMBY_URL": em.url, "EMBY_TOKEN": em.token,
                          "EMBY_PATH_REPLACEMENTS": '{"/a": "/b"}'})
        self.assertEqual(rig.target_env(p), {"PLEX_URL": p.url, "PLEX_TOKEN": p.token})
        with self.assertRaises(TypeError):
            rig.server_type(object())

    def test_rig_test_case_adds_doubles(self):
        seen = {}

        class Case(rig.RigTestCase):
            use_rclone = False

            def runTest(self):
                p2, jf, em = self.add_doubles("plex", ("jellyfin", {"scan_path_plugin": True}),
                                              "emby")
                seen["doubles"] = (p2, jf, em)
                self.assertEqual(self.doubles, [p2, jf, em])
                self.assertTrue(jf.scan_path_plugin)
                self.assertEqual([lib["Locations"] for lib in jf.libraries()],
                                 [[self.tv], [self.movies]])
                self.assertEqual(p2.requests(), [])
                self.assertNotEqual(p2.token, self.plex.token)
                env = self.media_servers_env([("p2", p2), ("jf", jf), ("em", em)])
                self.assertIsNone(env["PLEX_URL"])
                self.assertEqual([e["type"] for e in json.loads(env["MEDIA_SERVERS"])],
                                 ["plex", "jellyfin", "emby"])
                daemon_env = self.daemon_env(**env)
                self.assertNotIn("PLEX_URL", daemon_env)
                self.assertIn("MEDIA_SERVERS", daemon_env)
                path = self.tv + "/S"
                r = http_request("POST", jf.port, "/Library/Media/Updated",
                                 body=updates_body((path, "Created")),
                                 headers=dict(mb_auth(jf.token),
                                              **{"Content-Type": "application/json"}))
                self.assertEqual(r.status, 204)
                self.assertEqual(self.wait_updates(jf, path, timeout=5), [(path, "Created")])
                self.assertEqual(self.wait_updates(jf, path, n=2, timeout=0.2), [])

        result = unittest.TestResult()
        Case().run(result)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        self.assertFalse(any(d.running for d in seen["doubles"]))


if __name__ == "__main__":
    unittest.main()
