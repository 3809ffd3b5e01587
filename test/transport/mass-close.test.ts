import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_QUEUE_LIMITS, selectBackend, type Backend, type BackendEvent } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const PEERS = 300;

interface PeersResult {
  ended: number;
  clean: number;
  errors: string[];
}

describe.each(backends)('backend %s closing many connections at once', (kind) => {
  let backend: Backend;
  let peers: ChildProcess | undefined;
  afterEach(async () => {
    peers?.kill();
    await backend.shutdown();
  });

  it(`closes ${PEERS} connections gracefully without the stall watchdog`, async () => {
    const events: BackendEvent[] = [];
    backend = selectBackend(kind).create({ ...DEFAULT_QUEUE_LIMITS, onEvents: (batch) => events.push(...batch) });
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const child = fork(path.join(__dirname, 'fin-peers.js'), [String(port), String(PEERS)]);
    peers = child;
    const messages: unknown[] = [];
    child.on('message', (m) => messages.push(m));
    const accepted = () => events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    await waitFor(() => messages.includes('open') && accepted().length === PEERS, `${PEERS} accepts`, 60_000);

    // Their FINs come back together, while the server has nothing else to do.
    for (const connId of accepted()) backend.close(connId, 'graceful');
    const closes = () => events.filter((e) => e.type === 'close');
    const result = () => messages.find((m): m is PeersResult => typeof m === 'object');
    await waitFor(() => closes().length === PEERS && result() !== undefined, `${PEERS} closes on both sides`, 60_000);
    expect(result()).toEqual({ ended: PEERS, clean: PEERS, errors: [] });
    expect(closes().every((e) => e.type === 'close' && e.reason === 'local')).toBe(true);
    // Each close completed on the wire at once: none was left for the watchdog to reset.
    expect(backend.stats().stalledCloses).toBe(0);
  }, 120_000);
});
