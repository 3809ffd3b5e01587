import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableBackends } from '../../src';

/**
 * ringport under a real seccomp filter that refuses io_uring as Docker's
 * default profile does (test/support/no-uring.c): `auto` must pick epoll and
 * say why, and the shared suites must pass there on epoll and net.
 */
const root = path.join(__dirname, '..', '..');
const onUring = availableBackends().includes('uring') ? describe : describe.skip;

/** Compiles the launcher into a fresh directory, as the bench compiles its load generator. */
function buildLauncher(dir: string): string {
  const binary = path.join(dir, 'no-uring');
  const cc = process.env.CC ?? 'cc';
  execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-o', binary, path.join(root, 'test', 'support', 'no-uring.c')], { stdio: 'pipe' });
  return binary;
}

onUring('under a seccomp filter that refuses io_uring (as in a default Docker container)', () => {
  let dir: string;
  let launcher: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringport-no-uring-'));
    launcher = buildLauncher(dir);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("auto picks epoll, says why uring was passed over, and serves a round trip", () => {
    const child = path.join(root, 'test', 'support', 'no-uring-child.ts');
    const out = execFileSync(launcher, [process.execPath, '-r', 'ts-node/register/transpile-only', child], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, RINGPORT_BACKEND: '' },
    });
    expect(JSON.parse(out)).toEqual({
      uringProbe: 'EPERM',
      available: ['epoll', 'net'],
      backend: {
        kind: 'epoll',
        reason:
          "auto: uring unavailable (io_uring_setup refused: EPERM, as in Docker's default seccomp profile (or with kernel.io_uring_disabled set)); using epoll",
      },
      clientBackend: 'epoll',
      reply: 're:ping',
    });
  });

  it('passes the backend, echo and graceful-close suites on epoll and net', () => {
    const results = path.join(dir, 'results.json');
    const suites = ['test/transport/backend.test.ts', 'test/app/echo.test.ts', 'test/app/graceful-close.test.ts', 'test/backend/select.test.ts'];
    const run = spawnSync(
      launcher,
      [process.execPath, path.join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--runInBand', '--ci', '--json', `--outputFile=${results}`, ...suites],
      { cwd: root, encoding: 'utf8', env: { ...process.env, RINGPORT_BACKEND: '', RINGPORT_EXPECT_BACKENDS: 'epoll,net' } },
    );
    const report = fs.existsSync(results) ? JSON.parse(fs.readFileSync(results, 'utf8')) : undefined;
    if (run.status !== 0 || report === undefined) throw new Error(`jest under the filter failed (status ${run.status}):\n${run.stderr}`);
    const names: string[] = report.testResults.flatMap((suite: { assertionResults: { fullName: string }[] }) =>
      suite.assertionResults.map((test) => test.fullName),
    );
    expect(report.numFailedTests).toBe(0);
    expect(report.numTotalTestSuites).toBe(suites.length);
    expect(names.filter((name) => / on epoll| epoll /.test(name)).length).toBeGreaterThan(20);
    expect(names.filter((name) => /uring/.test(name))).toEqual([]);
  }, 300_000);
});
