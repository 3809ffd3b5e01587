import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend } from '../../src';
import { backends } from '../support/backends';

const CLIENTS = 10_000;
const IN_FLIGHT = 256;

/** The backlog of the socket listening on `port`: ss shows it as Send-Q. */
function listenBacklog(port: number): number {
  const line = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' }).trim();
  const [, , sendQ] = line.split(/\s+/);
  return Number(sendQ);
}

describe.each(backends)('backend %s under a reconnect storm', (kind) => {
  let backend: Backend;
  afterEach(() => backend.shutdown());

  it(`serves ${CLIENTS} clients dialling ${IN_FLIGHT} at a time, listening with the system's backlog`, async () => {
    backend = selectBackend(kind).create({
      ...DEFAULT_QUEUE_LIMITS,
      onEvents: (batch) => {
        for (const e of batch) if (e.type === 'data') backend.send(e.connId, e.bytes);
      },
    });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    if (process.platform === 'linux') {
      const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
      expect(listenBacklog(port)).toBe(somaxconn);
    }

    // Each client dials, sends a byte, waits for its echo and hangs up; a
    // new one dials as soon as one is done, so IN_FLIGHT handshakes overlap.
    let dialled = 0;
    let served = 0;
    const failures: string[] = [];
    const client = () =>
      new Promise<void>((resolve) => {
        const socket = net.connect({ host: '127.0.0.1', port });
        socket.once('connect', () => socket.write(Buffer.from([dialled & 255])));
        socket.once('data', () => {
          served++;
          socket.destroy();
          resolve();
        });
        socket.once('error', (err: NodeJS.ErrnoException) => {
          failures.push(err.code ?? err.message);
          resolve();
        });
      });
    const dialler = async () => {
      while (dialled < CLIENTS) {
        dialled++;
        await client();
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, dialler));
    expect(failures).toEqual([]);
    expect(served).toBe(CLIENTS);
  }, 300_000);
});
