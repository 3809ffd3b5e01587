import { readFileSync } from 'node:fs';

/** Winsock's SOMAXCONN: listen() then takes the provider's own maximum. */
const WINSOCK_SOMAXCONN = 0x7fffffff;
/** Linux's default somaxconn since 5.4, for a /proc that cannot be read. */
const LINUX_SOMAXCONN = 4096;
/** Elsewhere node:net's own default, which the kernel caps at its limit. */
const NODE_BACKLOG = 511;

let systemBacklog: number | undefined;

function readSystemBacklog(): number {
  if (process.platform === 'win32') return WINSOCK_SOMAXCONN;
  if (process.platform !== 'linux') return NODE_BACKLOG;
  try {
    const value = parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'), 10);
    return value > 0 ? value : LINUX_SOMAXCONN;
  } catch {
    return LINUX_SOMAXCONN;
  }
}

/**
 * The accept queue a listener gets unless `backlog` says otherwise: the
 * system's limit, as Go and Netty default to. A reconnect storm then waits
 * in the queue instead of overflowing it: with node:net's 511, 10,000
 * clients dialling 256 at a time overflowed it some 16,000 times and waited
 * out SYN retransmits (seconds). On Linux the limit is net.core.somaxconn,
 * read once; on Windows it is SOMAXCONN.
 */
export function defaultBacklog(): number {
  systemBacklog ??= readSystemBacklog();
  return systemBacklog;
}
