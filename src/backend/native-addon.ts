import * as path from 'node:path';
import type { BackendKind } from './backend';
import { protocolMismatch } from './native-protocol';

/** What the compiled addon exports (native/addon.cc). */
export interface Addon {
  /** The mechanisms this build has, in the order `auto` tries them: ['uring', 'epoll'] on Linux, ['iocp'] on Windows. */
  readonly mechanisms: readonly BackendKind[];
  readonly protocol: Record<string, number>;
  /** 0 when a reactor of `mechanism` can run here, else a negative errno (EPERM: refused, as by a seccomp profile). */
  probe(mechanism: BackendKind): number;
  /**
   * The name of an errno from the addon, either sign: -111 -> ECONNREFUSED.
   * The one errno table: errors the addon throws carry the same names, so JS
   * never names a native errno any other way.
   */
  errnoName(errno: number): string;
  Reactor: new (
    mechanism: BackendKind,
    options: ReactorOptions,
    shared: SharedMemory,
    onBatch: (count: number, data?: Buffer) => void,
  ) => NativeReactor;
}

export interface ReactorOptions {
  queueDepth?: number;
  maxConnections?: number;
  recvBufferBytes?: number;
  recvBuffersInitial?: number;
  recvBuffersMax?: number;
}

export interface SharedMemory {
  events: Int32Array;
  commands: Int32Array;
  arena: Uint8Array;
  control: Int32Array;
  queued: Uint32Array;
}

export interface NativeReactor {
  listen(
    host: string,
    port: number,
    backlog: number,
    reusePort: boolean,
    high: number,
    low: number,
    /** Follow the connections' frames and relay these packet ids (native/relay.h). */
    relay?: [lengthBytes: number, bigEndian: boolean, maxFrameBytes: number, packetIds: Uint16Array],
  ): [number, number];
  closeListener(id: number): void;
  connect(ip: string, port: number, high: number, low: number): number;
  /** Applies the commands written since the last flush; `early`: more of the same tick follow, so sends wait for the last one. */
  flush(early?: boolean): void;
  peer(slot: number, gen: number): [string, number] | undefined;
  unsent(slot: number, gen: number): [number, boolean] | undefined;
  stats(): Record<string, number>;
  destroy(): void;
}

export type AddonLoad = { readonly ok: true; readonly addon: Addon } | { readonly ok: false; readonly reason: string };

let loaded: AddonLoad | undefined;

/**
 * Loads build/Release/ringport.node once per thread (RINGPORT_ADDON_PATH
 * points elsewhere, e.g. at a sanitizer build) and says why when it cannot.
 */
export function loadAddon(): AddonLoad {
  if (loaded !== undefined) return loaded;
  const file = process.env.RINGPORT_ADDON_PATH || path.join(__dirname, '..', '..', 'build', 'Release', 'ringport.node');
  try {
    const addon = require(file) as Addon;
    const mismatch = protocolMismatch(addon.protocol);
    loaded = mismatch ? { ok: false, reason: `the native addon at ${file} is stale (${mismatch}); rebuild it` } : { ok: true, addon };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    loaded = {
      ok: false,
      reason:
        code === 'MODULE_NOT_FOUND'
          ? 'the native addon is not built (npm install builds it where cmake, a C++ compiler and liburing-dev are present)'
          : `the native addon failed to load: ${(err as Error).message}`,
    };
  }
  return loaded;
}
