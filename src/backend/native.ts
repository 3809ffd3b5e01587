import type { Backend, BackendKind, BackendOptions } from './backend';

export type NativeProbe =
  | { readonly ok: true; create(options: BackendOptions): Backend }
  | { readonly ok: false; readonly reason: string };

/**
 * Says whether a native backend can run in this process and, when it cannot,
 * why. The native addon (io_uring on Linux, IOCP on Windows) is not part of
 * this build yet, so every probe answers with that reason; the loader then
 * falls back to `net` or, when a native kind was forced, throws.
 */
export function probeNative(kind: BackendKind): NativeProbe {
  if (kind === 'uring' && process.platform !== 'linux') {
    return { ok: false, reason: `io_uring needs Linux, this is ${process.platform}` };
  }
  if (kind === 'iocp' && process.platform !== 'win32') {
    return { ok: false, reason: `IOCP needs Windows, this is ${process.platform}` };
  }
  return { ok: false, reason: 'the ringport native addon is not built in this version' };
}
