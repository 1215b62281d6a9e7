#!/usr/bin/env bash
# bootstrap.sh: install what is missing (Debian 12 packages), build, then run the daemon or the tests.
#   packaging/bootstrap.sh run    build (build/) and start the daemon on its defaults (port 5000, ./state)
#   packaging/bootstrap.sh test   build plain and with ASan+UBSan, run every test in both
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
mode=${1:-}
list_only=false
if [ "$mode" = packages ]; then # print the Debian packages a mode needs (used by .ci/run)
  list_only=true
  mode=${2:-}
fi
case "$mode" in run|test) ;; *) echo "usage: $0 run|test | $0 packages run|test" >&2; exit 2 ;; esac

build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libcjson-dev
  libsqlite3-dev libsystemd-dev node-llhttp)
test_pkgs=(libcmocka-dev python3 python3-prometheus-client rclone curl strace chromium dpkg-dev file systemd
  clang libclang-rt-14-dev valgrind lintian faketime openssl)
# The deployment tests: a real systemd (systemd-nspawn --boot on a debootstrapped Debian 12) and a
# real container runtime (podman, with runc: crun refuses the hybrid cgroup layout of some hosts).
deploy_pkgs=(debootstrap systemd-container podman buildah runc containernetworking-plugins uidmap
  slirp4netns fuse-overlayfs util-linux)
test_pkgs+=("${deploy_pkgs[@]}")
# node and npm for the browser test: Debian's packages, unless a node (and its npm) is already there
command -v node >/dev/null 2>&1 || test_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || test_pkgs+=(npm)
pkgs=("${build_pkgs[@]}")
[ "$mode" = test ] && pkgs+=("${test_pkgs[@]}")
if $list_only; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi

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

jobs=$(nproc 2>/dev/null || echo 2)
if [ "$mode" = run ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
  cmake --build build -j"$jobs"
  exec ./build/plex-servarr-sync
fi

# Tests: a plain build and a sanitized build (ASan + UBSan abort on the first report), each
# running the whole suite: unit tests (cmocka), integration tests (the real binary) and the
# browser test of the web page (registered by CMake once test/e2e/node_modules exists).
npm ci --prefix test/e2e --no-audit --no-fund
# The upgrade test builds the previous release once; both builds' runs share it.
export PSS_PREV_CACHE="$PWD/build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPSS_WERROR=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j2 -LE deploy
# The deployment tests, one at a time (each boots a container and builds or installs the package).
ctest --test-dir build --output-on-failure -L deploy
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPSS_SANITIZE=ON -DPSS_WERROR=ON
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 -LE deploy
# Fuzzing (libFuzzer, clang from Debian): every target for 30 s (test/README.md, "Fuzzing").
test/fuzz/run.sh 30
# Memcheck on the plain build: unit tests and a named set of integration tests under valgrind.
PSS_VALGRIND=1 ctest --test-dir build -L valgrind --output-on-failure
