import { createServer, type BackendKind } from '../../src';
import { HTTP_ECHO_PATH, HTTP_GET_PATH, HTTP_GREETING, PacketIds, WEBSOCKET_PATH } from '../wire';
import type { RunningServer } from './running-server';

/**
 * The server under test: ringport as a game developer would write it, with
 * raw packets (no codec), the public API only and the default options. The
 * same handlers serve framed TCP (`ringport/<backend>`) and WebSocket at
 * /play (`ringport/websocket/<backend>`): one binary message is one packet.
 * `ringport/http/<backend>` is an HTTP listener with the two routes of the
 * HTTP workloads, as the README writes them: `GET /` returns the greeting
 * (text/plain), `POST /echo` returns `req.body` (application/octet-stream).
 * Room packets are relayed (the `relay` option, as the README advises for
 * packets a room hears as they are): a player's ROOM packet reaches its
 * room-mates without a handler, in the reactor on the native backends; the
 * ROOM handler sees only those of a player in no room.
 */
export async function startRingport(backend: BackendKind, protocol: 'framed' | 'websocket' | 'http' = 'framed'): Promise<RunningServer> {
  const server = createServer({ backend, relay: [PacketIds.ROOM] });
  if (protocol === 'http') {
    server.http.get(HTTP_GET_PATH, () => HTTP_GREETING);
    server.http.post(HTTP_ECHO_PATH, (req) => req.body);
    const { port } = await server.listen({ host: '127.0.0.1', port: 0, protocol: 'http' });
    if (server.backend.kind !== backend) throw new Error(`asked for backend ${backend}, got ${server.backend.kind}`);
    return { port, stats: () => server.stats() };
  }
  server.handle(PacketIds.ECHO, (session, bytes: Buffer) => {
    session.send(PacketIds.ECHO, bytes);
  });
  server.handle(PacketIds.BROADCAST, (_session, bytes: Buffer) => {
    server.broadcast(PacketIds.BROADCAST, bytes);
  });
  server.handle(PacketIds.JOIN, (session, bytes: Buffer) => {
    server.room(String(bytes.readUInt32LE(0))).join(session);
    return bytes;
  });
  server.handle(PacketIds.ROOM, (session, bytes: Buffer) => {
    session.room?.broadcast(PacketIds.ROOM, bytes, { except: session });
  });
  server.handle(PacketIds.COUNT, () => {
    const count = Buffer.allocUnsafe(4);
    count.writeUInt32LE(server.sessions.size);
    return count;
  });
  const { port } =
    protocol === 'websocket'
      ? await server.listen({ host: '127.0.0.1', port: 0, protocol: 'websocket', path: WEBSOCKET_PATH })
      : await server.listen({ host: '127.0.0.1', port: 0 });
  if (server.backend.kind !== backend) throw new Error(`asked for backend ${backend}, got ${server.backend.kind}`);
  return { port, stats: () => server.stats() };
}
