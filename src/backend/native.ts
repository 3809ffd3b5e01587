import * as os from 'node:os';
import type { Backend, BackendKind, BackendOptions } from './backend';
import { loadAddon, type Addon } from './native-addon';
import { NativeBackend } from './native-backend';

export type NativeProbe =
  | { readonly ok: true; create(options: BackendOptions): Backend }
  | { readonly ok: false; readonly reason: string };

/** Multishot recv, which the reactor is built on, came in Linux 6.0. */
const MIN_LINUX: readonly [number, number] = [6, 0];

function linuxTooOld(release: string): boolean {
  const [major, minor] = release.split('.').map((part) => parseInt(part, 10));
  return major < MIN_LINUX[0] || (major === MIN_LINUX[0] && minor < MIN_LINUX[1]);
}

function refusal(addon: Addon, kind: BackendKind, result: number): string {
  const code = addon.errnoName(result);
  if (kind === 'uring' && code === 'EPERM') {
    return 'io_uring_setup was refused (EPERM): a seccomp profile such as Docker\'s default, or kernel.io_uring_disabled, blocks io_uring';
  }
  if (kind === 'uring' && code === 'ENOSYS') return 'this kernel has no io_uring (ENOSYS)';
  return `${kind} could not start (${code})`;
}

const probes = new Map<BackendKind, NativeProbe>();

/**
 * Says whether a native backend can run in this process and, when it cannot,
 * why: no addon built, an addon for the other platform, a kernel too old,
 * or the kernel refusing io_uring. The answer is kept for the process.
 */
export function probeNative(kind: BackendKind): NativeProbe {
  let probe = probes.get(kind);
  if (probe === undefined) {
    probe = runProbe(kind);
    probes.set(kind, probe);
  }
  return probe;
}

function runProbe(kind: BackendKind): NativeProbe {
  if (kind === 'uring' && process.platform !== 'linux') {
    return { ok: false, reason: `io_uring needs Linux, this is ${process.platform}` };
  }
  if (kind === 'iocp' && process.platform !== 'win32') {
    return { ok: false, reason: `IOCP needs Windows, this is ${process.platform}` };
  }
  if (kind === 'uring' && linuxTooOld(os.release())) {
    return { ok: false, reason: `Linux ${MIN_LINUX.join('.')} or later is needed for multishot recv; this is ${os.release()}` };
  }
  const load = loadAddon();
  if (!load.ok) return load;
  const { addon } = load;
  if (addon.mechanism !== kind) return { ok: false, reason: `the native addon here drives ${addon.mechanism}, not ${kind}` };
  const result = addon.probe();
  if (result < 0) return { ok: false, reason: refusal(addon, kind, result) };
  return { ok: true, create: (options) => new NativeBackend(addon, options) };
}
