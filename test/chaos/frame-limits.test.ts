import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, MiB, onWindows, seeded } from '../support/chaos-harness';
import { ChaosPackets as P, type ChaosStats } from '../support/chaos-protocol';
import { describeEnd, dial, header, OneEcho, type RawSocket } from '../support/chaos-peers';
import { within } from '../support/stress-wait';

/**
 * Scenario 9: frames at the edge of `maxFrameBytes` (the default, 1 MiB),
 * against a server child. A frame whose body is exactly maxFrameBytes is
 * delivered (and its echo, as large, comes back whole). A header declaring
 * one byte more closes its session with `frame-too-large` although its body
 * never completes, so the close cannot have waited to buffer it. A header
 * declaring 2^32-1 is closed at once, and the server's heap and array
 * buffers (after a full collection, and their peaks sampled meanwhile) do
 * not jump: nothing was allocated for the declared length.
 */

const MAX_FRAME_BYTES = MiB;
const EXACT = 4;
const OVER = 32;
/** Wine accepts several times slower; the point is the memory, not the count. */
const HUGE = onWindows ? 16 : 64;
/** What the heap or array buffers may move by while HUGE peers are refused: noise, not a declared 4 GiB (or even HUGE x 1 MiB). */
const JUMP_BYTES = 16 * MiB;

describe.each(backends)('chaos: frames at the edge of maxFrameBytes on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: frame limits`);

  it(`delivers maxFrameBytes, refuses one byte more on the header, and 2^32-1 costs nothing [${label}]`, async () => {
    const server = await ChaosServer.start({ backend });
    const connect = async (): Promise<RawSocket> => {
      const raw = await dial(server.port);
      cleanups.push(() => raw.socket.destroy());
      return raw;
    };
    const closedAll = async (raws: RawSocket[], what: string): Promise<void> => {
      for (const raw of raws) if ((await within(raw.closed, DEADLINE_MS)) === 'timeout') report.fail(`${what}: a connection was never closed`);
    };

    // Exactly maxFrameBytes: a 2-byte id and maxFrameBytes - 2 of payload.
    const exact = await Promise.all(
      Array.from({ length: EXACT }, async (_, i) => new OneEcho(await connect(), rng.bytes(MAX_FRAME_BYTES - 2), `exact frame ${i}`, P.ECHO)),
    );
    await server.until(() => exact.every((e) => e.settled), 'every exact-size frame to be echoed', DEADLINE_MS);
    for (const e of exact) {
      if (e.failure !== undefined) report.fail(e.failure);
      else if (!e.served) report.fail(`${e.name} was not echoed (${describeEnd(e.raw.end)})`);
    }
    let stats: ChaosStats = await server.stats();
    if (Object.keys(stats.closes).length > 0) report.fail(`sessions closed over exact-size frames: ${JSON.stringify(stats.closes)}`);

    // One byte over, with only part of the body sent: a server that waited for the body would never close these.
    const over = await Promise.all(Array.from({ length: OVER }, () => connect()));
    for (const raw of over) raw.socket.write(Buffer.concat([header(MAX_FRAME_BYTES + 1), rng.bytes(1000)]));
    await closedAll(over, 'one byte over');
    stats = await server.until((s) => s.sessions === EXACT, 'the oversize sessions to close', DEADLINE_MS);
    if (stats.closes['frame-too-large'] !== OVER) report.fail(`frame-too-large closed ${stats.closes['frame-too-large']} of ${OVER}: ${JSON.stringify(stats.closes)}`);

    // 2^32-1, measured: a full collection before and after, peaks sampled in between.
    const before = await server.request({ type: 'gc' });
    await server.request({ type: 'mark' });
    const huge = await Promise.all(Array.from({ length: HUGE }, () => connect()));
    for (const raw of huge) raw.socket.write(Buffer.concat([header(0xffffffff), rng.bytes(64)]));
    await closedAll(huge, '2^32-1');
    await server.until((s) => s.sessions === EXACT, 'the 2^32-1 sessions to close', DEADLINE_MS);
    const peaks = (await server.stats()).peak;
    const after = await server.request({ type: 'gc' });
    if (after.closes['frame-too-large'] !== OVER + HUGE) report.fail(`frame-too-large closed ${after.closes['frame-too-large']} of ${OVER + HUGE}`);
    const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
    const growth = {
      heapUsed: after.memory.heapUsed - before.memory.heapUsed,
      arrayBuffers: after.memory.arrayBuffers - before.memory.arrayBuffers,
      peakHeapUsed: peaks.heapUsed - before.memory.heapUsed,
      peakArrayBuffers: peaks.arrayBuffers - before.memory.arrayBuffers,
      peakRss: peaks.rss - before.memory.rss,
    };
    for (const [what, bytes] of Object.entries(growth)) {
      if (bytes > JUMP_BYTES) report.fail(`${what} grew by ${mib(bytes)} over ${HUGE} headers of 2^32-1 (allowed ${mib(JUMP_BYTES)})`);
    }
    if (after.faults.length > 0) report.fail(`faults: ${after.faults.join('; ')}`);
    report.assertClean();

    // The exact-size sessions are still open and still serve.
    const again = new OneEcho(exact[0].raw, rng.bytes(MAX_FRAME_BYTES - 2), 'exact frame 0, again', P.ECHO);
    await server.until(() => again.settled, 'the second exact-size echo', DEADLINE_MS);
    expect(again.failure).toBeUndefined();
    expect(again.served).toBe(true);
  }, 4 * DEADLINE_MS);
});
