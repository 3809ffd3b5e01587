import { createServer, type CloseReason, type Server, type Session } from '../../src';
import { backends } from '../support/backends';
import { cleanupAfterEach, DEADLINE_MS, KiB, onWindows, seeded } from '../support/chaos-harness';
import { dial, describeEnd, SequenceReader } from '../support/chaos-peers';
import { waitFor } from '../support/wait';

/**
 * Scenario 3: one slow reader (a raw socket that never reads) among many
 * receivers of a broadcast. The server broadcasts numbered packets, paced by
 * the honest receivers only (it waits until the slowest honest one is within
 * a window), so only the slow reader's queue can grow: it must be closed
 * with `backpressure`, and every other receiver must get every packet, in
 * order, with nothing missing, before and after that close. What the slow
 * reader does get, once it reads again, is a gap-free start of the sequence.
 */

const TICK = 7;
const PAYLOAD_BYTES = 4 * KiB;
/** Many receivers on Linux; Wine's loopback moves bytes several times slower, so fewer there. */
const RECEIVERS = onWindows ? 10 : 100;
const BURST = 16;
/** Packets an honest receiver may be behind: 256 KiB, well under maxQueueBytes, so honest queues never come near it. */
const WINDOW = 64;
const LIMITS = { highWaterMarkBytes: 64 * KiB, lowWaterMarkBytes: 16 * KiB, maxQueueBytes: 512 * KiB };
/**
 * Loopback's kernel buffers take about 4 MiB from a reader that never reads
 * before the server's own queue starts to grow, so ~1200 packets fill it;
 * past this many the slow reader was never cut off.
 */
const MAX_PACKETS = 20_000;
/** Broadcast after the slow reader's close, to show the others are unaffected by it. */
const AFTER = 256;

/** Resolves once `condition` holds, checking on every turn of the event loop; rejects after `timeoutMs`. */
async function until(condition: () => boolean, what: string, timeoutMs = DEADLINE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe.each(backends)('chaos: a slow reader under broadcast on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { report, label } = seeded(`${backend}: slow reader under broadcast`);

  it(`is closed with backpressure while ${RECEIVERS} others get every packet in order [${label}]`, async () => {
    const server: Server = createServer({ backend, limits: LIMITS });
    cleanups.push(() => server.close({ drainMs: 100 }));
    const reasons = new Map<Session, CloseReason>();
    server.on('sessionClose', (session, reason) => reasons.set(session, reason));
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

    const readers: SequenceReader[] = [];
    for (let i = 0; i < RECEIVERS; i++) {
      const raw = await dial(port);
      cleanups.push(() => raw.socket.destroy());
      readers.push(new SequenceReader(raw, TICK, `receiver ${i}`));
    }
    const slowRaw = await dial(port);
    cleanups.push(() => slowRaw.socket.destroy());
    const slow = new SequenceReader(slowRaw, TICK, 'the slow reader');
    slowRaw.socket.pause();
    await waitFor(() => server.sessions.size === RECEIVERS + 1, 'every receiver to be accepted', DEADLINE_MS);
    const slowSession = [...server.sessions.values()].find((s) => s.remotePort === slowRaw.localPort)!;
    expect(slowSession).toBeDefined();

    let sent = 0;
    const payload = Buffer.alloc(PAYLOAD_BYTES, 0x5a);
    const burst = (): void => {
      for (let k = 0; k < BURST; k++) {
        payload.writeUInt32LE(sent++, 0);
        // The frame is encoded (copied) by broadcast, so one payload buffer serves every packet.
        server.broadcast(TICK, payload);
      }
    };
    const slowest = (): number => Math.min(...readers.map((r) => r.next));
    const honestFine = (): boolean => readers.every((r) => r.failure === undefined && !r.raw.isClosed);

    while (!reasons.has(slowSession) && sent < MAX_PACKETS && honestFine()) {
      burst();
      await until(() => slowest() >= sent - WINDOW || !honestFine(), `honest receivers to come within ${WINDOW} of ${sent}`);
    }
    const atClose = sent;
    for (let more = 0; more < AFTER && honestFine(); more += BURST) {
      burst();
      await until(() => slowest() >= sent - WINDOW || !honestFine(), `honest receivers to come within ${WINDOW} of ${sent}`);
    }
    await until(() => slowest() >= sent || !honestFine(), `every receiver to get all ${sent} packets`);

    expect({ slowReason: reasons.get(slowSession), cutOffWithin: atClose < MAX_PACKETS }).toEqual({ slowReason: 'backpressure', cutOffWithin: true });
    for (const reader of readers) {
      if (reader.failure !== undefined) report.fail(reader.failure);
      else if (reader.next !== sent) report.fail(`${reader.name} got ${reader.next} of ${sent} packets (connection ${describeEnd(reader.raw.end)})`);
    }
    const othersClosed = [...reasons.keys()].filter((s) => s !== slowSession);
    if (othersClosed.length > 0) report.fail(`${othersClosed.length} other session(s) closed: ${othersClosed.map((s) => reasons.get(s)).join(', ')}`);

    // The slow reader was reset; once it reads, it finds a start of the sequence with no gap, then the end.
    slowRaw.socket.resume();
    await slowRaw.closed;
    if (slow.failure !== undefined) report.fail(slow.failure);
    if (slow.next > atClose) report.fail(`the slow reader got ${slow.next} packets, more than the ${atClose} broadcast before its close`);
    report.assertClean();

    for (const reader of readers) reader.raw.socket.end();
    await waitFor(() => server.sessions.size === 0, 'every session to close', DEADLINE_MS);
    await waitFor(() => server.stats().backend.connections === 0, 'the backend to count no connections', DEADLINE_MS);
  }, 3 * DEADLINE_MS);
});
