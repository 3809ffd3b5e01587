import type { Workload } from './workloads';

/** One row of a workload's summary: a target's medians over its runs. */
export interface SummaryRow {
  readonly target: string;
  readonly runs: number;
  readonly failedRuns: number;
  /** The workload's headline figure (see `Workload.headline`). */
  readonly headline: number;
  /** `headline` over the baseline's (node:net); NaN when either is missing. */
  readonly ratio: number;
  /** `headline` over ringport/net's: issue 3's targets are uring against net. */
  readonly ratioNet: number;
  readonly loadCpuPercent: number;
  readonly serverCpuPercent: number;
  readonly serverUserPercent: number;
  readonly serverSystemPercent: number;
  /** CPU taken by other processes on the machine during the window. */
  readonly otherCpuPercent: number;
  /** Server CPU time per unit of rate (`Workload.cpuPer`), user and system. */
  readonly cpuPerUser: number;
  readonly cpuPerSystem: number;
  readonly metrics: Record<string, number>;
}

export const NET = 'ringport/net';
export const URING = 'ringport/uring';

/** Whether a uring/net ratio meets the workload's target: `met`, `NOT MET`, or undefined when there is none. */
export function targetVerdict(workload: Workload, ratio: number): string | undefined {
  const target = workload.target;
  if (target === undefined) return undefined;
  if (Number.isNaN(ratio)) return 'no figure';
  const met =
    workload.better === 'higher'
      ? ratio >= target.ratio
      : target.strict === true
        ? ratio < target.ratio
        : ratio <= target.ratio;
  return met ? 'met' : 'NOT MET';
}

/** The target as text, e.g. `>= 5x` or `< 1x`. */
export function targetText(workload: Workload): string {
  const target = workload.target;
  if (target === undefined) return '';
  const op = workload.better === 'higher' ? '>=' : target.strict === true ? '<' : '<=';
  return `${op} ${target.ratio}x`;
}

/** Formats a summary as a fixed-width text table, with the workload's own columns. */
export function formatTable(workload: Workload, baseline: string, rows: readonly SummaryRow[]): string {
  const header = [
    'target',
    workload.unit,
    `vs ${baseline}`,
    'uring/net',
    'target',
    ...workload.columns.map((c) => c.label),
    ...(workload.cpuPer !== undefined ? [workload.cpuPer.label] : []),
    'load-gen CPU',
    'server CPU usr+sys',
    'other CPU',
    'runs ok',
  ];
  const lines = rows.map((row) => [
    row.target,
    number(row.headline),
    ratio(row.ratio),
    row.target === URING ? ratio(row.ratioNet) : '',
    row.target === URING && workload.target !== undefined ? `${targetText(workload)} ${targetVerdict(workload, row.ratioNet)}` : '',
    ...workload.columns.map((c) => number(row.metrics[c.key], c.decimals)),
    ...(workload.cpuPer !== undefined ? [split(row.cpuPerUser, row.cpuPerSystem)] : []),
    percent(row.loadCpuPercent),
    `${percent(row.serverCpuPercent)} (${percent(row.serverUserPercent)}+${percent(row.serverSystemPercent)})`,
    percent(row.otherCpuPercent),
    `${row.runs - row.failedRuns}/${row.runs}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i].length)));
  const render = (cells: string[]): string =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ').trimEnd();
  return [render(header), ...lines.map(render)].join('\n');
}

/** With separators, and `decimals` places (default none). */
export function number(value: number | undefined, decimals = 0): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function ratio(value: number): string {
  return Number.isNaN(value) ? '-' : `${value.toFixed(2)}x`;
}

function split(user: number, system: number): string {
  if (Number.isNaN(user) || Number.isNaN(system)) return '-';
  const digits = user + system < 10 ? 2 : 0;
  return `${user.toFixed(digits)}+${system.toFixed(digits)}`;
}

function percent(value: number): string {
  return Number.isNaN(value) ? '-' : `${Math.round(value)}%`;
}
