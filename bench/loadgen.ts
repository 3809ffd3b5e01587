import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The C load generator (bench/loadgen/loadgen.c), compiled on the fly with
 * `cc -O2` into bench/.build/, which is git-ignored. It is rebuilt when its
 * source or the flags change, and needs nothing but a C compiler and libc.
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
  if (fs.existsSync(BINARY) && fs.existsSync(STAMP) && fs.readFileSync(STAMP, 'utf8') === stamp) return { ok: true, binary: BINARY };
  const result = spawnSync(CC, [...CFLAGS, '-o', BINARY, SOURCE], { encoding: 'utf8' });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? `no C compiler ('${CC}' not found)` : `${CC} failed to start: ${result.error.message}` };
  }
  if (result.status !== 0) return { ok: false, reason: `${CC} failed to compile ${path.relative(process.cwd(), SOURCE)}:\n${result.stderr}` };
  fs.writeFileSync(STAMP, stamp);
  return { ok: true, binary: BINARY };
}
