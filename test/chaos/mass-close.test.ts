import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, onWindows, seeded } from '../support/chaos-harness';
import { ChaosPackets as P, type ChaosStats } from '../support/chaos-protocol';
import { dial, describeEnd, SequenceReader } from '../support/chaos-peers';
import type { Report } from '../support/stress-conn';
import { within } from '../support/stress-wait';

/**
 * Scenario 5: hundreds of sessions closed at once, by `session.close()` on
 * each in one tick and by `server.close()`, with peers that answer the
 * server's FIN at once (node:net's default). Each session first has a few
 * numbered packets queued, so each close must flush them. Every peer must
 * get its packets and then a clean end (no reset), every `sessionClose` must
 * be reported with the right reason, and the backend's graceful-close
 * watchdog (which resets a close that makes no progress for 2 s) must not
 * have had to step in: `stats().backend.stalledCloses === 0`. Nothing here
 * is timed: a stalled close shows in that counter, not as a slow test.
 *
 * The server runs in a child process, alone on its event loop: with the
 * peers in the same process their own activity wakes the loop, and a
 * reactor that does not deliver the peers' FINs by itself (uring, at the
 * time of writing: every close then waits for the watchdog) passes.
 */

/** Hundreds on Linux; Wine accepts and closes several times slower, so a hundred there. */
const SESSIONS = onWindows ? 100 : 300;
const QUEUED = 4;

describe.each(backends)('chaos: closing hundreds of sessions at once on %s', (backend) => {
  const cleanups = cleanupAfterEach();

  async function connectAll(server: ChaosServer): Promise<SequenceReader[]> {
    const readers = await Promise.all(
      Array.from({ length: SESSIONS }, async (_, i) => {
        const raw = await dial(server.port);
        cleanups.push(() => raw.socket.destroy());
        return new SequenceReader(raw, P.SEQ, `peer ${i}`);
      }),
    );
    await server.until((stats) => stats.sessions === SESSIONS, `${SESSIONS} sessions`, DEADLINE_MS);
    return readers;
  }

  async function check(server: ChaosServer, readers: SequenceReader[], want: string, report: Report): Promise<void> {
    for (const reader of readers) {
      if ((await within(reader.raw.closed, DEADLINE_MS)) === 'timeout') report.fail(`${reader.name} was never closed`);
    }
    const stats: ChaosStats = await server.until(
      (s) => s.sessions === 0 && s.backend.connections === 0,
      'every session and connection to close',
      DEADLINE_MS,
    );
    for (const reader of readers) {
      const end = reader.raw.end;
      if (!end.ended || end.error !== undefined) report.fail(`${reader.name} saw ${describeEnd(end)}, not a clean end`);
      if (reader.failure !== undefined) report.fail(reader.failure);
      else if (reader.next !== QUEUED) report.fail(`${reader.name} got ${reader.next} of the ${QUEUED} packets queued before the close`);
    }
    if (JSON.stringify(stats.closes) !== JSON.stringify({ [want]: SESSIONS })) {
      report.fail(`sessionClose reasons ${JSON.stringify(stats.closes)}, want ${SESSIONS} x '${want}'`);
    }
    // The counter is new in BackendStats (graceful closes the 2 s no-progress watchdog had to reset); read it without relying on its type.
    const stalled = (stats.backend as { stalledCloses?: number }).stalledCloses;
    if (stalled !== 0) report.fail(`stats().backend.stalledCloses is ${stalled}, want 0: graceful closes stalled and had to be reset`);
    report.assertClean();
  }

  const one = seeded(`${backend}: session.close() at once`);
  it(`session.close() on ${SESSIONS} sessions in one tick: clean ends, no stalled close [${one.label}]`, async () => {
    const server = await ChaosServer.start({ backend, backlog: 1024 });
    const readers = await connectAll(server);
    await server.request({ type: 'closeSessions', packets: QUEUED });
    await check(server, readers, 'closed', one.report);
  }, 4 * DEADLINE_MS);

  const all = seeded(`${backend}: server.close()`);
  it(`server.close() with ${SESSIONS} sessions: clean ends, no stalled close [${all.label}]`, async () => {
    const server = await ChaosServer.start({ backend, backlog: 1024 });
    const readers = await connectAll(server);
    // A drain deadline far beyond need: the watchdog, not the deadline, is what a stall would meet.
    await server.request({ type: 'close', drainMs: DEADLINE_MS, packets: QUEUED });
    await check(server, readers, 'shutdown', all.report);
  }, 4 * DEADLINE_MS);
});
