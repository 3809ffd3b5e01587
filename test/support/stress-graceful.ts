import type { Rng } from './stress-rng';
import { Pattern } from './stress-streams';
import type { StressBackend } from './stress-backend';
import { Conn } from './stress-conn';
import { openPeer } from './stress-peers';
import { eventually, sleep } from './stress-wait';

const KiB = 1024;
/** Node reads at most this much per 'data' event: the trickling reader takes one per tick. */
const READ_CHUNK = 64 * KiB;

interface Watched {
  conn: Conn;
  role: 'trickle' | 'stalled';
  /** Bytes the kernel had taken off the backend's queue when close() was called. */
  inKernel: number;
  tickMs: number;
  closedAfterMs: number | undefined;
}

/**
 * The contract: a graceful close flushes what is queued, sends FIN and waits
 * for the peer's, resetting instead once it makes no progress for 2 s.
 *
 * Two kinds of peer, both paused while the backend queues bytes and closes:
 * - `trickle` reads one chunk every `tickMs` (well under 2 s), so the close
 *   always makes progress; the reader is slow enough that what the kernel
 *   already holds takes about 2.8 s to read. It must get every byte, then the FIN.
 * - `stalled` never reads: the close must be reset about 2 s after close().
 */
export async function runGracefulDeadline(sb: StressBackend, rng: Rng, trickles: number): Promise<Watched[]> {
  const { report } = sb;
  const listenerId = await sb.listen();
  const port = sb.listeners.get(listenerId)!;
  const pattern = new Pattern(rng.fork('pattern'), 256 * KiB);
  const watched: Watched[] = [];
  const base = { peerBytes: 0, ending: 'local-graceful' as const, endAt: 0, mode: 'burst' as const };
  let t0 = 0;
  sb.hooks = {
    close: (conn) => {
      const w = watched.find((x) => x.conn === conn);
      if (w !== undefined) w.closedAfterMs = Date.now() - t0;
      // Let a paused peer read what it has and see the end.
      conn.setPaused('test', false);
    },
  };

  for (let i = 0; i <= trickles; i++) {
    const connRng = rng.fork(`conn ${i}`);
    const conn = new Conn(i, { ...base, origin: 'accepted', backendBytes: 0 }, connRng, pattern.stream(connRng), pattern.stream(connRng));
    conn.setPaused('test', true);
    openPeer(sb, conn, port, () => undefined, () => undefined);
    watched.push({ conn, role: i < trickles ? 'trickle' : 'stalled', inKernel: 0, tickMs: 0, closedAfterMs: undefined });
  }
  if (!(await eventually(() => watched.every((w) => w.conn.track?.state === 'open'), 3000))) {
    report.fail('graceful deadline: the peers were never accepted');
    return watched;
  }

  // Fill the kernel's buffers (the peer is paused), then leave some bytes queued in the backend.
  await Promise.all(
    watched.map(async (w) => {
      for (let round = 0; round < 64 && sb.backend.bufferedAmount(w.conn.connId!) === 0; round++) {
        sb.send(w.conn, w.conn.out.take(256 * KiB));
        await sleep(15);
      }
      sb.send(w.conn, w.conn.out.take(rng.int(1, 256 * KiB)));
      await sleep(30);
      w.inKernel = w.conn.sent - sb.backend.bufferedAmount(w.conn.connId!);
      // About 2.8 s to read what the kernel holds, one chunk per tick: never 2 s without progress.
      w.tickMs = Math.max(20, Math.min(1500, Math.round((READ_CHUNK * 2800) / Math.max(w.inKernel, READ_CHUNK))));
    }),
  );

  t0 = Date.now();
  for (const w of watched) sb.close(w.conn, 'graceful');
  const timers: NodeJS.Timeout[] = [];
  for (const w of watched.filter((x) => x.role === 'trickle')) {
    const socket = w.conn.socket!;
    socket.on('data', () => socket.pause());
    timers.push(setInterval(() => socket.resume(), w.tickMs));
    w.conn.setPaused('test', false);
    socket.pause();
  }
  const settled = await eventually(() => watched.every((w) => w.conn.track?.state === 'closed' && w.conn.peerClosed), 12_000);
  for (const t of timers) clearInterval(t);
  if (!settled) report.fail('graceful deadline: not every connection closed within 12 s');

  for (const w of watched) {
    const { conn } = w;
    const tag = `${w.role} peer (${w.inKernel} bytes in the kernel at close(), ${conn.sentAtLocalClose} queued in all, one read per ${w.tickMs} ms)`;
    if (conn.toPeer.failure !== undefined) report.fail(`${tag}: ${conn.toPeer.failure}`);
    if (conn.closeReason !== 'local') report.fail(`${tag}: the close reason is '${conn.closeReason}', not 'local'`);
    if (w.role === 'trickle') {
      if (!conn.peerGotEnd || conn.receivedByPeerAtEnd !== conn.sentAtLocalClose) {
        report.fail(
          `${tag}: a peer that kept reading got ${conn.toPeer.received} of ${conn.sentAtLocalClose} bytes ` +
            `(${conn.peerGotEnd ? 'then the FIN' : `then ${conn.peerError ?? 'no FIN'}`}); the close ended after ${w.closedAfterMs} ms`,
        );
      }
    } else if (w.closedAfterMs === undefined || w.closedAfterMs < 1900 || w.closedAfterMs > 3000) {
      report.fail(`${tag}: a close that made no progress at all ended after ${w.closedAfterMs} ms, not about 2000 ms`);
    }
  }
  return watched;
}
