import { ErrorCodes, RingportError } from '../errors';
import type { Backend, BackendKind, BackendOptions } from './backend';
import { NetBackend } from './net';
import { probeNative } from './native';

export type BackendChoice = 'auto' | BackendKind;

/** What was picked, why, and how to make instances of it. */
export interface BackendSelection {
  readonly kind: BackendKind;
  /** One sentence a person can act on, e.g. "auto: io_uring unavailable (no native addon built); using net". */
  readonly reason: string;
  create(options: BackendOptions): Backend;
}

const KINDS: readonly BackendKind[] = ['uring', 'iocp', 'net'];

/** The native kind this platform would use, if any. */
function nativeKindFor(platform: NodeJS.Platform): BackendKind | undefined {
  if (platform === 'linux') return 'uring';
  if (platform === 'win32') return 'iocp';
  return undefined;
}

function netSelection(reason: string): BackendSelection {
  return { kind: 'net', reason, create: (options) => new NetBackend(options) };
}

/**
 * Picks a backend. An explicit `choice` other than `auto` wins; with `auto`,
 * `RINGPORT_BACKEND` (uring | iocp | net) forces one; otherwise the native
 * backend is used where it loads and works, else `net`. Forcing a backend that
 * cannot run here throws `RP_ERR_BACKEND_UNAVAILABLE` with the reason.
 */
export function selectBackend(choice: BackendChoice = 'auto', env: NodeJS.ProcessEnv = process.env): BackendSelection {
  let forced: BackendKind | undefined;
  let forcedBy = '';
  if (choice !== 'auto') {
    forced = choice;
    forcedBy = `backend: '${choice}'`;
  } else if (env.RINGPORT_BACKEND !== undefined && env.RINGPORT_BACKEND !== '' && env.RINGPORT_BACKEND !== 'auto') {
    forced = env.RINGPORT_BACKEND as BackendKind;
    forcedBy = `RINGPORT_BACKEND=${env.RINGPORT_BACKEND}`;
  }
  if (forced !== undefined && !KINDS.includes(forced)) {
    throw new RingportError(
      ErrorCodes.INVALID_ARGUMENT,
      `${forcedBy}: unknown backend; expected one of auto, ${KINDS.join(', ')}`,
    );
  }
  if (forced === 'net') return netSelection(`forced by ${forcedBy}`);

  const nativeKind = forced ?? nativeKindFor(process.platform);
  if (nativeKind === undefined) return netSelection(`auto: no native backend for platform ${process.platform}`);
  const probe = probeNative(nativeKind);
  if (probe.ok) {
    return {
      kind: nativeKind,
      reason: forced ? `forced by ${forcedBy}` : `auto: ${nativeKind} loaded and works here`,
      create: probe.create,
    };
  }
  if (forced !== undefined) {
    throw new RingportError(ErrorCodes.BACKEND_UNAVAILABLE, `${forcedBy}: ${nativeKind} cannot run here: ${probe.reason}`);
  }
  return netSelection(`auto: ${nativeKind} unavailable (${probe.reason}); using net`);
}

/** The backends that load and work on this machine, `net` always among them. */
export function availableBackends(): BackendKind[] {
  const kinds: BackendKind[] = [];
  for (const kind of ['uring', 'iocp'] as const) {
    if (probeNative(kind).ok) kinds.push(kind);
  }
  kinds.push('net');
  return kinds;
}
