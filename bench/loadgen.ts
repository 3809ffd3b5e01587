import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The C load generator (bench/loadgen/loadgen.c), compiled on the fly with
 * `cc -O2` into bench/.build/, which is git-ignored. It is rebuilt when its
 * source or the flags change, and needs nothing but a C compiler and libc.
 * Before each use its `selftest` checks the SHA-1 and base64 the WebSocket
 * handshake is checked with against known answers.
 */
const SOURCE = path.join(__dirname, 'loadgen', 'loadgen.c');
const BUILD_DIR = path.join(__dirname, '.build');
const BINARY = path.join(BUILD_DIR, 'loadgen');
const STAMP = path.join(BUILD_DIR, 'loadgen.stamp');
const CC = process.env.CC ?? 'cc';
const CFLAGS = ['-O2', '-Wall', '-Wextra', '-std=gnu11'];

export type LoadgenBuild = { ok: true; binary: string } | { ok: false; reason: string };

export function buildLoadgen(): LoadgenBuild {
  if (process.platform !== 'linux') return { ok: false, reason: `the C load generator uses epoll and runs on Linux only, not ${process.platform}` };
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  // Nothing in here belongs in git.
  fs.writeFileSync(path.join(BUILD_DIR, '.gitignore'), '*\n');
  const stamp = `${CC} ${CFLAGS.join(' ')} ${fs.statSync(SOURCE).mtimeMs}`;
  if (fs.existsSync(BINARY) && fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8') === stamp) return selftest();
  const result = spawnSync(CC, [...CFLAGS, '-o', BINARY, SOURCE], { encoding: 'utf8' });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? `no C compiler ('${CC}' not found)` : `${CC} failed to start: ${result.error.message}` };
  }
  if (result.status !== 0) return { ok: false, reason: `${CC} failed to compile ${path.relative(process.cwd(), SOURCE)}:\n${result.stderr}` };
  fs.writeFileSync(STAMP, stamp);
  return selftest();
}

function selftest(): LoadgenBuild {
  const result = spawnSync(BINARY, ['selftest'], { encoding: 'utf8', timeout: 10_000 });
  if (result.status === 0) return { ok: true, binary: BINARY };
  return { ok: false, reason: `its selftest failed: ${(result.stderr || result.error?.message || `status ${result.status}`).trim()}` };
}

/**
 * The allocator statistics addon (bench/server/malloc-stats.c) the server
 * under test loads for the memory workloads: malloc_trim before each reading
 * and malloc's bytes in use. Built like the load generator, against the
 * N-API headers of the `node-api-headers` package (a dependency of ringport).
 * glibc only (mallinfo2, glibc 2.33+).
 */
const MALLOC_SOURCE = path.join(__dirname, 'server', 'malloc-stats.c');
const MALLOC_ADDON = path.join(BUILD_DIR, 'malloc-stats.node');
const MALLOC_STAMP = path.join(BUILD_DIR, 'malloc-stats.stamp');

export type AddonBuild = { ok: true; addon: string } | { ok: false; reason: string };

export function buildMallocStats(): AddonBuild {
  if (process.platform !== 'linux') return { ok: false, reason: `it reads glibc's allocator, on Linux only, not ${process.platform}` };
  let include: string;
  try {
    include = path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
  } catch {
    return { ok: false, reason: 'the node-api-headers package is not installed' };
  }
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  fs.writeFileSync(path.join(BUILD_DIR, '.gitignore'), '*\n');
  const flags = ['-O2', '-Wall', '-Wextra', '-shared', '-fPIC', `-I${include}`];
  const stamp = `${CC} ${flags.join(' ')} ${fs.statSync(MALLOC_SOURCE).mtimeMs}`;
  if (!(fs.existsSync(MALLOC_ADDON) && fs.existsSync(MALLOC_STAMP) && fs.readFileSync(MALLOC_STAMP, 'utf8') === stamp)) {
    const result = spawnSync(CC, [...flags, '-o', MALLOC_ADDON, MALLOC_SOURCE], { encoding: 'utf8' });
    if (result.error !== undefined) return { ok: false, reason: `${CC} failed to start: ${result.error.message}` };
    if (result.status !== 0) return { ok: false, reason: `${CC} failed to compile ${path.relative(process.cwd(), MALLOC_SOURCE)}:\n${result.stderr}` };
    fs.writeFileSync(MALLOC_STAMP, stamp);
  }
  // Loading it here proves it loads in node before a server depends on it.
  try {
    const addon = require(MALLOC_ADDON) as MallocStats;
    if (!(addon.trim() > 0)) return { ok: false, reason: 'malloc_trim/mallinfo2 gave no figure' };
  } catch (err) {
    return { ok: false, reason: `it does not load: ${(err as Error).message}` };
  }
  return { ok: true, addon: MALLOC_ADDON };
}

/** What bench/server/malloc-stats.c exports. */
export interface MallocStats {
  /** malloc_trim(0), then malloc's bytes in use (arenas and mmapped chunks). */
  trim(): number;
  stats(): { inUse: number; mmapped: number; free: number };
}
