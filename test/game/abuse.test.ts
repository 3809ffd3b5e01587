import type { CloseReason, Session } from '../../src';
import type { Bot } from '../../examples/game/bot';
import { startBots } from '../../examples/game/bots';
import { loadCodec, PACKETS, type PacketName } from '../../examples/game/protocol';
import { startLobbyServer } from '../../examples/game/server';
import { backends } from '../support/backends';
import { RawPeer } from '../support/raw-peer';
import { waitFor } from '../support/wait';

const codec = loadCodec();
const HONEST = 12;
const RACES = new Set(['room-full', 'room-in-game', 'no-such-room']);
/** The lobby server's frame limit (server.ts). */
const MAX_FRAME_BYTES = 16 * 1024;
/** The default chat limit: bursts of 5, closed after 20 refusals in a row. */
const BURST = 5;
const CLOSE_AFTER = 20;

function encode(name: PacketName, message: object): Buffer {
  const id = PACKETS[name];
  return Buffer.from(codec.encode(id, message));
}

function decoded(peer: RawPeer, name: PacketName): any[] {
  return peer.packets.filter((p) => p.id === PACKETS[name]).map((p) => codec.decode(p.id, p.payload));
}

function frame(packetId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32LE(payload.length + 2, 0);
  head.writeUInt16LE(packetId, 4);
  return Buffer.concat([head, payload]);
}

