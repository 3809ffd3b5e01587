import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, KiB, MiB, onWindows, seeded } from '../support/chaos-harness';
import { ChaosPackets as P } from '../support/chaos-protocol';
import { dial, EchoClient, frame } from '../support/chaos-peers';
import { Pattern } from '../support/stress-streams';
import { waitFor } from '../support/wait';

/**
 * Scenario 4: a slow reader among busy echo traffic must not cost the server
 * more memory than its queue bound. The server runs in a child process so
 * that its RSS is its own. Echo clients keep it busy; once it has warmed up
 * (heap, receive buffers and send arenas at their working size), a watcher
 * connects, asks for NEWS (a small packet sent to it for every echo the
 * server handles, so its packets sit between other connections' echoes in
 * every send the server makes) and never reads. The watcher must be closed
 * with `backpressure`, every echo must come back, and the server's peak RSS
 * may exceed its warm RSS by at most maxQueueBytes plus GROWTH_SLACK.
 *
 * A send queue that keeps a reference to each shared send buffer its small
 * slices come from holds those whole buffers, echoes and all: with 8 KiB
 * echoes and 512-byte NEWS that is about 17 times the queue, which this
 * bound catches.
 */

const MAX_QUEUE_BYTES = 4 * MiB;
/** What else may move between warm and peak: V8's young generation and heap growth, allocator slack, the echo traffic's own buffers. */
const GROWTH_SLACK = 32 * MiB;
/** Past this growth the test stops waiting for the close: the bound is long broken and the machine is shared. */
const GROWTH_CEILING = 512 * MiB;
const ECHO_CLIENTS = 8;
const ECHO_BYTES = 8 * KiB;
const NEWS_BYTES = 512;
/** Echo bytes to move before the memory counts as warm. Wine moves bytes several times slower. */
const WARM_UP_BYTES = onWindows ? 32 * MiB : 128 * MiB;

describe.each(backends)('chaos: a slow reader among busy echo traffic on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: slow reader memory`);

  it(`is closed with backpressure, and the server grows by at most maxQueueBytes + ${GROWTH_SLACK / MiB} MiB [${label}]`, async () => {
    const server = await ChaosServer.start({
      backend,
      limits: { highWaterMarkBytes: 64 * KiB, lowWaterMarkBytes: 16 * KiB, maxQueueBytes: MAX_QUEUE_BYTES },
      newsBytes: NEWS_BYTES,
    });
    const pattern = new Pattern(rng.fork('pattern'), 64 * KiB);
    const plan = { bytes: Infinity, minPayload: ECHO_BYTES, maxPayload: ECHO_BYTES, windowBytes: 128 * KiB, maxChunk: 64 * KiB };
    const clients = await Promise.all(
      Array.from({ length: ECHO_CLIENTS }, (_, i) => EchoClient.connect(server.port, rng.fork(`echo ${i}`), pattern, plan, `echo client ${i}`)),
    );
    for (const client of clients) cleanups.push(() => client.socket.destroy());
    const echoed = () => clients.reduce((n, c) => n + c.expected.received, 0);
    const healthy = () => clients.every((c) => c.failure === undefined);

    await waitFor(() => echoed() >= WARM_UP_BYTES || !healthy(), `${WARM_UP_BYTES / MiB} MiB of warm-up echoes`, DEADLINE_MS);
    const warm = await server.request({ type: 'mark' });

    const watcher = await dial(server.port);
    cleanups.push(() => watcher.socket.destroy());
    watcher.socket.pause();
    watcher.socket.write(frame(P.WATCH, Buffer.alloc(0)));
    const grown = (peak: number) => peak - warm.memory.rss;
    const closed = await server.until(
      (stats) => stats.closes.backpressure >= 1 || grown(stats.peak.rss) > GROWTH_CEILING || !healthy(),
      'the watcher to be closed with backpressure',
      DEADLINE_MS,
    );
    // Some more traffic after the close, so a peak just before it is sampled and the others are seen to carry on.
    const echoedAtClose = echoed();
    await waitFor(() => echoed() >= echoedAtClose + 8 * MiB || !healthy(), '8 MiB more echoes after the close', DEADLINE_MS);
    const after = await server.stats();

    for (const client of clients) client.stop();
    await Promise.all(clients.map((client) => client.whenSettled(DEADLINE_MS)));
    for (const client of clients) if (client.failure !== undefined) report.fail(client.failure);
    // The lifetime peak counts only if it was set after the warm-up.
    const peakRss = Math.max(after.peak.rss, after.maxRss > warm.maxRss ? after.maxRss : 0);
    const figures =
      `warm RSS ${(warm.memory.rss / MiB).toFixed(1)} MiB, peak ${(peakRss / MiB).toFixed(1)} MiB ` +
      `(growth ${(grown(peakRss) / MiB).toFixed(1)} MiB, bound ${(MAX_QUEUE_BYTES + GROWTH_SLACK) / MiB} MiB); ` +
      `peak heapUsed ${(after.peak.heapUsed / MiB).toFixed(1)} MiB, arrayBuffers ${(after.peak.arrayBuffers / MiB).toFixed(1)} MiB; ` +
      `closes ${JSON.stringify(after.closes)}`;
    if (closed.closes.backpressure !== 1) report.fail(`the watcher was not closed with backpressure: ${figures}`);
    if (grown(peakRss) > MAX_QUEUE_BYTES + GROWTH_SLACK) report.fail(`the server grew past its bound with one slow reader: ${figures}`);
    report.assertClean();

    await Promise.all(clients.map((client) => client.end()));
    watcher.socket.resume();
    await watcher.closed;
    const last = await server.until((stats) => stats.sessions === 0, 'every session to close', DEADLINE_MS);
    expect(last.closes).toEqual({ backpressure: 1, 'peer-closed': ECHO_CLIENTS });
    expect(last.faults).toEqual([]);
  }, 4 * DEADLINE_MS);
});
