import { backends } from '../support/backends';
import { ChaosServer } from '../support/chaos-child';
import { cleanupAfterEach, DEADLINE_MS, seeded } from '../support/chaos-harness';
import { dial, OneEcho } from '../support/chaos-peers';
import { waitFor } from '../support/wait';

/**
 * Scenario 6: the accept loop survives running out of file descriptors
 * (EMFILE). The server child runs under `prlimit --nofile=LIMIT` (util-linux),
 * so it can hold about LIMIT minus what node itself has open. Clients dial
 * more than that, each sending one echo; once the server is at its limit
 * (the kernel keeps completing handshakes into the listen backlog, so the
 * extra clients connect but are not accepted), some served clients leave,
 * and the server must accept and serve again: the clients waiting in the
 * backlog, or (net: libuv accepts and drops them while at the limit) told to
 * go away, and every client that dials afterwards.
 *
 * Linux only: Windows has no per-process descriptor limit to run into this
 * way (and Wine no prlimit).
 */

const LIMIT = 128;
/** Clients beyond what the limit leaves room for. */
const EXTRA = 40;
/** Served clients that leave to make room; more than EXTRA + LATE, so every waiting and late client fits. */
const LEAVING = 80;
const LATE = 20;

const linuxOnly = process.platform === 'linux' ? describe : describe.skip;

linuxOnly.each(backends)('chaos: accept survives EMFILE on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const { rng, report, label } = seeded(`${backend}: EMFILE`);

  it(`accepts and serves again once descriptors are free (prlimit --nofile=${LIMIT}) [${label}]`, async () => {
    const server = await ChaosServer.start({ backend, backlog: 512 }, { nofile: LIMIT });
    const baseline = server.fds();
    expect(baseline).toBeDefined();
    const room = LIMIT - baseline!;
    const echo = async (name: string): Promise<OneEcho> => {
      const raw = await dial(server.port);
      cleanups.push(() => raw.socket.destroy());
      return new OneEcho(raw, rng.bytes(rng.int(1, 256)), name);
    };

    const flood = await Promise.all(Array.from({ length: room + EXTRA }, (_, i) => echo(`client ${i}`)));
    const served = () => flood.filter((c) => c.served);
    // At the limit: every descriptor in use, and every session the server made has been served.
    await server.until(
      (stats, fds) => fds !== undefined && fds >= LIMIT - 1 && stats.sessions === served().length,
      `the server to reach its descriptor limit of ${LIMIT}`,
      DEADLINE_MS,
    );
    expect(served().length).toBeLessThan(flood.length);

    // Some leave; the server must start accepting again.
    const leaving = served().slice(0, LEAVING);
    expect(leaving.length).toBe(LEAVING);
    for (const client of leaving) client.raw.socket.end();
    await waitFor(() => leaving.every((c) => c.raw.isClosed), 'the leaving clients to close', DEADLINE_MS);
    await waitFor(() => flood.every((c) => c.settled), `every waiting client to be served or turned away (${flood.filter((c) => !c.settled).length} waiting)`, DEADLINE_MS);
    const late = await Promise.all(Array.from({ length: LATE }, (_, i) => echo(`late client ${i}`)));
    await waitFor(() => late.every((c) => c.settled), 'every late client to be served', DEADLINE_MS);

    for (const client of [...flood, ...late]) if (client.failure !== undefined) report.fail(client.failure);
    for (const client of late) if (!client.served) report.fail(`${client.name} was not served after descriptors were freed`);
    const turnedAway = flood.filter((c) => !c.served).length;
    // uring leaves them in the backlog until it can accept; net (libuv) accepts and closes them while at the limit.
    if (backend !== 'net' && turnedAway > 0) report.fail(`${turnedAway} waiting client(s) were dropped, not served once there was room`);
    report.assertClean();

    for (const client of [...flood, ...late]) client.raw.socket.end();
    const last = await server.until(
      (stats, fds) => stats.sessions === 0 && stats.backend.connections === 0 && fds !== undefined && fds <= baseline!,
      // At most: a descriptor node held for a moment when the baseline was read (a file it was loading) may be gone.
      `no sessions and at most the ${baseline} descriptors the server started with`,
      DEADLINE_MS,
    );
    expect(last.faults).toEqual([]);
    expect(Object.keys(last.closes).filter((reason) => reason !== 'peer-closed')).toEqual([]);
  }, 4 * DEADLINE_MS);
});
