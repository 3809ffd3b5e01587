import * as net from 'node:net';
import * as os from 'node:os';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { loadAddon } from '../../src/backend/native-addon';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const load = loadAddon();
const withAddon = load.ok ? describe : describe.skip;

const live: Backend[] = [];
const open = (kind: Backend['kind'], onEvents: (batch: readonly BackendEvent[]) => void = () => undefined) => {
  const backend = selectBackend(kind).create({ ...DEFAULT_QUEUE_LIMITS, onEvents });
  live.push(backend);
  return backend;
};
afterEach(() => Promise.all(live.splice(0).map((b) => b.shutdown())));

withAddon('errno names', () => {
  const addon = load.ok ? load.addon : undefined!;

  it('come from the addon, which names every errno one way whatever its sign', () => {
    const values = new Set<number>(Object.values(os.constants.errno));
    for (let e = 1; e < 200; e++) values.add(e);
    for (const e of values) {
      const name = addon.errnoName(-e);
      expect(name).toMatch(/^E[A-Z0-9]+$/);
      expect(addon.errnoName(e)).toBe(name);
    }
    // The number the two old tables disagreed on: glibc says EOPNOTSUPP, os.constants.errno ENOTSUP.
    if (process.platform === 'linux') expect(addon.errnoName(-95)).toBe('EOPNOTSUPP');
  });

  it('are the ones on the errors the addon throws', async () => {
    const backend = open(addon.mechanisms[0]);
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const err = await backend.listen({ host: '127.0.0.1', port }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    expect(err?.code).toBe('EADDRINUSE');
    expect(addon.errnoName(err!.errno!)).toBe(err!.code);
  });
});

describe.each(backends)('backend %s error codes', (kind) => {
  it('name a refused dial and a reset the way the platform table does', async () => {
    const events: BackendEvent[] = [];
    const backend = open(kind, (batch) => events.push(...batch));
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));

    const dial = backend.connect('127.0.0.1', closedPort);
    const peer = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    await waitFor(() => events.some((e) => e.type === 'accept'), 'accept');
    peer.resetAndDestroy();
    await waitFor(() => events.some((e) => e.type === 'close') && events.some((e) => e.type === 'connect'), 'both errors');
    const refused = events.find((e) => e.type === 'connect' && e.connId === dial);
    const reset = events.find((e) => e.type === 'close');
    const expected = (code: string) => (load.ok && kind !== 'net' ? load.addon.errnoName(os.constants.errno[code as keyof typeof os.constants.errno]) : code);
    expect(refused?.type === 'connect' && refused.error?.code).toBe(expected('ECONNREFUSED'));
    expect(reset?.type === 'close' && reset.error?.code).toBe(expected('ECONNRESET'));
  });
});
