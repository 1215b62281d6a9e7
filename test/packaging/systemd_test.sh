#!/usr/bin/env bash
# systemd_test.sh: the .deb under a real systemd (Debian 12 booted with systemd-nspawn --boot).
#   sudo test/packaging/systemd_test.sh BUILD_DIR
# BUILD_DIR is a configured build tree: `cpack -G DEB` runs in it. A Debian 12 root filesystem
# (debootstrap from the mirror in this machine's apt configuration) and the .deb of the previous
# build are cached in $PSS_TEST_CACHE (default /var/cache/plex-servarr-sync-test); each run boots
# copies of the root filesystem, so the cache stays as debootstrap left it.
#
# Checks, with a Plex double (test/integration/plexdouble.py) running inside the container:
#   fresh install: `apt-get install ./x.deb` makes the static system user, the env file
#   root:plex-servarr-sync 0640, nothing started; `systemctl enable --now` reaches active
#   through READY=1 with the queue on the Status line; the sandbox the daemon sees;
#   `systemd-analyze security` at most $MAX_EXPOSURE; a webhook reaches the Plex double;
#   `systemctl reload` keeps MainPID and applies the file; a queued folder survives a restart,
#   the watchdog (SIGSTOP: "Watchdog timeout", a new MainPID) and a reboot of the container;
#   an upgrade (new version of the same tree) keeps the edited env file and the queue;
#   `systemctl stop` gives Result=success; remove keeps the state; purge removes it.
#   upgrade from the previous build (its unit enabled and failing, its state in DynamicUser's
#   /var/lib/private layout): the new package starts it, keeps the env file and the queue.
# Every check prints ok:/FAIL:; a failing unit prints the last lines of its journal. Not root, a
# missing tool or no reachable mirror is a FAIL (exit 1), never a silent pass.
set -uo pipefail

