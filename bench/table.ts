import type { Target, Workload } from './workloads';

/** One row of a workload's summary: a target's medians over its runs. */
export interface SummaryRow {
  readonly target: string;
  readonly runs: number;
  readonly failedRuns: number;
  /** The workload's headline figure (see `Workload.headline`). */
  readonly headline: number;
  /**
   * `headline` over other rows' headlines, by row: every row of
   * `Workload.compare` and every `against` of `Workload.targets`. NaN where
   * either is missing.
   */
  readonly ratios: Readonly<Record<string, number>>;
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

/** Whether a ratio meets a target: `met`, `NOT MET`, or `no figure`. */
export function targetVerdict(workload: Workload, target: Target, ratio: number): string {
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
export function targetText(workload: Workload, target: Target): string {
  const op = workload.better === 'higher' ? '>=' : target.strict === true ? '<' : '<=';
  return `${op} ${target.ratio}x`;
}

/** Formats a summary as a fixed-width text table, with the workload's own columns. */
export function formatTable(workload: Workload, rows: readonly SummaryRow[]): string {
  // A target against a row that has no `vs` column of its own gets one, filled on its subject's row only.
  const extra = workload.targets.filter((t) => !workload.compare.includes(t.against));
  const hasTargets = workload.targets.length > 0;
  const header = [
    'target',
    workload.unit,
    ...workload.compare.map((row) => `vs ${row}`),
    ...extra.map((t) => t.label),
    ...(hasTargets ? ['target'] : []),
    ...workload.columns.map((c) => c.label),
    ...(workload.cpuPer !== undefined ? [workload.cpuPer.label] : []),
    'load-gen CPU',
    'server CPU usr+sys',
    'other CPU',
    'runs ok',
  ];
  const lines = rows.map((row) => {
    const mine = workload.targets.filter((t) => t.subject === row.target);
    // One target reads `>= 5x met`; several name their ratio: `uring/uWS >= 1x met, uring/ws >= 5x NOT MET`.
    const verdicts = mine.map((t) => {
      const text = `${targetText(workload, t)} ${targetVerdict(workload, t, row.ratios[t.against] ?? NaN)}`;
      return workload.targets.length > 1 ? `${t.label} ${text}` : text;
    });
    return [
      row.target,
      number(row.headline),
      ...workload.compare.map((other) => ratio(row.ratios[other] ?? NaN)),
      ...extra.map((t) => (t.subject === row.target ? ratio(row.ratios[t.against] ?? NaN) : '')),
      ...(hasTargets ? [verdicts.join(', ')] : []),
      ...workload.columns.map((c) => number(row.metrics[c.key], c.decimals)),
      ...(workload.cpuPer !== undefined ? [split(row.cpuPerUser, row.cpuPerSystem)] : []),
      percent(row.loadCpuPercent),
      `${percent(row.serverCpuPercent)} (${percent(row.serverUserPercent)}+${percent(row.serverSystemPercent)})`,
      percent(row.otherCpuPercent),
      `${row.runs - row.failedRuns}/${row.runs}`,
    ];
  });
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
