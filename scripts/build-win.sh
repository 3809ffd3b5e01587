#!/usr/bin/env bash
# Cross-compiles the Windows addon (the iocp backend) on Linux with MinGW-w64:
# build-win/Release/ringport.node. Debian packages: g++-mingw-w64-x86-64-posix
# (which brings binutils-mingw-w64-x86-64 for dlltool) and cmake.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cmake x86_64-w64-mingw32-g++-posix x86_64-w64-mingw32-dlltool; do
  if ! command -v "$tool" > /dev/null; then
    echo "build:win: $tool is missing (Debian: apt-get install cmake g++-mingw-w64-x86-64-posix)" >&2
    exit 1
  fi
done

generator=()
if command -v ninja > /dev/null; then generator=(-G Ninja); fi
mkdir -p build-win
log=build-win/build.log
if ! { cmake -S . -B build-win "${generator[@]}" \
         -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake -DCMAKE_BUILD_TYPE=Release &&
       cmake --build build-win; } > "$log" 2>&1; then
  cat "$log"
  echo "build:win: the Windows addon did not build (output above)" >&2
  exit 1
fi
echo "build:win: built build-win/Release/ringport.node"
