/** A server under test, listening on 127.0.0.1. */
export interface RunningServer {
  readonly port: number;
  /** Counters worth keeping next to the result (ringport: sessions, packets, backend batches and submits). */
  stats?(): unknown;
}