build=${1:?usage: systemd_test.sh BUILD_DIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${PSS_TEST_CACHE:-/var/cache/plex-servarr-sync-test}
# The last commit before the static user: its package is "the previous build" of the upgrade check.
OLD_COMMIT=${PSS_TEST_OLD_COMMIT:-8357ea1732f05d65ed99ad54ad9508c28718da74}
SUITE=bookworm
INCLUDE=systemd,systemd-sysv,dbus,libuv1,libcurl4,libcjson1,libsqlite3-0,libsystemd0,adduser,python3,curl,ca-certificates
PKG=plex-servarr-sync
UNIT=$PKG.service
CONF=/etc/$PKG/$PKG.env
STATE=/var/lib/$PKG
TOKEN=pkg-test-token-7Qe2
MANUAL=admin:pkg-test-pass-Lw4
MAX_EXPOSURE=1.4

passed=0
failed=0
ok() { echo "ok:   $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
summary() { echo "$passed passed, $failed failed"; }
# die REASON: a failure the rest cannot go on from.
die() {
  fail "$*"
  summary
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and systemd-nspawn need it)"
for tool in debootstrap systemd-nspawn nsenter flock dpkg-deb cmake cpack git python3 setsid; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not installed (apt-get install debootstrap systemd-container dpkg-dev cmake git python3)"
done
build=$(cd "$build" && pwd) || die "no build tree $1"
[ -f "$build/CMakeCache.txt" ] || die "$build is not a configured build tree"

# The Debian mirror this machine's apt uses (deb822 .sources first, then sources.list).
mirror() {
  if [ -n "${PSS_TEST_MIRROR:-}" ]; then
    echo "$PSS_TEST_MIRROR"
    return
  fi
  local m=
  if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
    m=$(awk 'BEGIN { RS = "" }
      $0 ~ /(^|\n)Suites:[^\n]*[ \t]'"$SUITE"'([ \t\n]|$)/ && match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/) {
        s = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", s); print s; exit }' \
      /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 ~ /[ \t]'"$SUITE"'[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' /etc/apt/sources.list)
  fi
  echo "$m"
}

mkdir -p "$CACHE" || die "cannot create the cache $CACHE"
work=$(mktemp -d "$CACHE/run.XXXXXX") || die "cannot create a work directory in $CACHE"
declare -a nspawn_pids=()
cleanup() {
  local p
  for p in "${nspawn_pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the cached root filesystem and the previous build's package ----------------------------
exec 9>"$CACHE/systemd-test.lock"
flock -w 1800 9 || die "another run holds $CACHE/systemd-test.lock"

key=$(printf '%s minbase %s\n' "$SUITE" "$INCLUDE" | sha256sum | cut -c1-12)
rootfs=$CACHE/rootfs-$key
if [ ! -d "$rootfs" ]; then
  m=$(mirror)
  [ -n "$m" ] || die "no Debian mirror in /etc/apt (set PSS_TEST_MIRROR): cannot debootstrap"
  echo "      debootstrap $SUITE from $m into $rootfs (about a minute)"
  rm -rf "$rootfs.tmp"
  if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$rootfs.tmp" "$m" \
      >"$work/debootstrap.log" 2>&1; then
    tail -20 "$work/debootstrap.log"
    rm -rf "$rootfs.tmp"
    die "debootstrap failed (is the mirror $m reachable?)"
  fi
  rm -f "$rootfs.tmp/var/cache/apt/archives/"*.deb
  mv "$rootfs.tmp" "$rootfs"
fi
ok "Debian 12 root filesystem: $rootfs"

# repack IN OUT VERSION: the same package with another Version (an upgrade needs a newer one).
repack() {
  local d
  d=$(mktemp -d -p "$work")
  dpkg-deb -R "$1" "$d/x" && sed -i "s/^Version: .*/Version: $3/" "$d/x/DEBIAN/control" &&
    dpkg-deb --root-owner-group -b "$d/x" "$2" >/dev/null
  local rc=$?
  rm -rf "$d"
  return $rc
}

(cd "$build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  die "cpack -G DEB failed in $build"
}
debs=("$work"/out/*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || die "expected one .deb, got: ${debs[*]}"
version=$(dpkg-deb -f "${debs[0]}" Version)
repack "${debs[0]}" "$work/new1.deb" "$version+pkgtest1" || die "cannot repack the .deb"
repack "${debs[0]}" "$work/new2.deb" "$version+pkgtest2" || die "cannot repack the .deb"
ok "built $(basename "${debs[0]}") (tested as $version+pkgtest1, upgraded to $version+pkgtest2)"

old_note="the previous build (commit ${OLD_COMMIT:0:8})"
old_deb=
if git -C "$src" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null; then
  old_dir=$CACHE/deb-$OLD_COMMIT
  if ! ls "$old_dir"/*.deb >/dev/null 2>&1; then
    echo "      building the package of commit $OLD_COMMIT (cached afterwards)"
    rm -rf "$work/old" && mkdir -p "$work/old/src"
    if git -C "$src" archive "$OLD_COMMIT" | tar -x -C "$work/old/src" &&
      cmake -S "$work/old/src" -B "$work/old/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        >"$work/old.log" 2>&1 &&
      cmake --build "$work/old/build" -j2 >>"$work/old.log" 2>&1 &&
      (cd "$work/old/build" && cpack -G DEB -B "$work/old/out") >>"$work/old.log" 2>&1; then
      mkdir -p "$old_dir.tmp" && cp "$work"/old/out/*.deb "$old_dir.tmp/" && mv "$old_dir.tmp" "$old_dir"
    else
      tail -30 "$work/old.log"
      die "cannot build the package of commit $OLD_COMMIT"
    fi
  fi
  old_deb=$(ls "$old_dir"/*.deb | head -1)
else
  old_note="the current tree as an older version"
  echo "      NOTE: commit $OLD_COMMIT is not in this clone: the upgrade check starts from $old_note"
  repack "${debs[0]}" "$work/old.deb" "${version}~pkgtest0" || die "cannot repack the .deb"
  old_deb=$work/old.deb
fi
ok "previous package: $(basename "$old_deb") ($old_note)"

# copy NAME: a private copy of the cached root filesystem, with the test's files in it.
copy() {
  local r=$work/$1
  cp -a --reflink=auto "$rootfs" "$r" || die "cannot copy $rootfs"
  cp "$work/new1.deb" "$work/new2.deb" "$r/root/"
  cp "$old_deb" "$r/root/old.deb"
  cp "$src/test/integration/plexdouble.py" "$src/test/integration/doublebase.py" "$r/root/"
  echo '[{"key": "2", "type": "show", "title": "TV", "locations": ["/data/tv"]}]' >"$r/root/sections.json"
  python3 - "$src/test/fixtures/sonarr-download.json" "$r/root" <<'EOF' || die "cannot write the webhook payloads"
import json, sys
fixture, out = sys.argv[1], sys.argv[2]
for name, show in (("hook-a", "Show A"), ("hook-b", "Show B"), ("hook-c", "Show C")):
    p = json.load(open(fixture, encoding="utf-8"))
    p["series"]["path"] = "/data/tv/" + show
    p["episodeFile"]["relativePath"] = "Season 01/" + show + " - S01E01.mkv"
    p["episodeFile"]["path"] = p["series"]["path"] + "/" + p["episodeFile"]["relativePath"]
    json.dump(p, open("%s/%s.json" % (out, name), "w", encoding="utf-8"))
EOF
  cat >"$r/etc/systemd/system/plex-double.service" <<EOF
[Unit]
Description=Plex double for the package test
Before=$UNIT

[Service]
ExecStart=/usr/bin/python3 /root/plexdouble.py --port 32400 --token $TOKEN --sections /root/sections.json --log
StandardOutput=append:/root/plex-double.log

[Install]
WantedBy=multi-user.target
EOF
  mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
  ln -s /etc/systemd/system/plex-double.service "$r/etc/systemd/system/multi-user.target.wants/"
}

# ---- the booted container ---------------------------------------------------------------------
ct_root=
ct_name=
ct_pid=    # the nspawn process
ct_init=   # the container's PID 1, as the host sees it

# in_ct COMMAND...: run COMMAND inside the booted container.
in_ct() {
  nsenter -t "$ct_init" -m -u -i -n -p -C -r -w env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    SYSTEMD_PAGER= COLUMNS=200 DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "$@"
}
# wait_until SECONDS COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_until() {
  local end=$((SECONDS + $1))
  shift
  while ! "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.2
  done
}
journal() {
  echo "----- journalctl -u $UNIT -n 50 -----"
  in_ct journalctl -u "$UNIT" -n 50 --no-pager 2>&1
  echo "-------------------------------------"
}
# unit_ok WHAT: ok when the unit is active, else FAIL with its journal.
unit_ok() {
  local st
  st=$(in_ct systemctl is-active "$UNIT" 2>/dev/null)
  if [ "$st" = active ]; then
    ok "$1"
  else
    fail "$1: the unit is $st"
    in_ct systemctl status --no-pager "$UNIT" 2>&1 | head -20
    journal
    return 1
  fi
}
prop() { in_ct systemctl show -p "$1" --value "$UNIT" 2>/dev/null; }
# The container's init: the child of the nspawn process that runs systemd (PID 1 inside). Right
# after the start that child can still be nspawn's own helper, so it is looked up again until
# the process found is systemd.
find_init() {
  local pid
  ct_init=
  for pid in $(ps -o pid= --ppid "$ct_pid"); do
    if [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = systemd ]; then
      ct_init=$pid
      return 0
    fi
  done
  return 1
}
system_up() {
  local s
  if [ -z "$ct_init" ] || [ "$(ps -o comm= -p "$ct_init" 2>/dev/null)" != systemd ]; then
    find_init || return 1
  fi
  s=$(in_ct systemctl is-system-running 2>/dev/null)
  last_state=${s:-no answer}
  [ "$s" = running ] || [ "$s" = degraded ]
}
boot() {
  ct_root=$1
  ct_name=$2
  setsid systemd-nspawn --register=no --keep-unit --private-network -M "$ct_name" -D "$ct_root" \
    --boot --console=read-only </dev/null >>"$work/$ct_name.log" 2>&1 &
  ct_pid=$!
  nspawn_pids+=("$ct_pid")
  ct_init=
  last_state="not started"
  if ! wait_until 180 system_up; then
    tail -30 "$work/$ct_name.log"
    die "the container $ct_name did not boot (init: ${ct_init:-not found}; is-system-running: $last_state)"
  fi
}
# shutdown_ct [reboot]: end the container (a reboot of it ends the nspawn process too).
shutdown_ct() {
  in_ct systemctl "${1:-poweroff}" >/dev/null 2>&1
  local end=$((SECONDS + 120))
  while kill -0 "$ct_pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  if kill -0 "$ct_pid" 2>/dev/null; then
    fail "the container did not shut down within 120 s"
    kill -KILL "$ct_pid" 2>/dev/null
  fi
  wait "$ct_pid" 2>/dev/null
}
# api PATH [PORT]: GET an API page with the web page's credentials.
api() { in_ct curl -sS --max-time 10 -u "$MANUAL" "http://127.0.0.1:${2:-5000}$1"; }
hook() { # hook NAME [PORT]: POST /root/NAME.json to /webhook/sonarr; prints the HTTP status.
  in_ct curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@/root/$1.json" "http://127.0.0.1:${2:-5000}/webhook/sonarr"
}
queued() { api /api/queue "${2:-5000}" | grep -qF "$1"; }
plex_saw() { grep -qF "path=$1" "$ct_root/root/plex-double.log" 2>/dev/null; }
health() { in_ct curl -sf --max-time 5 "http://127.0.0.1:${1:-5000}/health"; }
# configure ENV_LINES: append settings to the env file (an admin's edit; owner and mode stay).
configure() { printf '%s\n' "$@" >>"$ct_root$CONF"; }
main_pid() { prop MainPID; }
new_main_pid() { local p; p=$(main_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ]; }
journal_has() { in_ct journalctl -u "$UNIT" --no-pager 2>/dev/null | grep -qF "$1"; }
apt_install() { in_ct apt-get install -y -o Dpkg::Options::=--force-confold "$1" >>"$work/apt.log" 2>&1; }
sha() { sha256sum "$ct_root$CONF" | cut -d' ' -f1; }
owner_mode() { in_ct stat -c '%U:%G %a' "$1" 2>/dev/null; }

copy fresh
copy upgrade
r1=$work/fresh
r2=$work/upgrade
flock -u 9
exec 9>&-

# ==== 1. a fresh install =======================================================================
echo "---- fresh install, $(date -u +%T)"
boot "$r1" "pss-fresh-$$"
if apt_install /root/new1.deb; then ok "apt-get install ./$(basename "${debs[0]}") (no network)"; else
  tail -20 "$work/apt.log"; die "apt-get install of the package failed"; fi

pw=$(in_ct getent passwd "$PKG")
uid=$(echo "$pw" | cut -d: -f3)
if [ -n "$pw" ] && [ "$uid" -lt 1000 ] && [ "$(echo "$pw" | cut -d: -f6)" = "$STATE" ] &&
  [ "$(echo "$pw" | cut -d: -f7)" = /usr/sbin/nologin ] &&
  [ "$(in_ct id -gn "$PKG" 2>/dev/null)" = "$PKG" ]; then
  ok "system user $PKG (uid $uid, group $PKG, home $STATE, no login)"
else
  fail "no proper system user $PKG: '$pw', group '$(in_ct id -gn "$PKG" 2>&1)'"
fi
[ "$(owner_mode "$CONF")" = "root:$PKG 640" ] && ok "$CONF root:$PKG 0640" ||
  fail "$CONF is $(owner_mode "$CONF")"
st=$(in_ct systemctl is-enabled "$UNIT" 2>/dev/null)
act=$(in_ct systemctl is-active "$UNIT" 2>/dev/null)
[ "$st" = disabled ] && [ "$act" = inactive ] && ok "a first install neither enables nor starts the unit" ||
  fail "after the first install the unit is $st and $act"

configure "PLEX_URL=http://127.0.0.1:32400" "PLEX_TOKEN=$TOKEN" "USE_RCLONE=false" \
  "WEBHOOK_DELAY=1s" "MANUAL_USER=${MANUAL%%:*}" "MANUAL_PASS=${MANUAL#*:}" "BIND_ADDRESS=127.0.0.1"
if in_ct systemctl enable --now "$UNIT" >>"$work/systemctl.log" 2>&1; then
  ok "systemctl enable --now $UNIT"
else
  fail "systemctl enable --now $UNIT failed"
fi
# A unit that does not start makes every later check fail: stop here, its journal is above.
unit_ok "active (running) after enable --now" || die "the unit does not start"
[ "$(prop SubState)" = running ] && [ "$(prop Type)" = notify ] && ok "SubState running, Type=notify: READY=1 arrived" ||
  fail "SubState $(prop SubState), Type $(prop Type)"
status=$(in_ct systemctl status --no-pager "$UNIT" 2>/dev/null | grep -m1 'Status: ')
if echo "$status" | grep -q 'Queue: '; then ok "systemctl status: $(echo "$status" | sed 's/^ *//')"; else
  fail "no queue on the Status line: '$status'"; fi
pid=$(main_pid)
ps_status=$(in_ct cat "/proc/$pid/status" 2>/dev/null)
if echo "$ps_status" | grep -qP "^Uid:\t$uid\t" && echo "$ps_status" | grep -qP '^CapEff:\t0+$' &&
  echo "$ps_status" | grep -qP '^NoNewPrivs:\t1$' && echo "$ps_status" | grep -qP '^Seccomp:\t2$'; then
  ok "the daemon runs as uid $uid with no capabilities, NoNewPrivs and a seccomp filter"
else
  fail "the daemon's sandbox: $(echo "$ps_status" | grep -E '^(Uid|Gid|CapEff|NoNewPrivs|Seccomp):' | tr '\n\t' '  ')"
fi
if [ "$(owner_mode "$STATE")" = "$PKG:$PKG 750" ] && [ ! -L "$ct_root$STATE" ]; then
  ok "$STATE is a directory $PKG:$PKG 0750"
else
  fail "$STATE is $(owner_mode "$STATE") $(ls -ld "$ct_root$STATE" 2>&1)"
fi
in_ct systemd-analyze security --no-pager "$UNIT" >"$work/security.log" 2>&1
score=$(grep -o "Overall exposure level for $UNIT: [0-9.]*" "$work/security.log" | awk '{print $NF}')
if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
  ok "systemd-analyze security $UNIT: $score (at most $MAX_EXPOSURE)"
else
  grep '✗' "$work/security.log"
  fail "systemd-analyze security $UNIT: '$score', above $MAX_EXPOSURE"
fi

# A webhook reaches the Plex double.
code=$(hook hook-a)
[ "$code" = 200 ] || [ "$code" = 202 ] && ok "webhook accepted (HTTP $code)" || fail "webhook: HTTP $code"
if wait_until 90 plex_saw "/data/tv/Show A"; then
  ok "the Plex double got the scan: $(grep -F 'path=/data/tv/Show A' "$ct_root/root/plex-double.log" | head -1 | cut -d' ' -f2-)"
else
  fail "the Plex double got no scan of /data/tv/Show A: $(tail -3 "$ct_root/root/plex-double.log" 2>&1)"
  journal
fi

# Reload: same process, the new file applied (WEBHOOK_DELAY=1h keeps the next folder queued).
pid=$(main_pid)
configure "WEBHOOK_DELAY=1h" "WEBHOOK_MAX_DELAY=2h" "LOG_LEVEL=debug"
reloads=$(in_ct journalctl -u "$UNIT" --no-pager 2>/dev/null | grep -c 'configuration reloaded')
in_ct systemctl reload "$UNIT" >>"$work/systemctl.log" 2>&1 || fail "systemctl reload failed"
reloaded() { [ "$(in_ct journalctl -u "$UNIT" --no-pager 2>/dev/null | grep -c 'configuration reloaded')" -gt "$reloads" ]; }
if wait_until 60 reloaded && [ "$(main_pid)" = "$pid" ]; then
  ok "systemctl reload: MainPID $pid kept, the journal says 'configuration reloaded'"
else
  fail "systemctl reload: MainPID $pid -> $(main_pid), reloaded: $(reloaded && echo yes || echo no)"
  journal
fi
unit_ok "active after the reload"
code=$(hook hook-b)
if wait_until 30 queued "/data/tv/Show B"; then
  ok "with the reloaded WEBHOOK_DELAY=1h the folder /data/tv/Show B stays queued (HTTP $code)"
else
  fail "/data/tv/Show B is not in /api/queue: $(api /api/queue | head -c 300)"
fi
wait_until 5 plex_saw "/data/tv/Show B" && fail "Show B was scanned despite WEBHOOK_DELAY=1h"

# A restart keeps the queue.
in_ct systemctl restart "$UNIT" >>"$work/systemctl.log" 2>&1
unit_ok "active after systemctl restart"
wait_until 30 queued "/data/tv/Show B" && ok "the queue survives a restart" ||
  fail "the queue lost /data/tv/Show B across a restart"

# The watchdog kills a stopped event loop and systemd starts the daemon again.
pid=$(main_pid)
t0=$SECONDS
if [ "${pid:-0}" -gt 1 ] 2>/dev/null; then
  in_ct sh -c "kill -STOP $pid"
else
  fail "no main process to stop (MainPID '$pid')"
fi
if wait_until 240 new_main_pid "$pid" && wait_until 90 health; then
  ok "SIGSTOP: a new MainPID $(main_pid) after $((SECONDS - t0)) s"
else
  fail "SIGSTOP of $pid: no new main process after $((SECONDS - t0)) s"
  journal
fi
journal_has "Watchdog timeout" && ok "the journal says 'Watchdog timeout'" || { fail "no 'Watchdog timeout' in the journal"; journal; }
unit_ok "active after the watchdog's restart"
wait_until 30 queued "/data/tv/Show B" && ok "the queue survives the watchdog's kill" ||
  fail "the queue lost /data/tv/Show B after the watchdog's kill"

# A reboot of the container: the unit starts at boot and the queue is still there.
shutdown_ct reboot
boot "$r1" "pss-fresh-$$"
wait_until 90 health
unit_ok "active after a reboot of the container (started at boot)"
wait_until 30 queued "/data/tv/Show B" && ok "the queue survives a reboot" ||
  fail "the queue lost /data/tv/Show B across a reboot"

# An upgrade: the edited env file, the queue and a running service stay.
before=$(sha)
pid=$(main_pid)
if apt_install /root/new2.deb; then ok "upgrade to $version+pkgtest2"; else tail -20 "$work/apt.log"; fail "upgrade failed"; fi
[ "$(in_ct dpkg-query -W -f '${Version}' "$PKG")" = "$version+pkgtest2" ] || fail "the upgrade did not install $version+pkgtest2"
[ "$(sha)" = "$before" ] && grep -q '^WEBHOOK_DELAY=1h$' "$ct_root$CONF" && ok "the upgrade keeps the edited env file" ||
  fail "the upgrade changed the env file"
[ "$(owner_mode "$CONF")" = "root:$PKG 640" ] && ok "$CONF still root:$PKG 0640" || fail "$CONF is $(owner_mode "$CONF")"
new_main_pid "$pid" && ok "the upgrade restarted the daemon" || fail "the upgrade did not restart the daemon"
unit_ok "active after the upgrade"
wait_until 30 queued "/data/tv/Show B" && ok "the upgrade keeps the queue" || fail "the upgrade lost /data/tv/Show B"

# Stop: SIGTERM, the queue written, exit 0.
in_ct systemctl stop "$UNIT" >>"$work/systemctl.log" 2>&1
res=$(prop Result)
act=$(in_ct systemctl is-active "$UNIT" 2>/dev/null)
[ "$res" = success ] && [ "$act" = inactive ] && ok "systemctl stop: inactive, Result=success" ||
  { fail "systemctl stop: $act, Result=$res"; journal; }

# Remove keeps the state and the configuration; purge removes them.
if in_ct apt-get remove -y "$PKG" >>"$work/apt.log" 2>&1; then ok "apt-get remove"; else fail "apt-get remove failed"; fi
ls "$ct_root$STATE"/* >/dev/null 2>&1 && [ -f "$ct_root$CONF" ] &&
  ok "remove keeps $STATE ($(cd "$ct_root$STATE" && echo *)) and $CONF" ||
  fail "remove deleted the state or the configuration: $(ls -la "$ct_root$STATE" 2>&1)"
if in_ct dpkg --purge "$PKG" >>"$work/apt.log" 2>&1; then ok "dpkg --purge"; else fail "dpkg --purge failed"; fi
left=$(ls -d "$ct_root$STATE" "$ct_root/var/lib/private/$PKG" "$ct_root/etc/$PKG" \
  "$ct_root/etc/systemd/system/multi-user.target.wants/$UNIT" 2>/dev/null)
[ -z "$left" ] && ok "purge removes the state, /etc/$PKG and the enablement link" || fail "purge left: $left"
in_ct getent passwd "$PKG" >/dev/null && ok "purge keeps the system user (Debian practice)" ||
  fail "purge removed the system user"
shutdown_ct

# ==== 2. an upgrade from the previous build ====================================================
echo "---- upgrade from $old_note, $(date -u +%T)"
boot "$r2" "pss-upgrade-$$"
apt_install /root/old.deb || { tail -20 "$work/apt.log"; die "cannot install the previous package"; }
configure "PLEX_URL=http://127.0.0.1:32400" "PLEX_TOKEN=$TOKEN" "USE_RCLONE=false" \
  "WEBHOOK_DELAY=1h" "WEBHOOK_MAX_DELAY=2h" "MANUAL_USER=${MANUAL%%:*}" "MANUAL_PASS=${MANUAL#*:}" "BIND_ADDRESS=127.0.0.1"
edited=$(sha)
in_ct systemctl enable --now "$UNIT" >>"$work/systemctl.log" 2>&1
if [ -n "$(in_ct journalctl -u "$UNIT" --no-pager 2>/dev/null | grep -F 'status=217/USER')" ]; then
  echo "      (the previous unit fails as reported: status=217/USER)"
fi
# The previous build's state in DynamicUser's layout: its daemon, run by hand, queues a folder in
# /var/lib/private/plex-servarr-sync, owned by an unknown (dynamic) uid behind the link.
cat >"$ct_root/root/seed.env" <<EOF
PLEX_URL=http://127.0.0.1:32400
PLEX_TOKEN=$TOKEN
USE_RCLONE=false
WEBHOOK_DELAY=1h
WEBHOOK_MAX_DELAY=2h
PORT=5001
BIND_ADDRESS=127.0.0.1
MANUAL_USER=${MANUAL%%:*}
MANUAL_PASS=${MANUAL#*:}
STATE_DIR=/var/lib/private/$PKG
EOF
fallback=
if [ "$old_deb" = "$work/old.deb" ]; then
  # The current tree as the previous build starts fine: stop it to lay out the old state.
  fallback=1
  in_ct systemctl stop "$UNIT" >>"$work/systemctl.log" 2>&1
  in_ct rm -rf "$STATE"
fi
in_ct sh -c "mkdir -p -m 0700 /var/lib/private && mkdir -p -m 0750 /var/lib/private/$PKG"
seed=$(in_ct sh -c "/usr/bin/$PKG --env-file /root/seed.env >/root/seed.log 2>&1 & echo \$!")
wait_until 60 health 5001 && hook hook-c 5001 >/dev/null
if wait_until 30 queued "/data/tv/Show C" 5001; then
  [ "${seed:-0}" -gt 1 ] && in_ct sh -c "kill -TERM $seed"
  wait_until 60 in_ct sh -c "! kill -0 $seed" || fail "the previous daemon did not stop"
  in_ct sh -c "chown -R 61234:61234 /var/lib/private/$PKG && ln -s private/$PKG $STATE"
  ok "the previous build's state: /data/tv/Show C queued in /var/lib/private/$PKG, $STATE a link"
  [ -z "$fallback" ] || in_ct systemctl start "$UNIT" >>"$work/systemctl.log" 2>&1
else
  fail "the previous daemon did not queue /data/tv/Show C: $(tail -5 "$ct_root/root/seed.log")"
  [ "${seed:-0}" -gt 1 ] && in_ct sh -c "kill -TERM $seed"
fi

if apt_install /root/new1.deb; then ok "upgrade from $(basename "$old_deb") to $version+pkgtest1"; else
  tail -20 "$work/apt.log"; fail "the upgrade from the previous package failed"; fi
wait_until 90 health
if [ -n "$fallback" ]; then
  unit_ok "active after the upgrade"
else
  unit_ok "the upgrade starts the enabled unit that failed before"
fi
[ "$(sha)" = "$edited" ] && ok "the upgrade keeps the edited env file" || fail "the upgrade changed the env file"
[ "$(owner_mode "$CONF")" = "root:$PKG 640" ] && ok "$CONF root:$PKG 0640" || fail "$CONF is $(owner_mode "$CONF")"
pw=$(in_ct getent passwd "$PKG")
[ -n "$pw" ] && [ "$(in_ct id -gn "$PKG" 2>/dev/null)" = "$PKG" ] &&
  ok "system user $PKG created in the existing group" || fail "no user $PKG in group $PKG: '$pw'"
if [ -d "$ct_root$STATE" ] && [ ! -L "$ct_root$STATE" ] && [ "$(owner_mode "$STATE")" = "$PKG:$PKG 750" ] &&
  [ ! -e "$ct_root/var/lib/private/$PKG" ] &&
  [ -z "$(find "$ct_root$STATE" ! -user "$(echo "$pw" | cut -d: -f3)" 2>/dev/null)" ]; then
  ok "the state moved back to $STATE, owned by $PKG"
else
  fail "the state: $(ls -la "$ct_root$STATE" "$ct_root/var/lib/private" 2>&1 | tr '\n' ' ')"
fi
wait_until 30 queued "/data/tv/Show C" && ok "the upgrade keeps the previous build's queue" ||
  fail "the queue lost /data/tv/Show C across the upgrade: $(api /api/queue | head -c 300)"
shutdown_ct

echo "---- done, $(date -u +%T)"
summary
[ "$failed" -eq 0 ]
