import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendKind } from '../../src';
import type { ChaosCommand, ChaosServerConfig, ChaosStats, ChildMessage } from './chaos-protocol';

const SCRIPT = path.join(__dirname, 'chaos-server.ts');
const ROOT = path.join(__dirname, '..', '..');
/** A child starts by compiling the SDK with ts-node; under Wine that alone takes several seconds. */
const START_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 60_000;

/** Every child still running, so that `stopChaosServers` (afterEach) can leave none behind. */
const running = new Set<ChaosServer>();

export interface StartOptions {
  /**
   * Linux: start the child under `prlimit --nofile=<n>:<n>` (util-linux), so
   * it runs out of file descriptors after about n minus what node itself holds.
   */
  nofile?: number;
}

/**
 * The parent's end of a server child (chaos-server.ts): its port and pid,
 * requests for its counters over IPC, its file descriptors read from /proc,
 * and ways to stop it (kill it with SIGKILL to test a crash).
 */
export class ChaosServer {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (s: ChaosStats) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    readonly pid: number,
    readonly backend: BackendKind,
  ) {
    this.exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        running.delete(this);
        for (const { reject } of this.waiting.values()) reject(new Error(`the server child exited (${signal ?? `code ${code}`})`));
        this.waiting.clear();
        resolve({ code, signal });
      };
      if (child.exitCode !== null || child.signalCode !== null) done(child.exitCode, child.signalCode);
      else child.once('exit', done);
    });
    child.on('message', (message: ChildMessage) => {
      if (message.type !== 'reply') return;
      const waiter = this.waiting.get(message.id);
      this.waiting.delete(message.id);
      waiter?.resolve(message.stats);
    });
    running.add(this);
  }

  /** Starts a server child and resolves once it listens. */
  static start(config: ChaosServerConfig, options: StartOptions = {}): Promise<ChaosServer> {
    const execArgv = ['--expose-gc', '-r', 'ts-node/register/transpile-only'];
    const env = { ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json') };
    const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
    const args = [SCRIPT, JSON.stringify(config)];
    const child =
      options.nofile === undefined
        ? fork(SCRIPT, args.slice(1), { cwd: ROOT, execArgv, env, stdio })
        : // prlimit execs node in its own process, so the pid and the IPC channel are node's.
          spawn('prlimit', [`--nofile=${options.nofile}:${options.nofile}`, process.execPath, ...execArgv, ...args], { cwd: ROOT, env, stdio });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the server child did not listen within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(new Error(`the server child exited (${signal ?? `code ${code}`}) before listening`));
      };
      child.once('exit', onExit);
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'failed') {
          clearTimeout(timer);
          child.off('exit', onExit);
          child.kill('SIGKILL');
          reject(new Error(`the server child could not listen: ${message.message}`));
        } else if (message.type === 'listening') {
          clearTimeout(timer);
          child.off('exit', onExit);
          if (message.backend !== config.backend) {
            child.kill('SIGKILL');
            reject(new Error(`asked the server child for backend ${config.backend}, it runs ${message.backend}`));
          } else resolve(new ChaosServer(child, message.port, message.pid, message.backend));
        }
      });
    });
  }

  request(command: ChaosCommand): Promise<ChaosStats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (!this.child.connected) {
        reject(new Error('the server child is gone'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`the server child did not answer '${command.type}' within ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.waiting.set(id, {
        resolve: (stats) => {
          clearTimeout(timer);
          resolve(stats);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.child.send({ ...command, id });
    });
  }

  stats(): Promise<ChaosStats> {
    return this.request({ type: 'stats' });
  }

  /**
   * Asks for stats until `condition` holds for them (and the child's file
   * descriptors), and resolves with those; rejects with the last ones after `timeoutMs`.
   */
  async until(condition: (stats: ChaosStats, fds: number | undefined) => boolean, what: string, timeoutMs: number): Promise<ChaosStats> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const stats = await this.stats();
      const fds = this.fds();
      if (condition(stats, fds)) return stats;
      if (Date.now() > deadline) {
        const { sessions, accepted, closes, faults } = stats;
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}: ` +
            JSON.stringify({ sessions, accepted, closes, faults, connections: stats.backend.connections, fds }),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** The child's open file descriptors (Linux, from /proc); undefined where there is no /proc. */
  fds(): number | undefined {
    return fdCount(this.pid);
  }

  /** Kills the child at once (SIGKILL: no close, no flush, as a crash) and waits for it to be gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Lets the child exit by itself (it does when its IPC channel closes), killing it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Stops every server child still running; for afterEach. */
export async function stopChaosServers(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop()));
}

/** Open file descriptors of `pid` (Linux, from /proc); undefined where that cannot be read. */
export function fdCount(pid: number = process.pid): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}