describe.each(backends)('the lobby game under bad input and flooding on %s', (backend) => {
  it('closes or refuses every bad peer while honest bots play on untouched', async () => {
    const lobby = await startLobbyServer({ backend, host: '127.0.0.1', port: 0, roundMs: 1000, lobbyPushMs: 50 });
    const port = lobby.address.port;
    // The open sessions not yet bound to a raw peer, by client port: a port a closed peer had may come back
    // at once for the next dial, so a session leaves when it is bound or closes.
    const sessionByPort = new Map<number, Session>();
    const closeReasons = new Map<Session, CloseReason>();
    let accepted = 0;
    let closed = 0;
    lobby.server.on('session', (session) => {
      accepted++;
      sessionByPort.set(session.remotePort, session);
    });
    lobby.server.on('sessionClose', (session, reason) => {
      closed++;
      closeReasons.set(session, reason);
      if (sessionByPort.get(session.remotePort) === session) sessionByPort.delete(session.remotePort);
    });
    const swarm = startBots({
      count: HONEST,
      name: 'honest',
      backend,
      port,
      durationMs: 6000,
      bot: { thinkMs: [50, 300], readyAfterMs: 300, giveUpMs: 1000, chatChance: 0.7, keepChat: true },
    });
    const peers: RawPeer[] = [];
    // Each raw peer's session on the server, taken from sessionByPort once accepted, so a later peer on the port waits for its own.
    const sessionOf = new Map<RawPeer, Session>();
    const dial = async (): Promise<RawPeer> => {
      const peer = await RawPeer.connect(port);
      peers.push(peer);
      const localPort = peer.socket.localPort!;
      await waitFor(() => sessionByPort.has(localPort), 'the server to accept a raw peer');
      sessionOf.set(peer, sessionByPort.get(localPort)!);
      sessionByPort.delete(localPort);
      return peer;
    };
    const reasonOf = (peer: RawPeer) => closeReasons.get(sessionOf.get(peer)!);

    try {
      await waitFor(() => lobby.stats().players === HONEST && lobby.stats().gamesRunning > 0, 'honest bots to be playing', 10_000);
      const gamesBefore = lobby.stats().gamesStarted;

      // Someone points a browser at the port: "GET " read as a length is half a gigabyte.
      const browser = await dial();
      browser.write(Buffer.from('GET / HTTP/1.1\r\nHost: lobby\r\n\r\n'));
      // A frame one byte over the limit; the server closes on its header alone.
      const oversize = await dial();
      const header = Buffer.alloc(4);
      header.writeUInt32LE(MAX_FRAME_BYTES + 1, 0);
      oversize.write(Buffer.concat([header, Buffer.alloc(64)]));
      // A Login whose string runs past the end of the payload.
      const garbled = await dial();
      garbled.write(frame(PACKETS['lobby.Login'], Buffer.from([0x0a, 0x20, 0x61, 0x62])));
      // A packet id nobody handles, and a server-to-client packet sent the wrong way.
      const unknown = await dial();
      unknown.write(frame(999, Buffer.alloc(3)));
      const backwards = await dial();
      backwards.write(frame(PACKETS['lobby.GameTick'], encode('lobby.GameTick', { gameId: 1, tick: 1 })));
      // Refused, not closed: talking before logging in, and taking a name that is in use.
      const early = await dial();
      early.sendPacket(PACKETS['lobby.JoinRoom'], encode('lobby.JoinRoom', { roomId: 1 }));
      early.sendPacket(PACKETS['lobby.Input'], encode('lobby.Input', { dx: 1, dy: 1 }));
      const impostor = await dial();
      impostor.sendPacket(PACKETS['lobby.Login'], encode('lobby.Login', { nickname: 'honest0' }));

      // Over the chat rate now and then: refused, kept. Flooding: closed.
      const chatty = await dial();
      chatty.sendPacket(PACKETS['lobby.Login'], encode('lobby.Login', { nickname: 'chatty' }));
      const flooder = await dial();
      flooder.sendPacket(PACKETS['lobby.Login'], encode('lobby.Login', { nickname: 'flooder' }));
      await waitFor(() => decoded(chatty, 'lobby.Welcome').length === 1 && decoded(flooder, 'lobby.Welcome').length === 1, 'chatty and flooder to log in');
      for (let i = 0; i < BURST + 3; i++) chatty.sendPacket(PACKETS['lobby.Say'], encode('lobby.Say', { text: `chatty ${i}` }));
      flooder.write(Buffer.concat(Array.from({ length: 300 }, (_, i) => frame(PACKETS['lobby.Say'], encode('lobby.Say', { text: `spam ${i}` })))));

      for (const [peer, reason] of [
        [browser, 'frame-too-large'],
        [oversize, 'frame-too-large'],
        [garbled, 'decode-error'],
        [unknown, 'unknown-packet'],
        [backwards, 'unknown-packet'],
        [flooder, 'rate-limited'],
      ] as const) {
        await peer.waitClosed();
        await waitFor(() => reasonOf(peer) !== undefined, 'the server to report the close');
        expect(reasonOf(peer)).toBe(reason);
      }

      await early.waitForPackets(2);
      expect(decoded(early, 'lobby.Error').map((e) => [e.code, e.packet])).toEqual([
        ['not-logged-in', 'lobby.JoinRoom'],
        ['not-logged-in', 'lobby.Input'],
      ]);
      await impostor.waitForPackets(1);
      expect(decoded(impostor, 'lobby.Error').map((e) => e.code)).toEqual(['nickname-taken']);

      const flooderId = decoded(flooder, 'lobby.Welcome')[0].playerId;
      const floodLines = decoded(flooder, 'lobby.ChatLine').filter((l) => l.playerId === flooderId);
      expect(floodLines.map((l) => l.text)).toEqual(Array.from({ length: BURST }, (_, i) => `spam ${i}`));
      const floodRefusals = decoded(flooder, 'lobby.Error').map((e) => e.code);
      expect(floodRefusals).toEqual(Array.from({ length: CLOSE_AFTER }, () => 'rate-limited'));

      const chattyId = decoded(chatty, 'lobby.Welcome')[0].playerId;
      await waitFor(() => decoded(chatty, 'lobby.Error').length === 3, 'three rate-limited refusals for chatty');
      await waitFor(() => decoded(chatty, 'lobby.ChatLine').filter((l) => l.playerId === chattyId).length === BURST, 'chatty lines');
      expect(decoded(chatty, 'lobby.Error').map((e) => e.code)).toEqual(['rate-limited', 'rate-limited', 'rate-limited']);

      // Connections that come and go at once (dialled last: a closed one's port may be reused).
      await Promise.all(Array.from({ length: 50 }, async () => (await dial()).destroy()));

      await swarm.done;
      // The peers that were only refused are still connected.
      for (const peer of [early, impostor, chatty]) expect(peer.isClosed).toBe(false);

      // The honest bots: nothing out of order, no refusal but room races, each played rounds after the attack began.
      const bots: readonly Bot[] = swarm.bots;
      expect(bots.flatMap((b) => b.record.violations.map((v) => `${b.record.nickname}: ${v}`))).toEqual([]);
      expect(bots.flatMap((b) => b.record.errors.filter((code) => !RACES.has(code)))).toEqual([]);
      expect(bots.filter((b) => b.record.logins !== 1 || b.record.reconnects !== 0)).toEqual([]);
      for (const bot of bots) {
        const after = bot.record.games.filter((g) => g.gameId > gamesBefore && ['time-up', 'last-player'].includes(g.over?.reason ?? ''));
        expect({ bot: bot.record.nickname, played: after.length > 0 }).toEqual({ bot: bot.record.nickname, played: true });
        expect(bot.record.closeReason).toBe('closed');
        // Of the flood, only what the rate limit let through reached anyone.
        expect(bot.record.chat.filter((l) => l.playerId === flooderId).length).toBeLessThanOrEqual(BURST);
      }

      // Every connection, bots and raw peers (9 of them, and 50 that came and went), was accepted and closed.
      for (const peer of peers) peer.destroy();
      await waitFor(
        () => accepted === HONEST + 59 && closed === accepted && lobby.server.sessions.size === 0 && lobby.server.rooms.size === 0,
        'the server to see every connection come and go, and hold nothing',
      );
      expect(lobby.stats()).toMatchObject({ sessions: 0, players: 0, rooms: 0, gamesRunning: 0 });
    } finally {
      for (const peer of peers) peer.destroy();
      await swarm.stop();
      await lobby.close({ drainMs: 500 });
    }
  });
});
