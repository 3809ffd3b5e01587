import { createServer, type CloseReason, type Server, type Session } from '../../src';
import { backends } from '../support/backends';
import { cleanupAfterEach, DEADLINE_MS, KiB, onWindows, seeded } from '../support/chaos-harness';
import { ChunkedWriter, dial, EchoClient, frame, header, inBatches, describeEnd, type PeerEnd } from '../support/chaos-peers';
import type { Rng } from '../support/stress-rng';
import { ExpectedStream, Pattern } from '../support/stress-streams';
import { within } from '../support/stress-wait';
import { waitFor } from '../support/wait';

/**
 * Scenario 1: fuzzed peers beside honest ones. Each fuzzer sends a seeded mix
 * of valid frames and garbage (random bytes, unknown ids, bodies shorter than
 * a packet id, oversize headers, flipped bytes, cut frames) in random chunks,
 * then ends, resets part-way (often mid-frame), or waits for the server to
 * throw it out. The outcome of its bytes is computed here with a reference
 * reading of the wire format, so each fuzzed session must close with exactly
 * the reason its bytes call for; a reset may cut in before the server has
 * read them, so it may also give `error` or `peer-closed`. Meanwhile honest
 * clients echo byte-exact, and afterwards the server is empty and still serves.
 */

const ECHO = 1;
/** Handled, no reply: a valid packet that is not an echo. */
const SINK = 2;
const MAX_FRAME_BYTES = 64 * KiB;

/** Fuzzers per backend, and how many run at once. Wine's loopback is several times slower: fewer there. */
const FUZZERS = onWindows ? 100 : 1000;
const FUZZ_CONCURRENCY = 32;
const HONEST = onWindows ? 4 : 12;
const HONEST_BYTES = onWindows ? 128 * KiB : 512 * KiB;

type Ending = 'end' | 'reset' | 'wait';

interface Fuzz {
  stream: Buffer;
  ending: Ending;
  /** A reset fuzzer writes only this much of `stream`, then resets. */
  cut: number;
}

interface Reading {
  /** The first protocol violation in the bytes, if any, as the close reason it calls for. */
  violation: CloseReason | undefined;
  /** What the server should echo for the bytes before that: every complete ECHO frame, as sent. */
  echo: Buffer[];
}

/** The wire format's reading of a byte stream, as the server must read it (see the README's Wire format). */
function read(stream: Buffer): Reading {
  const echo: Buffer[] = [];
  let at = 0;
  while (stream.length - at >= 4) {
    const length = stream.readUInt32LE(at);
    if (length > MAX_FRAME_BYTES) return { violation: 'frame-too-large', echo };
    if (stream.length - at - 4 < length) break;
    if (length < 2) return { violation: 'decode-error', echo };
    const id = stream.readUInt16LE(at + 4);
    if (id === ECHO) echo.push(stream.subarray(at, at + 4 + length));
    else if (id !== SINK) return { violation: 'unknown-packet', echo };
    at += 4 + length;
  }
  return { violation: undefined, echo };
}

function payload(rng: Rng, max: number): Buffer {
  return rng.bytes(rng.logInt(1, max + 1) - 1);
}

const PIECES = ['echo', 'echo', 'echo', 'sink', 'unknown', 'short', 'oversize', 'noise', 'flipped', 'cut'] as const;

