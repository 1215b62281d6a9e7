#!/usr/bin/env bash
# run.sh: the benchmarks in one command. Installs what is missing (Debian packages), builds the
# daemon in Release into build-bench/, runs every benchmark (test/bench/bench.py) and prints the
# table; the same table goes to test/bench/results.md.
#
#   test/bench/run.sh                     everything (about ten minutes)
#   test/bench/run.sh --only ingest,memory   some of: ingest, memory, e2e, drain, slowloris
#   test/bench/run.sh --quick             short runs, to check the harness
#
# Not part of ctest: speed is measured here, never asserted by a test.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libcjson-dev
  libsqlite3-dev libsystemd-dev node-llhttp python3 rclone wrk nginx-light time)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The nginx package may start its own service; the benchmark runs its own nginx on a free port
# with a generated configuration, so a running service does not matter.

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build build-bench -j"$jobs" >/dev/null

# 1,000 slowloris connections plus the client's and the servers' own descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 "$here/bench.py" --binary "$root/build-bench/plex-servarr-sync" \
  --results "$here/results.md" "$@"
