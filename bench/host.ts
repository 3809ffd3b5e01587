import * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * Measures how busy the whole machine is over a window, in % of one core.
 * Subtracting the server's and the load generator's own use leaves what
 * everything else took: on a shared machine (a test suite running beside the
 * bench) that is the first thing to check before trusting a figure.
 */
export class HostCpuMeter {
  private start = snapshot();
  private startSteal = stealTicks();
  private startNs = process.hrtime.bigint();

  restart(): void {
    this.start = snapshot();
    this.startSteal = stealTicks();
    this.startNs = process.hrtime.bigint();
  }

  /**
   * Time the hypervisor gave this VM's CPUs to someone else (/proc/stat
   * `steal`), in % of one core: invisible to `busyPercent`, it slows every
   * process here alike. NaN where the kernel does not report it.
   */
  stealPercent(): number {
    const seconds = Number(process.hrtime.bigint() - this.startNs) / 1e9;
    // /proc/stat counts in USER_HZ, 100 per second on Linux.
    return ((stealTicks() - this.startSteal) / 100 / seconds) * 100;
  }

  busyPercent(): number {
    const end = snapshot();
    const total = end.total - this.start.total;
    return total > 0 ? ((total - (end.idle - this.start.idle)) / total) * end.cpus * 100 : NaN;
  }
}

function stealTicks(): number {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    return cpu.length > 8 ? Number(cpu[8]) : NaN;
  } catch {
    return NaN;
  }
}

function snapshot(): { total: number; idle: number; cpus: number } {
  let total = 0;
  let idle = 0;
  const cpus = os.cpus();
  for (const { times } of cpus) {
    total += times.user + times.nice + times.sys + times.idle + times.irq;
    idle += times.idle;
  }
  return { total, idle, cpus: cpus.length };
}

/**
 * Waits until the machine has been nearly idle (under `thresholdPercent` of a
 * core busy) for a whole second, or `maxWaitMs` has passed. Returns whether
 * it got quiet. For shared machines, where a test suite running beside the
 * bench would otherwise land in the figures.
 */
export async function waitForQuiet(maxWaitMs: number, thresholdPercent: number): Promise<boolean> {
  const deadline = Date.now() + maxWaitMs;
  const meter = new HostCpuMeter();
  for (;;) {
    meter.restart();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (meter.busyPercent() < thresholdPercent) return true;
    if (Date.now() >= deadline) return false;
  }
}
