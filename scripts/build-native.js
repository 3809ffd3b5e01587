#!/usr/bin/env node
// Builds the native addon when this machine can: cmake, a C++ compiler and,
// on Linux, liburing's headers. Where one is missing it says so in one line
// and exits 0: ringport then runs on its `net` backend.
//
//   node scripts/build-native.js              build/Release/ringport.node
//   node scripts/build-native.js --sanitize   build-asan/Release/ringport.node (ASan + UBSan)
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const sanitize = process.argv.includes('--sanitize');

function has(command, args = ['--version']) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function missing() {
  if (process.platform !== 'linux') return `no native backend is built for ${process.platform} by npm install yet`;
  if (!has('cmake')) return 'cmake is not installed';
  if (!has('c++') && !has('g++')) return 'no C++ compiler is installed';
  const headers = ['/usr/include/liburing.h', '/usr/local/include/liburing.h'];
  if (!headers.some((file) => fs.existsSync(file))) return 'liburing is not installed (Debian: apt-get install liburing-dev)';
  return undefined;
}

if (process.env.RINGPORT_SKIP_NATIVE === '1') {
  console.log('ringport: native addon not built (RINGPORT_SKIP_NATIVE=1); ringport will use the net backend');
  process.exit(0);
}
const reason = missing();
if (reason !== undefined) {
  console.log(`ringport: native addon not built (${reason}); ringport will use the net backend`);
  process.exit(0);
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--directory', root, '--out', sanitize ? 'build-asan' : 'build'];
if (sanitize) args.push('--CDRINGPORT_SANITIZE=ON', '--debug');
const result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (result.status !== 0) {
  process.stderr.write(result.stdout + result.stderr);
  console.log('ringport: native addon build failed (output above); ringport will use the net backend');
  process.exit(sanitize ? 1 : 0);
}
console.log(`ringport: native addon built (${sanitize ? 'build-asan/Debug' : 'build/Release'}/ringport.node)`);
