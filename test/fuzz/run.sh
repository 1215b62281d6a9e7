#!/usr/bin/env bash
# test/fuzz/run.sh [SECONDS] [TARGET...]: build the libFuzzer targets with clang in build-fuzz/
# (PSS_FUZZ=ON: libFuzzer + ASan + UBSan) and run each for SECONDS (default 30), every target
# when none is named. Seeds come from test/fuzz/corpus/<target>/ (read only); what a run finds
# goes to build-fuzz/fuzz-corpus/<target>/ (kept between runs, so long runs build on earlier
# ones) and crashes to build-fuzz/fuzz-artifacts/<target>/. Exits 1 if any target found a crash,
# a leak, a timeout or undefined behaviour; the artifact can be replayed with
#   build-fuzz/test/fuzz/<target> build-fuzz/fuzz-artifacts/<target>/<file>
# Extra libFuzzer flags: FUZZ_FLAGS="-jobs=4 -workers=4" test/fuzz/run.sh 3600 fuzz_http
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$here"
secs=${1:-30}
shift || true
all=(fuzz_http fuzz_webhook fuzz_dotenv fuzz_config_json fuzz_paths fuzz_rclone fuzz_plex fuzz_libraries)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "run.sh: $cc not found (apt-get install clang)" >&2; exit 2; }
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSS_FUZZ=ON \
  -DBUILD_TESTING=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target "${targets[@]}"

# A smaller quarantine keeps fuzz_http (a whole daemon whose queue grows as it runs) well under
# the RSS limit during long runs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
out=$here/build-fuzz
for t in "${targets[@]}"; do
  seeds=$here/test/fuzz/corpus/$t
  work=$out/fuzz-corpus/$t
  art=$out/fuzz-artifacts/$t
  mkdir -p "$work" "$art" "$out/fuzz-tmp"
  flags=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$art/")
  case $t in
    fuzz_http) flags+=(-dict="$here/test/fuzz/http.dict" -max_len=16384) ;;
    fuzz_webhook|fuzz_config_json|fuzz_plex|fuzz_libraries) flags+=(-dict="$here/test/fuzz/json.dict" -max_len=65536) ;;
    *) flags+=(-max_len=8192) ;;
  esac
  echo "== $t: ${secs}s"
  # fuzz_http keeps its state directory under TMPDIR: one per run, removed afterwards.
  # shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
  if ! TMPDIR=$out/fuzz-tmp "$out/test/fuzz/$t" "${flags[@]}" ${FUZZ_FLAGS:-} "$work" "$seeds"; then
    failed+=("$t")
  fi
  rm -rf "$out/fuzz-tmp"
done
if ((${#failed[@]})); then
  echo "fuzzing found problems in: ${failed[*]} (artifacts in build-fuzz/fuzz-artifacts/)" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} target(s), ${secs}s each, nothing found"