function makeFuzz(rng: Rng): Fuzz {
  const pieces: Buffer[] = [];
  for (let n = rng.int(1, 8); n > 0; n--) {
    switch (rng.pick(PIECES)) {
      case 'echo':
        pieces.push(frame(ECHO, payload(rng, 2048)));
        break;
      case 'sink':
        pieces.push(frame(SINK, payload(rng, 512)));
        break;
      case 'unknown':
        pieces.push(frame(rng.pick([0, 3, 99, 0xffff, rng.int(3, 0xffff)]), payload(rng, 256)));
        break;
      case 'short': {
        const length = rng.int(0, 1);
        pieces.push(Buffer.concat([header(length), rng.bytes(length)]));
        break;
      }
      case 'oversize':
        pieces.push(
          Buffer.concat([header(rng.pick([MAX_FRAME_BYTES + 1, rng.int(MAX_FRAME_BYTES + 1, 0xffffffff), 0xffffffff])), rng.bytes(rng.int(0, 64))]),
        );
        break;
      case 'noise':
        pieces.push(rng.bytes(rng.int(1, 300)));
        break;
      case 'flipped': {
        const bytes = frame(ECHO, payload(rng, 256));
        bytes[rng.int(0, bytes.length - 1)] ^= rng.int(1, 255);
        pieces.push(bytes);
        break;
      }
      case 'cut': {
        const bytes = frame(rng.pick([ECHO, SINK]), payload(rng, 1024));
        pieces.push(bytes.subarray(0, rng.int(1, bytes.length - 1)));
        break;
      }
    }
  }
  const stream = Buffer.concat(pieces);
  const { violation } = read(stream);
  const ending: Ending = rng.pick(violation === undefined ? (['end', 'reset'] as const) : (['end', 'reset', 'wait'] as const));
  return { stream, ending, cut: rng.int(0, stream.length) };
}

/** The close reasons the server may give a fuzzer's session. */
function allowedReasons(fuzz: Fuzz): CloseReason[] {
  if (fuzz.ending === 'reset') {
    const { violation } = read(fuzz.stream.subarray(0, fuzz.cut));
    return violation === undefined ? ['error', 'peer-closed'] : [violation, 'error', 'peer-closed'];
  }
  return [read(fuzz.stream).violation ?? 'peer-closed'];
}

