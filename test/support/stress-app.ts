import { connect, createServer, type BackendKind, type Client, type CloseReason, type Server, type Session } from '../../src';
import type { Report } from './stress-conn';
import type { Rng } from './stress-rng';
import { eventually, within } from './stress-wait';

const ECHO = 1;
const BROADCAST = 2;
const HELLO = 3;

type AppEnding = 'stay' | 'client-close' | 'server-kick';

interface Player {
  readonly index: number;
  readonly rng: Rng;
  readonly ending: AppEnding;
  /** Packets this client will send, and after how many it ends. */
  readonly packets: number;
  readonly endAfter: number;
  client: Client | undefined;
  /** Payloads sent and not yet echoed, oldest first. */
  readonly unechoed: Buffer[];
  sent: number;
  echoed: number;
  broadcasts: number[];
  clientClose: CloseReason | undefined;
  waitingDrain: boolean;
  ended: boolean;
}

interface ServerSide {
  index: number | undefined;
  /** Packets the server handled (and so echoed) for this session. */
  handled: number;
  /** Broadcast sequence numbers queued for this session. */
  broadcasts: number[];
  handledAtKick: number | undefined;
  broadcastsAtKick: number | undefined;
  reason: CloseReason | undefined;
}

/**
 * Many clients against one server through the public API: every client's
 * echoes come back whole and in order, every broadcast reaches exactly the
 * sessions that were open for it and in order, and closes from either side
 * (and the server's own close) report the documented reasons while what was
 * queued before them still arrives.
 */
