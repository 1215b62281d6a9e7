#!/usr/bin/env bash
# check_deb.sh: build the .deb from a build tree and check what it installs, how, and with what.
#   test/packaging/check_deb.sh BUILD_DIR [CPACK] [CMAKE]
# Checks: the file list, modes and owners (the env file root, 0640, a conffile); Depends; the
# maintainer scripts (syntax, and postinst run against the unpacked tree with stubbed system
# commands: the system user and group are created, or the user alone in the group an earlier
# build made; the env file becomes root:plex-servarr-sync 0640; DynamicUser='s state layout is
# moved back to /var/lib/plex-servarr-sync); that
# `cmake --install` lays out the same files; that the packaged binary finds its web files beside
# itself and validates the packaged example env file; the systemd unit's required settings,
# `systemd-analyze verify` (ExecStart pointed at the unpacked binary) and
# `systemd-analyze security --offline=true` at 1.3 or lower (as measured; the booted test,
# systemd_test.sh, measures the same).
# Exit 0 = all good, 1 = a check failed, 77 = a needed tool is missing (CTest: skipped).
set -euo pipefail

build=${1:?usage: check_deb.sh BUILD_DIR [CPACK] [CMAKE]}
cpack=${2:-cpack}
cmake=${3:-cmake}
build=$(cd "$build" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

PKG=plex-servarr-sync
UNIT=$PKG.service
CONF=/etc/$PKG/$PKG.env
MAX_EXPOSURE=1.3

for tool in "$cpack" "$cmake" dpkg-deb dpkg systemd-analyze python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is not installed (packaging/bootstrap.sh test installs dpkg-dev and systemd)"
    exit 77
  fi
done

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok:   $*"; }
# judge "what holds" "what is wrong" COMMAND...: ok or fail by COMMAND's status.
judge() {
  local good=$1 bad=$2
  shift 2
  if "$@"; then ok "$good"; else fail "$bad"; fi
}
lacks() { ! grep -q "$@"; }

tmp=$(mktemp -d)
daemon_pid=
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- build the package -------------------------------------------------------------------
if ! (cd "$build" && "$cpack" -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack -G DEB failed"
  exit 1
fi
debs=("$tmp"/out/*.deb)
if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  echo "FAIL: expected one .deb in the cpack output, got: ${debs[*]}"
  exit 1
fi
deb=${debs[0]}
ok "built $(basename "$deb")"

# ---- control fields ----------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
judge "Package: $PKG" "Package is '$(field Package)'" [ "$(field Package)" = "$PKG" ]
arch=$(dpkg --print-architecture)
judge "Architecture: $arch" "Architecture is '$(field Architecture)', not $arch" [ "$(field Architecture)" = "$arch" ]
depends=$(field Depends)
echo "      Depends: $depends"
for dep in libc6 libuv1 libcurl4 libcjson1 libsqlite3-0 libsystemd0 adduser; do
  if printf '%s\n' "$depends" | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' | grep -qx "$dep"; then
    ok "Depends names $dep"
  else
    fail "Depends lacks $dep"
  fi
done

# ---- files, modes, owners ----------------------------------------------------------------
# dpkg-deb -c: "perms owner/group size date time ./path"
dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' >"$tmp/list"
expect() { # expect PATH PERMS [OWNER]
  local line
  line=$(awk -v p="./${1#/}" '$3 == p' "$tmp/list")
  if [ -z "$line" ]; then
    fail "$1 is not in the package"
  elif [ "$(echo "$line" | cut -d' ' -f1)" != "$2" ] || [ "$(echo "$line" | cut -d' ' -f2)" != "${3:-root/root}" ]; then
    fail "$1 is '$line', want $2 ${3:-root/root}"
  else
    ok "$1 $2 ${3:-root/root}"
  fi
}
expect /usr/bin/$PKG -rwxr-xr-x
expect /lib/systemd/system/$UNIT -rw-r--r--
expect /usr/share/$PKG/web/index.html -rw-r--r--
expect $CONF -rw-r-----
expect /usr/share/doc/$PKG/copyright -rw-r--r--
expect /usr/share/doc/$PKG/README.md -rw-r--r--
for f in "$src"/web/static/*; do
  [ -f "$f" ] || continue
  expect "/usr/share/$PKG/web/static/$(basename "$f")" -rw-r--r--
done
stray=$(awk '{print $3}' "$tmp/list" | grep -Ev "^\./(|etc/|etc/$PKG/.*|lib/|lib/systemd/|lib/systemd/system/|lib/systemd/system/$UNIT|usr/|usr/bin/|usr/bin/$PKG|usr/share/|usr/share/$PKG/.*|usr/share/doc/|usr/share/doc/$PKG/.*|usr/share/man/|usr/share/man/man8/|usr/share/man/man8/$PKG.8.gz|usr/share/lintian/|usr/share/lintian/overrides/|usr/share/lintian/overrides/$PKG)$" || true)
judge "no file outside the expected places" "unexpected files: $stray" [ -z "$stray" ]
odd=$(awk 'substr($1, 9, 1) == "w" || $1 ~ /[sS]/ || $2 != "root/root"' "$tmp/list")
judge "nothing world-writable, setuid or not owned by root" "odd modes or owners: $odd" [ -z "$odd" ]

# ---- maintainer scripts and conffiles ------------------------------------------------------
dpkg-deb -e "$deb" "$tmp/ctrl"
if [ "$(cat "$tmp/ctrl/conffiles" 2>/dev/null)" = "$CONF" ]; then
  ok "conffiles lists $CONF"
else
  fail "conffiles is '$(cat "$tmp/ctrl/conffiles" 2>/dev/null)', want $CONF"
fi
for s in postinst prerm postrm; do
  if [ ! -f "$tmp/ctrl/$s" ]; then
    fail "no $s"
  elif [ "$(stat -c %a "$tmp/ctrl/$s")" != 755 ]; then
    fail "$s has mode $(stat -c %a "$tmp/ctrl/$s")"
  elif ! sh -n "$tmp/ctrl/$s"; then
    fail "$s is not valid sh"
  else
    ok "$s: mode 755, valid sh"
  fi
done

# postinst configure, run against the unpacked tree (DPKG_ROOT) with the system commands stubbed.
dpkg-deb -x "$deb" "$tmp/root"
mkdir -p "$tmp/stub"
for cmd in adduser addgroup chown systemctl; do
  printf '#!/bin/sh\necho "%s $*" >>"%s"\n' "$cmd" "$tmp/calls" >"$tmp/stub/$cmd"
done
# getent: STUB_GETENT_PASSWD / STUB_GETENT_GROUP 0 = the user / group exists, 2 = it does not.
# shellcheck disable=SC2016 # expanded by the stub, not here
printf '#!/bin/sh\nif [ "$1" = passwd ]; then exit "${STUB_GETENT_PASSWD:-2}"; fi\nexit "${STUB_GETENT_GROUP:-2}"\n' >"$tmp/stub/getent"
# shellcheck disable=SC2016
printf '#!/bin/sh\nexit "${STUB_STATOVERRIDE:-1}"\n' >"$tmp/stub/dpkg-statoverride"
chmod +x "$tmp/stub"/*
run_postinst() {
  : >"$tmp/calls"
  chmod 0644 "$tmp/root$CONF"
  env PATH="$tmp/stub:$PATH" DPKG_ROOT="$tmp/root" "$@" sh "$tmp/ctrl/postinst" configure ""
}
adduser_args="--system --quiet --home /var/lib/$PKG --no-create-home"
if run_postinst env; then
  judge "postinst creates the system user and its group" \
    "postinst did not run 'adduser $adduser_args --group ... $PKG': $(cat "$tmp/calls")" \
    grep -qx "adduser $adduser_args --group --gecos plex-servarr-sync daemon $PKG" "$tmp/calls"
  judge "postinst gives $CONF to root:$PKG" "postinst did not chown $CONF to root:$PKG: $(cat "$tmp/calls")" \
    grep -qx "chown root:$PKG $tmp/root$CONF" "$tmp/calls"
  judge "postinst makes $CONF mode 0640" "$CONF has mode $(stat -c %a "$tmp/root$CONF") after postinst" \
    [ "$(stat -c %a "$tmp/root$CONF")" = 640 ]
else
  fail "postinst configure failed"
fi
if run_postinst env STUB_GETENT_GROUP=0; then
  judge "postinst adds the user to the group an earlier build made" \
    "postinst did not run 'adduser $adduser_args --ingroup $PKG ... $PKG': $(cat "$tmp/calls")" \
    grep -qx "adduser $adduser_args --ingroup $PKG --gecos plex-servarr-sync daemon $PKG" "$tmp/calls"
else
  fail "postinst configure failed (group exists)"
fi
if run_postinst env STUB_GETENT_PASSWD=0 STUB_GETENT_GROUP=0 STUB_STATOVERRIDE=0; then
  judge "postinst keeps an existing user and an admin's dpkg-statoverride" \
    "postinst re-created the user or overrode a statoverride: $(cat "$tmp/calls")" \
    lacks '^adduser\|^addgroup\|^chown' "$tmp/calls"
else
  fail "postinst configure failed (user exists)"
fi

# ---- cmake --install lays out the same tree ---------------------------------------------------
if DESTDIR="$tmp/inst" "$cmake" --install "$build" --prefix /usr >"$tmp/install.log" 2>&1; then
  (cd "$tmp/inst" && find . -type f | sort) >"$tmp/inst.files"
  awk '$1 ~ /^-/ {print $3}' "$tmp/list" | sort >"$tmp/deb.files"
  if diff -u "$tmp/deb.files" "$tmp/inst.files" >"$tmp/files.diff"; then
    ok "cmake --install installs the package's files"
  else
    fail "cmake --install and the .deb differ:"; cat "$tmp/files.diff"
  fi
  judge "cmake --install: $CONF mode 0640" "cmake --install: $CONF has mode $(stat -c %a "$tmp/inst$CONF")" \
    [ "$(stat -c %a "$tmp/inst$CONF")" = 640 ]
else
  cat "$tmp/install.log"; fail "cmake --install failed"
fi

# ---- the packaged binary: example env file, web files from its prefix -----------------------
bin="$tmp/root/usr/bin/$PKG"
san=()
[ -n "${ASAN_OPTIONS:-}" ] && san+=("ASAN_OPTIONS=$ASAN_OPTIONS")
[ -n "${UBSAN_OPTIONS:-}" ] && san+=("UBSAN_OPTIONS=$UBSAN_OPTIONS")
if out=$(cd "$tmp" && env -i PATH="$PATH" "${san[@]}" \
    "$bin" --check --env-file "$tmp/root$CONF" 2>&1); [ "$(echo "$out" | head -1 | cut -c1-2)" = OK ]; then
  ok "the example env file validates"
else
  fail "the example env file does not validate: $out"
fi
# A free port can be taken between the probe and the daemon's listen by another test running
# alongside: then start again on another one.
for _try in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (cd "$tmp" && exec env -i PATH="$PATH" "${san[@]}" PORT="$port" \
    BIND_ADDRESS=127.0.0.1 STATE_DIR="$tmp/state" MANUAL_PASS=check-deb LOG_LEVEL=debug \
    "$bin" >"$tmp/daemon.log" 2>&1) &
  daemon_pid=$!
  for _ in $(seq 1 100); do
    grep -q " listening on \|port is already in use" "$tmp/daemon.log" 2>/dev/null && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "port is already in use" "$tmp/daemon.log" || break
  wait "$daemon_pid" || true
done
web=$(realpath "$tmp/root/usr/share/$PKG/web")
if grep -qF "web files from $web" "$tmp/daemon.log"; then
  ok "the packaged binary serves the web files installed beside it"
else
  fail "the packaged binary did not find its web files: $(cat "$tmp/daemon.log")"
fi
kill -TERM "$daemon_pid" 2>/dev/null || true
code=0
wait "$daemon_pid" || code=$?
daemon_pid=
judge "the packaged binary exits 0 on SIGTERM" \
  "the packaged binary exited $code on SIGTERM: $(tail -5 "$tmp/daemon.log")" [ "$code" -eq 0 ]

# ---- the systemd unit ------------------------------------------------------------------------
unit_src="$tmp/root/lib/systemd/system/$UNIT"
for want in '^Type=notify$' '^WatchdogSec=' '^ExecReload=.*-HUP' \
  "^ExecStart=/usr/bin/$PKG --env-file $CONF\$" '^StateDirectory=' "^User=$PKG\$" "^Group=$PKG\$" \
  '^ProtectHome=read-only$' '^ProtectSystem=strict$' '^PrivateTmp=yes$' '^RemoveIPC=yes$' \
  '^NoNewPrivileges=yes$' '^RestrictSUIDSGID=yes$'; do
  judge "unit: $want" "unit lacks $want" grep -q -- "$want" "$unit_src"
done
# DynamicUser= with the static user and group of the postinst: systemd refuses it (217/USER).
if grep -q '^DynamicUser=\(yes\|true\|1\|on\)' "$unit_src"; then
  fail "unit sets DynamicUser= (the postinst makes a static user of the same name)"
else
  ok "unit: no DynamicUser="
fi
# Every command the unit runs is the daemon or /bin/sh (Essential): /bin/kill (procps) is not
# installed everywhere.
odd_exec=$(grep -E '^Exec[A-Za-z]*=' "$unit_src" | grep -vE "^Exec[A-Za-z]*=[-@:+!]*(/usr/bin/$PKG|/bin/sh) " || true)
judge "unit: every Exec*= runs the daemon or /bin/sh" "unit runs other commands: $odd_exec" [ -z "$odd_exec" ]
if grep -q '^PrivateUsers=\(yes\|true\|1\|on\)' "$unit_src"; then
  fail "unit sets PrivateUsers= (it hides the owners of media files)"
else
  ok "unit: no PrivateUsers="
fi
mkdir -p "$tmp/unit"
sed "s#^ExecStart=/usr/bin/$PKG #ExecStart=$bin #" "$unit_src" >"$tmp/unit/$UNIT"
if systemd-analyze verify "$tmp/unit/$UNIT" >"$tmp/verify.log" 2>&1 && ! grep -q "$UNIT:" "$tmp/verify.log"; then
  ok "systemd-analyze verify"
else
  cat "$tmp/verify.log"; fail "systemd-analyze verify"
fi
if systemd-analyze security --offline=true --no-pager "$tmp/unit/$UNIT" >"$tmp/security.log" 2>&1; then :; fi
score=$(grep -o "Overall exposure level for $UNIT: [0-9.]*" "$tmp/security.log" | awk '{print $NF}')
if [ -z "$score" ]; then
  cat "$tmp/security.log"; fail "systemd-analyze security --offline=true gave no exposure level"
elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
  ok "systemd-analyze security: exposure $score (at most $MAX_EXPOSURE)"
else
  grep '✗' "$tmp/security.log" || true
  fail "systemd-analyze security: exposure $score, above $MAX_EXPOSURE"
fi

if [ "$fails" -ne 0 ]; then
  echo "$fails packaging check(s) failed"
  exit 1
fi
echo "all packaging checks passed"
