import * as net from 'node:net';
import { selectBackend, type Backend, type BackendEvent, type BackendKind, type BackendStats } from '../../src';
import { backends } from '../support/backends';
import { waitFor } from '../support/wait';

const LIMITS = { highWaterMarkBytes: 64 * 1024, lowWaterMarkBytes: 16 * 1024, maxQueueBytes: 64 * 1024 * 1024 };
/** Sent in one tick: under the native send arena (4 MiB), so no flush comes before the tick ends. */
const IN_ONE_TICK = 2 * 1024 * 1024;
/** Sent in all: more than the kernel's buffers hold for a peer that reads nothing. */
const TO_PAUSED = 32 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** What a user reads from stats() at each step of the same traffic. */
interface Reading {
  keys: string[];
  afterEcho: Partial<BackendStats>;
  inTheSendingTick: Partial<BackendStats>;
  whilePaused: { queuedBytesIsBuffered: boolean; queuedPositive: boolean; sendBufferCoversQueue: boolean };
  drained: Partial<BackendStats>;
}

const pick = (s: BackendStats, keys: (keyof BackendStats)[]) => Object.fromEntries(keys.map((k) => [k, s[k]]));
const COUNTS: (keyof BackendStats)[] = ['connections', 'listeners', 'bytesIn', 'bytesOut', 'reads', 'sends', 'queuedBytes', 'stalledCloses'];

async function trafficOn(kind: BackendKind): Promise<Reading> {
  const events: BackendEvent[] = [];
  const backend: Backend = selectBackend(kind).create({ ...LIMITS, onEvents: (batch) => events.push(...batch) });
  try {
    const { port } = await backend.listen({ host: '127.0.0.1', port: 0 });
    const accepted = () => events.flatMap((e) => (e.type === 'accept' ? [e.connId] : []));
    const talker = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    await waitFor(() => accepted().length === 1, 'the first accept');
    const paused = net.connect({ host: '127.0.0.1', port }).on('error', () => undefined);
    await waitFor(() => accepted().length === 2, 'the second accept');
    const [talkerId, pausedId] = accepted();
    let echoed = 0;
    talker.on('data', (chunk) => (echoed += chunk.length));
    let taken = 0;
    paused.on('data', (chunk) => (taken += chunk.length));
    paused.pause();

    talker.write('hello');
    await waitFor(() => backend.stats().bytesIn === 5, 'five bytes in');
    backend.send(talkerId, Buffer.alloc(1000, 1));
    await waitFor(() => echoed === 1000, 'the reply');
    await waitFor(() => backend.stats().queuedBytes === 0, 'nothing queued');
    const afterEcho = pick(backend.stats(), COUNTS);

    // Two MiB to a peer that reads nothing, in one tick: all of it is queued until the tick ends.
    const chunk = Buffer.alloc(CHUNK, 2);
    for (let sent = 0; sent < IN_ONE_TICK; sent += CHUNK) backend.send(pausedId, chunk);
    const inTheSendingTick = pick(backend.stats(), ['queuedBytes', 'sends', 'bytesOut']);
    // The rest over later ticks. The kernel takes what fits in its buffers,
    // which differ from one socket to the next; the rest stays queued.
    for (let sent = IN_ONE_TICK; sent < TO_PAUSED; sent += CHUNK) {
      backend.send(pausedId, chunk);
      if (sent % (1024 * 1024) === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stalled = backend.stats();
    const whilePaused = {
      queuedBytesIsBuffered: stalled.queuedBytes === backend.bufferedAmount(pausedId),
      queuedPositive: stalled.queuedBytes > 0,
      sendBufferCoversQueue: stalled.sendBufferBytes >= stalled.queuedBytes,
    };

    paused.resume();
    await waitFor(() => taken === TO_PAUSED, 'the paused peer reading everything', 30_000);
    await waitFor(() => backend.stats().queuedBytes === 0, 'the queue drained');
    const drained = pick(backend.stats(), COUNTS);
    talker.destroy();
    paused.destroy();
    return { keys: Object.keys(backend.stats()).sort(), afterEcho, inTheSendingTick, whilePaused, drained };
  } finally {
    await backend.shutdown();
  }
}

describe('backend stats', () => {
  it(`have the same fields, and the same values for the same traffic, on ${backends.join(', ')}`, async () => {
    const readings = new Map<BackendKind, Reading>();
    for (const kind of backends) readings.set(kind, await trafficOn(kind));

    const expected: Reading = {
      keys: [
        'batches', 'bytesIn', 'bytesOut', 'completions', 'connections', 'listeners', 'queuedBytes', 'reads', 'recvBufferShortages',
        'recvBuffers', 'relayedPackets', 'sendBufferBytes', 'sends', 'stalledCloses', 'submits', 'wakeups',
      ],
      afterEcho: { connections: 2, listeners: 1, bytesIn: 5, bytesOut: 1000, reads: 1, sends: 1, queuedBytes: 0, stalledCloses: 0 },
      inTheSendingTick: { queuedBytes: IN_ONE_TICK, sends: 1 + IN_ONE_TICK / CHUNK, bytesOut: 1000 + IN_ONE_TICK },
      whilePaused: { queuedBytesIsBuffered: true, queuedPositive: true, sendBufferCoversQueue: true },
      drained: {
        connections: 2,
        listeners: 1,
        bytesIn: 5,
        bytesOut: 1000 + TO_PAUSED,
        reads: 1,
        sends: 1 + TO_PAUSED / CHUNK,
        queuedBytes: 0,
        stalledCloses: 0,
      },
    };
    for (const kind of backends) expect({ kind, ...readings.get(kind)! }).toEqual({ kind, ...expected });
  }, 120_000);
});
