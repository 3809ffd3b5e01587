import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

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

/** Starts `bench/<script>` in a process of its own, TypeScript loaded by ts-node (transpile only). */
export function startScript(script: string, args: readonly string[]): ChildProcess {
  const child = fork(path.join(__dirname, script), args, {
    execArgv: ['-r', 'ts-node/register/transpile-only'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * Resolves with the next message of `type` from `child`; rejects if the child
 * exits first or `timeoutMs` passes.
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
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
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
