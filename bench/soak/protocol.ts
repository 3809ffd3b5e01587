import type { BackendKind } from '../../src';

/** The packets of the soak (bench/soak.ts): the same wire format as every bench workload. */
export const SoakPackets = {
  /** Replies with the same payload. */
  ECHO: 1,
  /** Relayed by the server to every session that sent JOIN: payload u32 LE sequence number, then filler. */
  TICK: 2,
  /** Joins the room TICK is relayed to. */
  JOIN: 4,
} as const;

/** The server's memory (just after a full collection) and counters. */
export interface SoakSample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  sessions: number;
  closes: Record<string, number>;
  faults: number;
  recvBuffers: number | undefined;
  queuedBytes: number;
}

export type SoakServerMessage =
  | { type: 'listening'; port: number; backend: BackendKind }
  | { type: 'sample'; sample: SoakSample };
