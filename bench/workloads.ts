/**
 * The workloads the orchestrator knows: which load generator to run and how
 * to print what it measured. A new workload is one entry here and one load
 * generator in bench/load/.
 */
export interface Column {
  /** A key of `LoadResult.metrics`. */
  readonly key: string;
  readonly label: string;
  /** How runs combine: the median, or the sum for counts that must be zero. */
  readonly combine: 'median' | 'sum';
}

export interface Workload {
  readonly name: string;
  /** One line saying what is measured and with what parameters. */
  readonly title: string;
  /** Path of the load generator, relative to bench/. */
  readonly script: string;
  /** Unit of `LoadResult.rate`. */
  readonly rateUnit: string;
  readonly columns: readonly Column[];
}

export const workloads: readonly Workload[] = [
  {
    name: 'echo',
    title: 'echo: 100 connections x 16 frames in flight, 32-byte payload, echoed back',
    script: 'load/echo.ts',
    rateUnit: 'frames/s',
    columns: [
      { key: 'p50Us', label: 'p50 µs', combine: 'median' },
      { key: 'p99Us', label: 'p99 µs', combine: 'median' },
    ],
  },
  {
    name: 'broadcast',
    title: 'broadcast: 1 sender, 500 receivers, 64-byte payload, 256 frames in flight',
    script: 'load/broadcast.ts',
    rateUnit: 'deliveries/s',
    columns: [
      { key: 'broadcastsPerSec', label: 'broadcasts/s', combine: 'median' },
      { key: 'gaps', label: 'gaps', combine: 'sum' },
    ],
  },
];
