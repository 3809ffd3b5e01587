import * as os from 'node:os';
import type { Backend, BackendKind, BackendOptions } from './backend';
import { loadAddon, type Addon } from './native-addon';
import { NativeBackend } from './native-backend';

export type NativeProbe =
  | { readonly ok: true; create(options: BackendOptions): Backend }
  | { readonly ok: false; readonly reason: string };

/** The native mechanisms, by the platform they need, in the order `auto` tries them. */
const PLATFORM_OF: Partial<Record<BackendKind, { platform: NodeJS.Platform; name: string }>> = {
  uring: { platform: 'linux', name: 'io_uring' },
  epoll: { platform: 'linux', name: 'epoll' },
  iocp: { platform: 'win32', name: 'IOCP' },
};

/** Every native kind, in the order `auto` tries them. */
export const NATIVE_KINDS = Object.keys(PLATFORM_OF) as BackendKind[];

/** The native kinds `platform` would use, in the order `auto` tries them (on Linux uring, then epoll). */
export function nativeKindsFor(platform: NodeJS.Platform): BackendKind[] {
  return NATIVE_KINDS.filter((kind) => PLATFORM_OF[kind]!.platform === platform);
}

/** Multishot recv, which the io_uring reactor is built on, came in Linux 6.0. */
const MIN_URING_LINUX: readonly [number, number] = [6, 0];

function linuxTooOld(release: string): boolean {
  const [major, minor] = release.split('.').map((part) => parseInt(part, 10));
  return major < MIN_URING_LINUX[0] || (major === MIN_URING_LINUX[0] && minor < MIN_URING_LINUX[1]);
}

function refusal(addon: Addon, kind: BackendKind, result: number): string {
  const code = addon.errnoName(result);
  if (kind === 'uring' && code === 'EPERM') {
    return "io_uring_setup refused: EPERM, as in Docker's default seccomp profile (or with kernel.io_uring_disabled set)";
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
  const needs = PLATFORM_OF[kind];
  if (needs === undefined) return { ok: false, reason: `${kind} is not a native backend` };
  if (process.platform !== needs.platform) {
    return { ok: false, reason: `${needs.name} needs ${needs.platform === 'win32' ? 'Windows' : 'Linux'}, this is ${process.platform}` };
  }
  if (kind === 'uring' && linuxTooOld(os.release())) {
    return {
      ok: false,
      reason: `Linux ${MIN_URING_LINUX.join('.')} or later is needed for multishot recv; this is ${os.release()}`,
    };
  }
  const load = loadAddon();
  if (!load.ok) return load;
  const { addon } = load;
  if (!addon.mechanisms.includes(kind)) {
    return { ok: false, reason: `the native addon here drives ${addon.mechanisms.join(' and ')}, not ${kind}` };
  }
  const result = addon.probe(kind);
  if (result < 0) return { ok: false, reason: refusal(addon, kind, result) };
  return { ok: true, create: (options) => new NativeBackend(addon, kind, options) };
}
