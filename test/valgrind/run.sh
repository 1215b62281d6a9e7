#!/usr/bin/env bash
# test/valgrind/run.sh [BUILD_DIR]: the unit tests and a named set of integration tests under
# valgrind memcheck. Fails on any memcheck error or definite leak (in a unit test, or in the
# daemon when it exits after SIGTERM), on a daemon exit status other than 0, and on a daemon
# whose loop still had handles at exit (uv_loop_close() did not return 0; logged at debug).
#
# Slow (valgrind runs the code 20-50 times slower), so CTest's "valgrind" test only runs it
# with PSS_VALGRIND=1 (exit 77 = skipped otherwise):
#   PSS_VALGRIND=1 ctest --test-dir build -L valgrind --output-on-failure
# or directly: test/valgrind/run.sh build
# VALGRIND_TESTS (space-separated unittest names) replaces the integration set below.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
if [ "${PSS_VALGRIND:-0}" != 1 ]; then
  echo "valgrind run skipped: set PSS_VALGRIND=1 to run it (it takes several minutes)"
  exit 77
fi
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
binary=$build/plex-servarr-sync
[ -x "$binary" ] || { echo "no daemon at $binary: build first" >&2; exit 2; }

out=$build/valgrind
rm -rf "$out"
mkdir -p "$out"
vg=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --error-exitcode=99 --num-callers=30 --trace-children=no)
fail=0

# ---- unit tests (cmocka executables) ----
for t in "$build"/test/test_*; do
  [ -x "$t" ] && [ -f "$t" ] || continue
  name=$(basename "$t")
  start=$SECONDS
  if (cd "$build/test" && "${vg[@]}" --log-file="$out/unit.$name.vg" "$t" >"$out/unit.$name.out" 2>&1); then
    echo "ok    unit $name ($((SECONDS - start)) s)"
  else
    echo "FAIL  unit $name (exit $?; $out/unit.$name.vg)"
    tail -n 40 "$out/unit.$name.out" "$out/unit.$name.vg"
    fail=1
  fi
done

# ---- integration tests: the daemon under valgrind ----
# Chosen to cover every path that owns handles or memory at exit (webhooks, the manual form,
# the group commit, retries with curl requests in flight, rclone, hostile requests, evicted and
# timed-out connections, failed-login answers still waiting at SIGTERM) while staying free of
# tight timing assertions.
default_tests="test_core.WebhookAnswersTest test_core.ManualTriggerTest test_core.RetryTest
  test_core.VfsBeforePlexTest.test_brand_new_show_is_visible_through_vfs_before_plex_scans_it
  test_hostile.BadRequestCorpusTest
  test_hostile.SlowClientsTest.test_pipelined_requests_are_answered_in_order
  test_hostile.LimitsTest.test_connection_limit_closes_the_oldest_header_phase_connection
  test_hostile.LimitsTest.test_idle_timeout_closes_quiet_connections_and_stalled_bodies
  test_hostile.AuthTest.test_stopping_while_failed_logins_wait_exits_cleanly
  test_hostile.PlexFaultTest.test_plex_that_never_answers_is_cut_at_plex_timeout_and_retried
  test_hostile.RcloneFaultTest.test_rclone_that_never_answers_is_cut_at_rclone_timeout_and_retried
  test_hostile.RcloneFaultTest.test_need_fs_parks_naming_rclone_fs"
read -r -a tests <<<"$(echo ${VALGRIND_TESTS:-$default_tests})"

wrapper=$out/plex-servarr-sync-under-valgrind
cat >"$wrapper" <<WRAP
#!/bin/sh
# exec: the rig signals and waits for this very process
exec ${vg[*]} --log-file=$out/daemon.%p.vg "$binary" "\$@"
WRAP
chmod +x "$wrapper"

start=$SECONDS
(cd "$here/test/integration" && PSS_BINARY=$wrapper PSS_KEEP_TMP=1 PYTHONDONTWRITEBYTECODE=1 \
  PSS_FIXTURES_DIR="$here/test/fixtures" python3 -m unittest -v "${tests[@]}") >"$out/integration.out" 2>&1
rc=$?
kept=$(sed -n 's/^kept \(.*\)$/\1/p' "$out/integration.out")
if [ $rc -ne 0 ]; then
  echo "FAIL  integration under valgrind (exit $rc; $out/integration.out)"
  grep -E "^(FAIL|ERROR):|Error|error" "$out/integration.out" | head -n 40
  fail=1
else
  echo "ok    integration: ${#tests[@]} test groups ($((SECONDS - start)) s)"
fi
for vglog in "$out"/daemon.*.vg; do
  [ -f "$vglog" ] || continue
  if grep -qE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]" "$vglog"; then
    echo "FAIL  daemon memcheck report: $vglog"
    sed -n '/ERROR SUMMARY/p;/definitely lost/,+30p' "$vglog" | head -n 60
    fail=1
  fi
done
n_runs=$(ls "$out"/daemon.*.vg 2>/dev/null | wc -l)
for d in $kept; do
  if [ -f "$d/run/daemon.log" ] && grep -q "the loop still had handles at exit" "$d/run/daemon.log"; then
    echo "FAIL  a daemon left handles open at exit: $d/run/daemon.log"
    fail=1
  else
    rm -rf "$d"
  fi
done
echo "daemon runs under valgrind: $n_runs"
if [ "$n_runs" -eq 0 ]; then
  echo "FAIL  no daemon ran under valgrind"
  fail=1
fi
exit $fail
