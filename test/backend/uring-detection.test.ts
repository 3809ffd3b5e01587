import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { availableBackends } from '../../src';

const root = path.join(__dirname, '..', '..');

/** Runs a snippet in a fresh node with `env` added, and returns what it printed as JSON. */
function inChild(env: Record<string, string>, code: string): any {
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

const snippet = `
  const { selectBackend } = require('./src');
  const auto = selectBackend('auto', {});
  let forced;
  try { selectBackend('uring', {}); forced = { ok: true }; } catch (e) { forced = { code: e.code, message: e.message }; }
  console.log(JSON.stringify({ kind: auto.kind, reason: auto.reason, forced }));
`;

// Only a machine where the uring backend works can show it being refused.
const onUring = availableBackends().includes('uring') ? describe : describe.skip;

onUring('uring detection', () => {
  it("falls back to epoll with the reason when io_uring_setup is refused with EPERM (as under Docker's default seccomp profile)", () => {
    const result = inChild({ RINGPORT_TEST_URING_SETUP_ERRNO: 'EPERM' }, snippet);
    expect(result.kind).toBe('epoll');
    expect(result.reason).toBe(
      "auto: uring unavailable (io_uring_setup refused: EPERM, as in Docker's default seccomp profile (or with kernel.io_uring_disabled set)); using epoll",
    );
    expect(result.forced.code).toBe('RP_ERR_BACKEND_UNAVAILABLE');
    expect(result.forced.message).toMatch(/EPERM/);
  });

  it('says ENOSYS when the kernel has no io_uring, and uses epoll', () => {
    const result = inChild({ RINGPORT_TEST_URING_SETUP_ERRNO: 'ENOSYS' }, snippet);
    expect(result.kind).toBe('epoll');
    expect(result.reason).toBe('auto: uring unavailable (this kernel has no io_uring (ENOSYS)); using epoll');
  });

  it('says the addon is not built when it cannot be found, and RINGPORT_BACKEND=uring then throws', () => {
    const result = inChild({ RINGPORT_ADDON_PATH: path.join(root, 'no-such-dir', 'ringport.node') }, snippet);
    expect(result.kind).toBe('net');
    expect(result.reason).toMatch(/^auto: uring and epoll unavailable \(the native addon is not built .*\); using net$/);
    expect(result.forced.code).toBe('RP_ERR_BACKEND_UNAVAILABLE');
  });

  it('picks uring by itself where it works', () => {
    const result = inChild({}, snippet);
    expect(result.kind).toBe('uring');
    expect(result.reason).toBe('auto: uring loaded and works here');
    expect(result.forced).toEqual({ ok: true });
  });

  it('RINGPORT_BACKEND=epoll forces epoll where uring works', () => {
    const result = inChild(
      { RINGPORT_BACKEND: 'epoll' },
      `const { selectBackend } = require('./src'); const s = selectBackend(); console.log(JSON.stringify({ kind: s.kind, reason: s.reason }));`,
    );
    expect(result).toEqual({ kind: 'epoll', reason: 'forced by RINGPORT_BACKEND=epoll' });
  });
});