describe.each(backends)('chaos: fuzzed peers beside honest ones on %s', (backend) => {
  const cleanups = cleanupAfterEach();
  const name = `${backend}: fuzzed peers`;
  const { rng, report, label } = seeded(name);

  it(`close with the reason their bytes call for, while honest clients get every byte back [${label}]`, async () => {
    const server: Server = createServer({
      backend,
      framing: { maxFrameBytes: MAX_FRAME_BYTES },
      onError: (error) => report.fail(`the error hook saw ${String(error)}`),
    });
    cleanups.push(() => server.close({ drainMs: 100 }));
    server.handle(ECHO, (_session, bytes: Buffer) => bytes);
    server.handle(SINK, () => undefined);
    const sessionsByPort = new Map<number, Session[]>();
    const reasons = new Map<Session, CloseReason>();
    server.on('session', (session) => {
      const list = sessionsByPort.get(session.remotePort) ?? [];
      list.push(session);
      sessionsByPort.set(session.remotePort, list);
    });
    server.on('sessionClose', (session, reason) => reasons.set(session, reason));
    const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

    const pattern = new Pattern(rng.fork('pattern'), 64 * KiB);
    const plan = { bytes: HONEST_BYTES, maxPayload: 8 * KiB, windowBytes: 64 * KiB, maxChunk: 4 * KiB };
    const honest = await Promise.all(
      Array.from({ length: HONEST }, (_, i) => EchoClient.connect(port, rng.fork(`honest ${i}`), pattern, plan, `honest client ${i}`)),
    );
    for (const client of honest) cleanups.push(() => client.socket.destroy());

    const fuzzes = Array.from({ length: FUZZERS }, (_, i) => makeFuzz(rng.fork(`fuzz ${i}`)));
    const outcomes: Array<{ port: number; end: PeerEnd } | undefined> = [];
    const fuzzed = inBatches(fuzzes, FUZZ_CONCURRENCY, async (fuzz, i) => {
      const fuzzRng = rng.fork(`writer ${i}`);
      const raw = await dial(port);
      cleanups.push(() => raw.socket.destroy());
      const echo = new ExpectedStream(`fuzzer ${i}'s echoes`);
      for (const bytes of read(fuzz.stream).echo) echo.push(bytes);
      raw.socket.on('data', (chunk: Buffer) => echo.feed(chunk));
      const writer = new ChunkedWriter(raw.socket, fuzzRng, 512);
      writer.write(fuzz.ending === 'reset' ? fuzz.stream.subarray(0, fuzz.cut) : fuzz.stream);
      await writer.idle();
      if (fuzz.ending === 'end') raw.socket.end();
      else if (fuzz.ending === 'reset') raw.socket.resetAndDestroy();
      const end = await within(raw.closed, DEADLINE_MS);
      if (end === 'timeout') {
        report.fail(`fuzzer ${i} (${fuzz.ending}, ${fuzz.stream.length} bytes) was still connected after ${DEADLINE_MS} ms`);
        raw.socket.destroy();
        return;
      }
      // Whatever came back must be the start of the echoes its valid frames call for: nothing else, nothing twice.
      if (echo.failure !== undefined) report.fail(echo.failure);
      outcomes[i] = { port: raw.localPort, end };
    });

    await Promise.all(honest.map((client) => client.whenSettled(DEADLINE_MS)));
    for (const client of honest) if (client.failure !== undefined) report.fail(client.failure);
    await fuzzed;
    const honestEnds = await Promise.all(honest.map((client) => client.end()));
    honestEnds.forEach((end, i) => {
      if (end.error !== undefined) report.fail(`honest client ${i} ended with ${describeEnd(end)}`);
    });

    await waitFor(() => server.sessions.size === 0, `every session to close (${server.sessions.size} open)`, DEADLINE_MS);
    await waitFor(() => server.stats().backend.connections === 0, 'the backend to count no connections', DEADLINE_MS);

    const counts = new Map<number, number>();
    for (const outcome of outcomes) if (outcome !== undefined) counts.set(outcome.port, (counts.get(outcome.port) ?? 0) + 1);
    const tally: Record<string, number> = {};
    fuzzes.forEach((fuzz, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined || counts.get(outcome.port)! > 1) return;
      const sessions = sessionsByPort.get(outcome.port) ?? [];
      const what = `fuzzer ${i} (${fuzz.ending}${fuzz.ending === 'reset' ? ` after ${fuzz.cut}` : ''} of ${fuzz.stream.length} bytes: ${fuzz.stream.subarray(0, 24).toString('hex')}...)`;
      if (sessions.length === 0) {
        // A connection reset before the server took it from the accept queue may never become a session.
        if (fuzz.ending !== 'reset') report.fail(`${what}: the server never had a session for it`);
        return;
      }
      // A later session that names this port too was given a stale address (checked below); the first is this fuzzer's.
      const reason = reasons.get(sessions[0]);
      const allowed = allowedReasons(fuzz);
      tally[String(reason)] = (tally[String(reason)] ?? 0) + 1;
      if (reason === undefined || !allowed.includes(reason)) {
        report.fail(`${what}: closed with '${reason}', want ${allowed.map((r) => `'${r}'`).join(' or ')}`);
      }
    });
    // A session's remote address is its own peer's: a port that names more sessions than connections had it is wrong.
    for (const [remotePort, sessions] of sessionsByPort) {
      const connections = (counts.get(remotePort) ?? 0) + honest.filter((c) => c.localPort === remotePort).length;
      if (sessions.length > connections && remotePort !== 0) {
        const extra = sessions.slice(connections).map((s) => `session ${s.id} (closed with '${reasons.get(s)}')`);
        report.fail(
          `${sessions.length} sessions report remote port ${remotePort}, which ${connections} connection(s) had: ` +
            `${extra.join(', ')} carry the address of session ${sessions[0].id}, an earlier connection`,
        );
      }
    }
    for (const client of honest) {
      const sessions = sessionsByPort.get(client.localPort) ?? [];
      const reason = sessions.length === 0 ? 'no session' : reasons.get(sessions[0]);
      if (reason !== 'peer-closed') report.fail(`${client.name}'s session closed with '${reason}', want 'peer-closed'`);
    }
    // Every outcome the fuzzers are meant to reach was reached (a seed that stopped doing so would test less).
    for (const reason of ['frame-too-large', 'decode-error', 'unknown-packet', 'peer-closed']) {
      if (!(tally[reason] > 0)) report.fail(`no fuzzed session closed with '${reason}' (${JSON.stringify(tally)})`);
    }
    report.assertClean();

    // The server carries on: a new honest client is served in full.
    const after = await EchoClient.connect(port, rng.fork('after'), pattern, plan, 'the honest client after the fuzzing');
    cleanups.push(() => after.socket.destroy());
    await after.whenSettled(DEADLINE_MS);
    expect(after.failure).toBeUndefined();
    expect((await after.end()).error).toBeUndefined();
  }, 3 * DEADLINE_MS);
});
