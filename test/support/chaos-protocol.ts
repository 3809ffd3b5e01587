import type { BackendKind, BackendStats, FramingOptions, Limits } from '../../src';

/**
 * What the chaos suite's server child (chaos-server.ts) and the tests that
 * drive it (chaos-child.ts) say to each other over the IPC channel.
 */

/** Packet ids the server child handles; anything else is an unknown packet. */
export const ChaosPackets = {
  /** Replies with the same payload. */
  ECHO: 1,
  /** Makes the sender a watcher: every ECHO the server handles also sends each watcher a NEWS packet. */
  WATCH: 2,
  /** Server to watcher, `newsBytes` long. */
  NEWS: 3,
  /** Payload u32 LE sequence number: logged in arrival order, then echoed. */
  RECORD: 4,
  /** Logged as 'login'; no reply. */
  LOGIN: 5,
  /** Server to peer, queued by the close commands: payload u32 LE sequence number 0, 1, ... */
  SEQ: 6,
} as const;

export interface ChaosServerConfig {
  backend: BackendKind;
  /** 0 (default) picks a free port. */
  port?: number;
  backlog?: number;
  limits?: Limits;
  framing?: FramingOptions;
  /** Size of each NEWS payload. Default 512. */
  newsBytes?: number;
  /** How often the child samples its memory for the peaks. Default 10 ms. */
  sampleMs?: number;
}

export interface MemorySample {
  rss: number;
  heapUsed: number;
  arrayBuffers: number;
  external: number;
}

export interface ChaosStats {
  /** Open (and closing) sessions. */
  sessions: number;
  /** Sessions accepted since start. */
  accepted: number;
  /** `sessionClose` events by reason. */
  closes: Record<string, number>;
  /** Faults the server's error hook saw (there should be none). */
  faults: string[];
  backend: BackendStats;
  memory: MemorySample;
  /** The highest of each figure sampled since start or the last `mark`. */
  peak: MemorySample;
  /** `process.resourceUsage().maxRSS` in bytes: the lifetime peak, sampled or not. */
  maxRss: number;
  /** RECORD sequence numbers and logins, in arrival order. */
  log: Array<number | 'login'>;
}

export type ChaosCommand =
  | { type: 'stats' }
  /** A full garbage collection (the child runs with --expose-gc), then stats. */
  | { type: 'gc' }
  /** Starts the peaks over from the current figures, then stats. */
  | { type: 'mark' }
  /** Queues `packets` SEQ packets for every session, then `server.close({ drainMs })`; then stats. */
  | { type: 'close'; drainMs: number; packets?: number }
  /** Queues `packets` SEQ packets for every session, then calls `session.close()` on each in one tick; then stats. */
  | { type: 'closeSessions'; packets?: number };

export type ChildMessage =
  | { type: 'listening'; port: number; backend: BackendKind; pid: number }
  | { type: 'reply'; id: number; stats: ChaosStats }
  | { type: 'failed'; message: string };

export type ParentMessage = ChaosCommand & { id: number };
