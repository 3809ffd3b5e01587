import { ErrorCodes, RingportError } from '../errors';
import type { Backend, BackendKind, BackendOptions } from './backend';
import { NetBackend } from './net';
import { NATIVE_KINDS, nativeKindsFor, probeNative } from './native';
import { loadAddon } from './native-addon';

export type BackendChoice = 'auto' | BackendKind;

/** What was picked, why, and how to make instances of it. */
export interface BackendSelection {
  readonly kind: BackendKind;
  /**
   * One sentence a person can act on, saying why each backend `auto` tried
   * first was passed over, e.g. "auto: uring unavailable (io_uring_setup
   * refused: EPERM, as in Docker's default seccomp profile); using epoll".
   */
  readonly reason: string;
  create(options: BackendOptions): Backend;
}

const KINDS: readonly BackendKind[] = [...NATIVE_KINDS, 'net'];

function netSelection(reason: string): BackendSelection {
  return { kind: 'net', reason, create: (options) => new NetBackend(options) };
}

/**
 * Picks a backend. An explicit `choice` other than `auto` wins; with `auto`,
 * `RINGPORT_BACKEND` (uring | epoll | iocp | net) forces one; otherwise the
 * first native backend that loads and works here (on Linux uring, else
 * epoll), else `net`. Forcing a backend that cannot run here throws
 * `RP_ERR_BACKEND_UNAVAILABLE` with the reason.
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
  if (forced !== undefined) {
    const probe = probeNative(forced);
    if (!probe.ok) throw new RingportError(ErrorCodes.BACKEND_UNAVAILABLE, `${forcedBy}: ${forced} cannot run here: ${probe.reason}`);
    return { kind: forced, reason: `forced by ${forcedBy}`, create: probe.create };
  }

  const kinds = nativeKindsFor(process.platform);
  if (kinds.length === 0) return netSelection(`auto: no native backend for platform ${process.platform}`);
  // Without the addon every native backend is out for the same reason: say it once.
  const load = loadAddon();
  if (!load.ok) return netSelection(`auto: ${kinds.join(' and ')} unavailable (${load.reason}); using net`);
  const passedOver: string[] = [];
  for (const kind of kinds) {
    const probe = probeNative(kind);
    if (probe.ok) {
      const reason = passedOver.length === 0 ? `auto: ${kind} loaded and works here` : `auto: ${passedOver.join('; ')}; using ${kind}`;
      return { kind, reason, create: probe.create };
    }
    passedOver.push(`${kind} unavailable (${probe.reason})`);
  }
  return netSelection(`auto: ${passedOver.join('; ')}; using net`);
}

/** The backends that load and work on this machine, `net` always among them. */
export function availableBackends(): BackendKind[] {
  const kinds: BackendKind[] = [];
  for (const kind of NATIVE_KINDS) {
    if (probeNative(kind).ok) kinds.push(kind);
  }
  kinds.push('net');
  return kinds;
}
