import { WebSocket, WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES, PacketIds, WEBSOCKET_PATH } from '../wire';
import type { RunningServer } from './running-server';

/** Whether `ws` masks and unmasks with the optional native `bufferutil` (it does when the package is installed). */
function usesBufferutil(): boolean {
  if (process.env.WS_NO_BUFFER_UTIL) return false;
  try {
    require.resolve('bufferutil', { paths: [require.resolve('ws')] });
    return true;
  } catch {
    return false;
  }
}

/**
 * The most used WebSocket server for Node, doing the same job as ringport's
 * bench server: every binary message is a packet (u16 LE id | payload);
 * ECHO goes back to its sender, BROADCAST to every open client (the sender
 * included) in a loop over `wss.clients`, exactly as the broadcast example of
 * ws's README does, COUNT is answered with the number of clients.
 *
 * ws's defaults but for: permessage-deflate off (ws's server default too;
 * ringport declines it) and messages up to ringport's 1 MiB `maxFrameBytes`
 * (ws: 100 MiB). ws uses `bufferutil` for masking when it is installed, as
 * it is here (an optional dependency of the uWebSockets.js package); the
 * server's stats say whether it was.
 */
export function startWs(): Promise<RunningServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: WEBSOCKET_PATH, perMessageDeflate: false, maxPayload: MAX_FRAME_BYTES });
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer, isBinary) => {
      if (!isBinary || data.length < 2) {
        ws.close(1003);
        return;
      }
      switch (data.readUInt16LE(0)) {
        case PacketIds.ECHO:
          ws.send(data);
          break;
        case PacketIds.BROADCAST:
          wss.clients.forEach((client) => {
            if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
          });
          break;
        case PacketIds.COUNT: {
          const reply = Buffer.allocUnsafe(6);
          reply.writeUInt16LE(PacketIds.COUNT, 0);
          reply.writeUInt32LE(wss.clients.size, 2);
          ws.send(reply);
          break;
        }
        default:
          ws.close(1003);
      }
    });
  });
  const bufferutil = usesBufferutil();
  return new Promise((resolve, reject) => {
    wss.once('error', reject);
    wss.once('listening', () => {
      const address = wss.address();
      if (address === null || typeof address === 'string') {
        reject(new Error(`ws listens on ${String(address)}, not a TCP port`));
        return;
      }
      resolve({ port: address.port, stats: () => ({ connections: wss.clients.size, bufferutil }) });
    });
  });
}
