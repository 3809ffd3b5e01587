#!/usr/bin/env bash
# Runs the transport, session, app and backend suites against an ASan + UBSan
# build of the addon, on both Linux reactors (uring and epoll) and net, with
# the sanitizer runtimes preloaded into node. Any report
# fails the run: sanitizer output goes to files, which must not appear.
set -euo pipefail
cd "$(dirname "$0")/.."

node scripts/build-native.js --sanitize
reports=$(mktemp -d)
export RINGPORT_ADDON_PATH="$PWD/build-asan/Debug/ringport.node"
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
# Node itself is not built with ASan and keeps memory until exit by design: no leak check.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$reports/ubsan"
export RINGPORT_EXPECT_BACKENDS=uring,epoll,net

status=0
npx jest --maxWorkers=2 test/transport test/session test/app test/backend || status=$?
unset LD_PRELOAD
if compgen -G "$reports/*" > /dev/null; then
  echo "sanitizer reports:"
  cat "$reports"/*
  status=1
fi
exit $status
