#!/usr/bin/env bash
# lint_deb.sh: build the .deb from an optimized build tree and hold it to Debian's standards.
#   test/packaging/lint_deb.sh BUILD_DIR [CPACK]
# Checks: lintian reports no error and no warning (the warnings kept on purpose are overridden in
# packaging/debian/lintian-overrides, each with its reason; packaging/README.md lists them), and
# the packaged binary carries Debian's hardening: PIE, RELRO with BIND_NOW, the stack protector
# and _FORTIFY_SOURCE's checked functions.
# Exit 0 = all good, 1 = a check failed (a missing lintian or readelf is a failure too: the
# README's test command installs both).
set -euo pipefail

build=${1:?usage: lint_deb.sh BUILD_DIR [CPACK]}
cpack=${2:-cpack}
build=$(cd "$build" && pwd)

fails=0
passes=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok:   $*"; passes=$((passes + 1)); }

for tool in "$cpack" lintian readelf dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || { echo "FAIL: $tool is not installed (packaging/bootstrap.sh test installs it)"; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$build" && "$cpack" -G DEB -B "$tmp/out") >"$tmp/cpack.log" 2>&1; then
  cat "$tmp/cpack.log"
  echo "FAIL: cpack -G DEB failed"
  exit 1
fi
deb=$(echo "$tmp"/out/*.deb)
[ -f "$deb" ] || { echo "FAIL: no .deb in the cpack output"; exit 1; }
ok "built $(basename "$deb")"

# lintian: errors and warnings fail; informational tags are printed for the reader.
if lintian --display-info --fail-on error,warning "$deb" >"$tmp/lintian.log" 2>&1; then
  ok "lintian: no error, no warning"
else
  fail "lintian reports errors or warnings"
fi
grep -v '^running with root privileges' "$tmp/lintian.log" | sed 's/^/      /' || true

dpkg-deb -x "$deb" "$tmp/root"
bin="$tmp/root/usr/bin/plex-servarr-sync"
type=$(readelf -h "$bin" | awk '/Type:/ {print $2}')
if [ "$type" = DYN ]; then ok "PIE (ELF type DYN)"; else fail "not PIE: ELF type $type"; fi
if readelf -lW "$bin" | grep -q GNU_RELRO; then ok "RELRO"; else fail "no GNU_RELRO segment"; fi
if readelf -dW "$bin" | grep -Eq '\(BIND_NOW\)|\(FLAGS_1\).*NOW'; then ok "BIND_NOW"; else fail "no BIND_NOW"; fi
readelf --dyn-syms -W "$bin" >"$tmp/syms"
if grep -q '__stack_chk_fail' "$tmp/syms"; then ok "stack protector"; else fail "no __stack_chk_fail: no stack protector"; fi
fortified=$(grep -Eo '__[a-z0-9_]+_chk' "$tmp/syms" | grep -v '^__stack_chk' | sort -u | tr '\n' ' ')
if [ -n "$fortified" ]; then ok "_FORTIFY_SOURCE: $fortified"; else fail "no __*_chk function: _FORTIFY_SOURCE is off"; fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
