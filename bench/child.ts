import { fork, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';

/**
 * Every child the orchestrator starts, so that none outlives it: they are
 * killed on normal exit, on an error and on SIGINT/SIGTERM. (A child also
 * exits by itself when its IPC channel closes; see `exitWithParent`.)
 */
const children = new Set<ChildProcess>();

process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nbench: ${signal}, stopping the servers and load generators`);
    process.exit(130);
  });
}

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Starts `bench/<script>` in a process of its own, TypeScript loaded by ts-node
 * (transpile only). `nodeArgs` go to node itself (`--expose-gc`, `--cpu-prof`).
 */
export function startScript(script: string, args: readonly string[], nodeArgs: readonly string[] = []): ChildProcess {
  return track(
    fork(path.join(__dirname, script), args, {
      execArgv: [...nodeArgs, '-r', 'ts-node/register/transpile-only'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
}

/**
 * Starts a native program that speaks in JSON lines on stdout (the C load
 * generator). Each line is re-emitted as a `message` event, so the program is
 * driven like a forked script (see `nextMessage`); anything else it prints
 * passes through. Commands go to its stdin, one line each (`sendLine`); it
 * exits when its stdin closes.
 */
export function startProgram(file: string, args: readonly string[]): ChildProcess {
  const child = track(spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
  child.stdin!.on('error', () => undefined);
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let message: unknown;
    try {
      // The C side writes null where it has no value; the summaries expect NaN.
      message = JSON.parse(line, (_key, value: unknown) => (value === null ? NaN : value));
    } catch {
      console.log(line);
      return;
    }
    child.emit('message', message);
  });
  return child;
}

/** Sends one command line to a program started by `startProgram`. */
export function sendLine(child: ChildProcess, line: string): void {
  child.stdin?.write(`${line}\n`);
}

/**
 * Resolves with the next message of `type` from `child`; rejects if the child
 * ends first or `timeoutMs` passes. It waits for `close`, not `exit`: a
 * program's last lines on stdout may still be in the pipe when it exits.
 */
export function nextMessage<M extends { type: string }, T extends M['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
  what: string,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: M): void => {
      if (message.type !== type) return;
      done();
      resolve(message as Extract<M, { type: T }>);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      done();
      reject(new Error(`${what} exited (${signal ?? `code ${code}`}) before sending '${type}'`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what} sent no '${type}' within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('close', onExit);
    };
    child.on('message', onMessage);
    child.on('close', onExit);
  });
}

/** Stops a child: SIGTERM, then SIGKILL if it has not gone within a second. */
export function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
