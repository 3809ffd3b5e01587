import type { BackendKind } from './backend';

export interface ReusePortSupport {
  readonly supported: boolean;
  /** Why not, when it is not. */
  readonly reason: string;
}

/** node:net passes `reusePort` to the socket from Node 22.12 and 23.1 on. */
function netHasReusePort(version = process.versions.node): boolean {
  const [major, minor] = version.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/**
 * Whether `listen({ reusePort: true })` works on `kind` here: several
 * listeners on one port, each in its own worker thread with its own reactor,
 * and the kernel spreading connections over them. Where it does not, listen
 * refuses the option with ENOTSUP rather than let a second worker fail with
 * EADDRINUSE or, worse, silently serve alone.
 */
export function reusePortSupport(kind: BackendKind): ReusePortSupport {
  switch (kind) {
    case 'uring':
    case 'epoll':
      return { supported: true, reason: '' };
    case 'net':
      // libuv refuses the option outside Linux (and the BSDs, which ringport does not test).
      if (process.platform !== 'linux') return { supported: false, reason: `node:net has no reusePort on ${process.platform}` };
      return netHasReusePort()
        ? { supported: true, reason: '' }
        : { supported: false, reason: `node:net in Node ${process.versions.node} has no reusePort (22.12 and later do)` };
    case 'iocp':
      return { supported: false, reason: 'Windows has no SO_REUSEPORT' };
  }
}

/** The error listen rejects with where reusePort is not supported. */
export function reusePortRefused(kind: BackendKind): Error {
  const { reason } = reusePortSupport(kind);
  return Object.assign(new Error(`listen: reusePort is not supported on the ${kind} backend: ${reason} (ENOTSUP)`), {
    code: 'ENOTSUP',
  });
}
