import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, onWindows, seeded } from '../support/chaos-harness';
import { ChaosPackets as P } from '../support/chaos-protocol';
import { describeEnd, dial, frame, header, OneEcho } from '../support/chaos-peers';
import type { Rng } from '../support/stress-rng';
import { within } from '../support/stress-wait';

/**
 * Scenario 7: connection churn. CYCLES short connections, at most
 * CONCURRENCY at a time, each one of: a graceful echo (send, get it back,
 * FIN), a reset (some after a partial frame, some after an echo), a FIN in
 * the middle of a frame, a connect-and-close with nothing sent, and a
 * protocol violation the server closes. Afterwards the server child has no
 * session, has reported a close for every session it accepted, and holds
 * exactly the file descriptors it started with (Linux, from /proc; Windows
 * checks everything but the descriptors).
 */

/**
 * 20,000 on Linux. Wine completes connections an order of magnitude slower
 * (and its loopback turns some resets into FINs), so 2,000 there: enough to
 * reuse every slot many times over.
 */
const CYCLES = onWindows ? 2_000 : 20_000;
const CONCURRENCY = 64;

type Cycle = 'echo' | 'reset' | 'reset-after-echo' | 'mid-frame' | 'empty' | 'unknown-packet';
const CYCLE_KINDS: Array<[Cycle, number]> = [
  ['echo', 35],
  ['reset', 20],
  ['reset-after-echo', 5],
  ['mid-frame', 20],
  ['empty', 10],
  ['unknown-packet', 10],
];

function pickCycle(rng: Rng): Cycle {
  let roll = rng.int(0, 99);
  for (const [kind, weight] of CYCLE_KINDS) {
    if (roll < weight) return kind;
    roll -= weight;
  }
  return 'echo';
}

describe.each(backends)('chaos: connection churn on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: churn`);

  it(`${CYCLES} connect/send/close cycles leave no session and no descriptor behind [${label}]`, async () => {
    const server = await ChaosServer.start({ backend, backlog: 1024 });
    const baseline = server.fds();
    const counts: Record<string, number> = {};
    const open = new Set<{ destroy(): void }>();
    cleanups.push(() => {
      for (const socket of open) socket.destroy();
    });

    const run = async (index: number): Promise<void> => {
      const cycleRng = rng.fork(index);
      const kind = pickCycle(cycleRng);
      counts[kind] = (counts[kind] ?? 0) + 1;
      const raw = await dial(server.port);
      open.add(raw.socket);
      const what = `cycle ${index} (${kind})`;
      const socket = raw.socket;
      switch (kind) {
        case 'echo':
        case 'reset-after-echo': {
          const echo = new OneEcho(raw, cycleRng.bytes(cycleRng.int(0, 512)), what, P.ECHO);
          const settled = await within(
            new Promise<void>((resolve) => {
              const check = () => (echo.settled ? resolve() : undefined);
              socket.on('data', check);
              void raw.closed.then(check);
            }),
            DEADLINE_MS,
          );
          if (echo.failure !== undefined) report.fail(echo.failure);
          else if (settled === 'timeout' || !echo.served) report.fail(`${what}: no echo (${describeEnd(raw.end)})`);
          if (kind === 'echo') socket.end();
          else socket.resetAndDestroy();
          break;
        }
        case 'reset': {
          const bytes = frame(P.ECHO, cycleRng.bytes(cycleRng.int(0, 256)));
          if (cycleRng.chance(0.7)) socket.write(bytes.subarray(0, cycleRng.int(1, bytes.length)));
          socket.resetAndDestroy();
          break;
        }
        case 'mid-frame': {
          const bytes = frame(P.ECHO, cycleRng.bytes(cycleRng.int(1, 256)));
          socket.write(bytes.subarray(0, cycleRng.int(1, bytes.length - 1)));
          socket.end();
          break;
        }
        case 'empty':
          socket.end();
          break;
        case 'unknown-packet':
          // The server closes this one; a header alone of 0 would be a decode-error, an id of 77 is unknown.
          socket.write(Buffer.concat([header(2), Buffer.from([77, 0])]));
          break;
      }
      if ((await within(raw.closed, DEADLINE_MS)) === 'timeout') {
        report.fail(`${what}: the connection was still open after ${DEADLINE_MS} ms`);
        socket.destroy();
      } else if ((kind === 'echo' || kind === 'empty' || kind === 'unknown-packet') && raw.end.error !== undefined) {
        report.fail(`${what}: ended with ${describeEnd(raw.end)}`);
      }
      open.delete(socket);
    };

    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CYCLES) await run(next++);
      }),
    );
    report.assertClean();

    const last = await server.until(
      (stats, fds) => stats.sessions === 0 && stats.backend.connections === 0 && (baseline === undefined || (fds !== undefined && fds <= baseline)),
      // At most: node may close a descriptor of its own start-up meanwhile; what is checked is that churn leaks none.
      `no sessions, no connections and no more than the ${baseline ?? '(unknown)'} descriptors the server started with`,
      DEADLINE_MS,
    );
    const closed = Object.values(last.closes).reduce((n, c) => n + c, 0);
    const notReset = CYCLES - counts.reset - counts['reset-after-echo'];
    expect({
      // Every session the server accepted was closed, and reported once.
      closedEqualsAccepted: closed === last.accepted,
      // Only a connection reset before it was accepted may have no session at all.
      acceptedAtLeastNotReset: last.accepted >= notReset,
      unknownPacket: last.closes['unknown-packet'],
      otherReasons: Object.keys(last.closes).filter((r) => !['peer-closed', 'error', 'unknown-packet'].includes(r)),
      faults: last.faults,
    }).toEqual({
      closedEqualsAccepted: true,
      acceptedAtLeastNotReset: true,
      unknownPacket: counts['unknown-packet'],
      otherReasons: [],
      faults: [],
    });
  }, 5 * DEADLINE_MS);
});
