import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, KiB, onWindows, seeded } from '../support/chaos-harness';
import { dial, EchoClient, describeEnd, header, inBatches, type RawSocket } from '../support/chaos-peers';
import { Pattern } from '../support/stress-streams';
import { waitFor } from '../support/wait';

/**
 * Scenario 2: thousands of half-open connections (slowloris) against a
 * server child with a short idle timeout. Some connect and send nothing,
 * some send part of a frame header, some send a header and then drip its
 * body a byte at a time, which never completes a packet. Every one of them
 * must be closed with `idle-timeout`, while honest echo clients keep being
 * served the whole time; afterwards the server's sessions and file
 * descriptors are back where they started.
 */

/**
 * Linux: thousands, as a real attack would open. Wine: a few hundred, as its
 * loopback accepts several times slower and each dripping socket costs a
 * timer write there too.
 */
const LORIS = onWindows ? 300 : 3000;
const OPEN_CONCURRENCY = 200;
const HONEST = 8;
/**
 * Short, so the test is quick; honest clients send every few milliseconds,
 * far inside it. Wine gets more room: a stall of its loop must not look like silence.
 */
const IDLE_TIMEOUT_MS = onWindows ? 4000 : 2000;
/** How often a dripper sends its next byte: many times per idle timeout, yet never a whole frame. */
const DRIP_MS = 250;

type Kind = 'silent' | 'partial-header' | 'drip';

describe.each(backends)('chaos: slowloris on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: slowloris`);

  it(`closes ${LORIS} half-open connections with idle-timeout while honest clients are served [${label}]`, async () => {
    const server = await ChaosServer.start({ backend, backlog: 4096, limits: { idleTimeoutMs: IDLE_TIMEOUT_MS } });
    const baselineFds = server.fds();

    const pattern = new Pattern(rng.fork('pattern'), 16 * KiB);
    const plan = { bytes: Infinity, maxPayload: KiB, windowBytes: 16 * KiB, maxChunk: 2 * KiB };
    const honest = await Promise.all(
      Array.from({ length: HONEST }, (_, i) => EchoClient.connect(server.port, rng.fork(`honest ${i}`), pattern, plan, `honest client ${i}`)),
    );
    for (const client of honest) cleanups.push(() => client.socket.destroy());

    const kinds: Kind[] = ['silent', 'partial-header', 'drip'];
    const loris: Array<{ kind: Kind; raw: RawSocket; dripped: number }> = [];
    const drip = setInterval(() => {
      for (const l of loris) {
        if (l.kind !== 'drip' || l.raw.isClosed || l.raw.socket.writableEnded || l.dripped >= 60) continue;
        l.raw.socket.write(Buffer.from([l.dripped++ & 0xff]));
      }
    }, DRIP_MS);
    cleanups.push(() => clearInterval(drip));
    await inBatches(Array.from({ length: LORIS }, (_, i) => kinds[i % kinds.length]), OPEN_CONCURRENCY, async (kind) => {
      const raw = await dial(server.port);
      cleanups.push(() => raw.socket.destroy());
      // A header that declares a 64-byte body, so a dripper's frame can never complete in time.
      if (kind === 'partial-header') raw.socket.write(header(64).subarray(0, rng.int(1, 3)));
      if (kind === 'drip') raw.socket.write(header(64));
      loris.push({ kind, raw, dripped: 0 });
    });

    // Honest clients are served while the loris are held and shed.
    const framesAtOpen = honest.map((client) => client.frames);
    await waitFor(
      () => honest.every((client, i) => client.frames >= framesAtOpen[i] + 100 || client.raw.isClosed),
      'every honest client to get 100 more echoes with the loris open',
      DEADLINE_MS,
    );
    await waitFor(() => loris.every((l) => l.raw.isClosed), `every loris to be closed (${loris.filter((l) => !l.raw.isClosed).length} open)`, DEADLINE_MS);
    clearInterval(drip);
    for (const l of loris) {
      // A dripper's byte may cross the server's FIN and earn a reset; a silent one has no excuse.
      if (l.kind !== 'drip' && (!l.raw.end.ended || l.raw.end.error !== undefined)) {
        report.fail(`a ${l.kind} loris ended with ${describeEnd(l.raw.end)}, not the server's clean close`);
      }
    }
    // The loris see the server's FIN before the server sees theirs: wait for its count, not just their ends.
    const held = await server.until(
      (stats) => stats.sessions + (stats.closes['idle-timeout'] ?? 0) === HONEST + LORIS && stats.sessions <= HONEST,
      `the server to report every loris closed`,
      DEADLINE_MS,
    );
    if (held.closes['idle-timeout'] !== LORIS || held.sessions !== HONEST) {
      report.fail(`with the loris gone: ${held.sessions} sessions (want the ${HONEST} honest ones), closes ${JSON.stringify(held.closes)}`);
    }

    for (const client of honest) client.stop();
    await Promise.all(honest.map((client) => client.whenSettled(DEADLINE_MS)));
    for (const client of honest) if (client.failure !== undefined) report.fail(client.failure);
    for (const end of await Promise.all(honest.map((client) => client.end()))) {
      if (end.error !== undefined) report.fail(`an honest client ended with ${describeEnd(end)}`);
    }
    report.assertClean();

    const last = await server.until(
      (stats, fds) =>
        stats.sessions === 0 &&
        stats.backend.connections === 0 &&
        (baselineFds === undefined || (fds !== undefined && fds <= baselineFds)),
      // At most: a descriptor node held for a moment when the baseline was read (a file it was loading) may be gone.
      `no sessions, no connections and at most the ${baselineFds ?? '(unknown)'} file descriptors the server started with`,
      DEADLINE_MS,
    );
    expect(last.closes).toEqual({ 'idle-timeout': LORIS, 'peer-closed': HONEST });
    expect(last.faults).toEqual([]);
    // Every loris answers the server's FIN at once, so no idle-timeout close may have needed the 2 s watchdog's reset.
    // (A counter new in BackendStats; read without relying on its type.)
    expect((last.backend as { stalledCloses?: number }).stalledCloses).toBe(0);
  }, 3 * DEADLINE_MS);
});
