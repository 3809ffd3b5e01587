import type { Workload } from './workloads';

/** One row of a workload's summary: a target's medians over its runs. */
export interface SummaryRow {
  readonly target: string;
  readonly runs: number;
  readonly failedRuns: number;
  readonly rate: number;
  /** `rate` over the baseline's; NaN when either is missing. */
  readonly ratio: number;
  readonly loadCpuPercent: number;
  readonly serverCpuPercent: number;
  /** CPU taken by other processes on the machine during the window. */
  readonly otherCpuPercent: number;
  readonly metrics: Record<string, number>;
}

/** Formats a summary as a fixed-width text table, with the workload's own columns. */
export function formatTable(workload: Workload, baseline: string, rows: readonly SummaryRow[]): string {
  const header = [
    'target',
    workload.rateUnit,
    `vs ${baseline}`,
    ...workload.columns.map((c) => c.label),
    'load-gen CPU',
    'server CPU',
    'other CPU',
    'runs ok',
  ];
  const lines = rows.map((row) => [
    row.target,
    integer(row.rate),
    Number.isNaN(row.ratio) ? '-' : `${row.ratio.toFixed(2)}x`,
    ...workload.columns.map((c) => integer(row.metrics[c.key])),
    percent(row.loadCpuPercent),
    percent(row.serverCpuPercent),
    percent(row.otherCpuPercent),
    `${row.runs - row.failedRuns}/${row.runs}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i].length)));
  const render = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [render(header), ...lines.map(render)].join('\n');
}

function integer(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? '-' : Math.round(value).toLocaleString('en-US');
}

function percent(value: number): string {
  return Number.isNaN(value) ? '-' : `${Math.round(value)}%`;
}