export async function runApp(kind: BackendKind, rng: Rng, report: Report, cleanups: Array<() => unknown>): Promise<void> {
  const fail = (what: string) => report.fail(`app: ${what}`);
  const server: Server = createServer({
    backend: kind,
    limits: { highWaterMarkBytes: 256 * 1024, lowWaterMarkBytes: 64 * 1024, maxQueueBytes: 32 * 1024 * 1024 },
    onError: (error) => fail(`handler error ${(error as Error).message}`),
  });
  cleanups.push(() => server.close({ drainMs: 100 }));
  const sides = new Map<Session, ServerSide>();
  const side = (session: Session) => {
    let s = sides.get(session);
    if (s === undefined) {
      s = { index: undefined, handled: 0, broadcasts: [], handledAtKick: undefined, broadcastsAtKick: undefined, reason: undefined };
      sides.set(session, s);
    }
    return s;
  };
  server.on('session', (session) => side(session));
  server.on('sessionClose', (session, reason) => {
    side(session).reason = reason;
  });
  server.handle(HELLO, (session, bytes: Buffer) => {
    side(session).index = bytes.readUInt32LE(0);
  });
  server.handle(ECHO, (session, bytes: Buffer) => {
    side(session).handled++;
    return bytes;
  });
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });

  const endings: AppEnding[] = ['stay', 'client-close', 'server-kick'];
  const players: Player[] = Array.from({ length: 24 }, (_, index) => {
    const playerRng = rng.fork(`player ${index}`);
    const packets = playerRng.int(1, 60);
    return {
      index,
      rng: playerRng,
      ending: playerRng.pick(endings),
      packets,
      endAfter: playerRng.int(0, packets),
      client: undefined,
      unechoed: [],
      sent: 0,
      echoed: 0,
      broadcasts: [],
      clientClose: undefined,
      waitingDrain: false,
      ended: false,
    };
  });

  await Promise.all(
    players.map(async (p) => {
      const client = await connect({ port, backend: kind, limits: { maxQueueBytes: 32 * 1024 * 1024 } });
      cleanups.push(() => client.close());
      p.client = client;
      client.handle(ECHO, (_s, bytes: Buffer) => {
        const want = p.unechoed.shift();
        if (want === undefined) fail(`player ${p.index}: an echo of ${bytes.length} bytes beyond what it sent`);
        else if (!want.equals(bytes)) fail(`player ${p.index}: echo #${p.echoed} differs (${bytes.length} bytes, want ${want.length})`);
        p.echoed++;
      });
      client.handle(BROADCAST, (_s, bytes: Buffer) => {
        p.broadcasts.push(bytes.readUInt32LE(0));
      });
      client.on('close', (reason) => {
        p.clientClose = reason;
      });
      client.on('drain', () => {
        p.waitingDrain = false;
      });
      const hello = Buffer.alloc(4);
      hello.writeUInt32LE(p.index);
      client.send(HELLO, hello);
    }),
  );
  await eventually(() => [...sides.values()].filter((s) => s.index !== undefined).length === players.length, 3000);
  const sessionOf = (p: Player) => [...sides.entries()].find(([, s]) => s.index === p.index)?.[0];

  let broadcastSeq = 0;
  const deadline = Date.now() + 8000;
  const settled = (p: Player) =>
    p.ending === 'stay' ? p.sent === p.packets && p.echoed === p.sent : p.ended && p.clientClose !== undefined;
  while (!players.every(settled) && Date.now() < deadline) {
    for (const p of players) {
      const client = p.client!;
      if (p.ended || !client.session.isOpen) continue;
      if (p.sent >= p.endAfter && p.ending !== 'stay') {
        p.ended = true;
        if (p.ending === 'client-close') void client.close();
        else {
          const session = sessionOf(p);
          if (session === undefined) fail(`player ${p.index}: no server session`);
          else {
            const s = side(session);
            s.handledAtKick = s.handled;
            s.broadcastsAtKick = s.broadcasts.length;
            session.close('kicked');
          }
        }
        continue;
      }
      for (let k = p.rng.int(0, 3); k > 0 && p.sent < p.packets && !p.waitingDrain; k--) {
        const payload = p.rng.bytes(p.rng.logInt(1, 128 * 1024) - 1);
        p.unechoed.push(payload);
        p.sent++;
        if (!client.send(ECHO, payload)) p.waitingDrain = true;
      }
    }
    if (rng.chance(0.3)) {
      const payload = rng.bytes(rng.logInt(4, 4096));
      payload.writeUInt32LE(broadcastSeq, 0);
      for (const session of server.sessions.values()) if (session.isOpen) side(session).broadcasts.push(broadcastSeq);
      server.broadcast(BROADCAST, payload);
      broadcastSeq++;
    }
    await new Promise((resolve) => setTimeout(resolve, rng.int(0, 3)));
  }
  for (const p of players) if (!settled(p)) fail(`player ${p.index} (${p.ending}) never settled: sent ${p.sent}/${p.packets}, echoed ${p.echoed}`);

  if ((await within(server.close({ drainMs: 3000 }), 5000)) === 'timeout') fail('server.close did not resolve');
  await eventually(() => players.every((p) => p.clientClose !== undefined), 3000);

  for (const p of players) {
    const session = sessionOf(p);
    if (session === undefined) continue;
    const s = side(session);
    const tag = `player ${p.index} (${p.ending}, sent ${p.sent}, echoed ${p.echoed}, server handled ${s.handled})`;
    const wantClient = p.ending === 'client-close' ? 'closed' : 'peer-closed';
    const wantServer = p.ending === 'client-close' ? 'peer-closed' : p.ending === 'server-kick' ? 'kicked' : 'shutdown';
    if (p.clientClose !== wantClient) fail(`${tag}: the client closed with '${p.clientClose}', want '${wantClient}'`);
    if (s.reason !== wantServer) fail(`${tag}: the server closed its session with '${s.reason}', want '${wantServer}'`);
    if (p.ending === 'client-close' && s.handled !== p.sent) fail(`${tag}: a graceful client close lost packets on the way to the server`);
    if (p.ending === 'server-kick' && p.echoed !== s.handledAtKick) fail(`${tag}: a kick lost echoes queued before it (${s.handledAtKick})`);
    const expected = p.ending === 'server-kick' ? s.broadcasts.slice(0, s.broadcastsAtKick) : s.broadcasts;
    const got = p.broadcasts.join(',');
    if (p.ending === 'client-close') {
      if (!expected.join(',').startsWith(got)) fail(`${tag}: broadcasts ${got} are not a prefix of ${expected.join(',')}`);
    } else if (got !== expected.join(',')) {
      fail(`${tag}: got broadcasts [${got}], want [${expected.join(',')}]`);
    }
  }
  const stats = server.stats();
  if (stats.sessions !== 0) fail(`server.stats().sessions is ${stats.sessions} after close`);
  if (stats.backend.connections !== 0) fail(`the server backend still counts ${stats.backend.connections} connections`);
}
