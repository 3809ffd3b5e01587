/**
 * Messages between the orchestrator (run.ts), the server under test and the
 * load generator, each in its own process. The load generator marks the
 * measured window; the orchestrator relays the marks to the server so that
 * both sides measure their CPU over the same window.
 */

/** What a load generator measured over its window. */
export interface LoadResult {
  /** The workload's headline rate over the measured window (frames/s, deliveries/s). */
  rate: number;
  windowMs: number;
  /** The load generator's CPU use over the window, in % of one core: near 100 means it, not the server, may be the limit. */
  loadCpuPercent: number;
  /** Workload-specific figures, e.g. latency percentiles or gap counts. */
  metrics: Record<string, number>;
  /** Anything that makes the run invalid (lost frames, closed connections); printed loudly. */
  errors: string[];
}

export type LoadMessage =
  | { type: 'window-start' }
  | { type: 'window-end' }
  | { type: 'result'; result: LoadResult }
  /** `conns` (C load generator only): warm-up done, nothing held but the control connection. */
  | { type: 'ready' }
  /** `conns`: every connection is open and the server has counted it. */
  | { type: 'holding'; connections: number; connectMs: number };

export type ServerMessage =
  | { type: 'listening'; port: number }
  /**
   * The server's CPU use over the window (user + system, and each apart: the
   * system part is mostly the kernel's TCP work), and whatever counters the
   * implementation keeps.
   */
  | { type: 'window'; cpuPercent: number; userPercent: number; systemPercent: number; stats?: unknown }
  /**
   * After a full garbage collection: V8's view of the heap (the orchestrator
   * reads RSS from /proc) and, where the server loaded the malloc-stats addon,
   * malloc's bytes in use after a malloc_trim.
   */
  | { type: 'gc-done'; heapUsed: number; external: number; arrayBuffers: number; malloc?: number };

/** `gc` asks the server (started with --expose-gc) for a full collection. */
export type ToServerMessage = { type: 'window-start' } | { type: 'window-end' } | { type: 'gc' };

/**
 * Sends a message to the orchestrator, or prints it as JSON when the script
 * was started by hand (no IPC channel), so every script also runs alone.
 */
export function report(message: LoadMessage | ServerMessage): Promise<void> {
  if (process.send === undefined) {
    console.log(JSON.stringify(message));
    return Promise.resolve();
  }
  return new Promise((resolve) => process.send!(message, undefined, undefined, () => resolve()));
}

/** A child whose orchestrator has gone must not linger holding ports and CPU. */
export function exitWithParent(): void {
  process.on('disconnect', () => process.exit(0));
}
