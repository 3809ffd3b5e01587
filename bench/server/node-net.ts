import * as net from 'node:net';
import { FrameReader, PacketIds } from '../wire';
import type { RunningServer } from './running-server';

/**
 * The baseline: the same packets served by plain `node:net`, the way a careful
 * developer would write it by hand. Every frame is handled and written on its
 * own (`socket.write` per frame, per recipient for a broadcast), and the
 * sockets written to are corked for the length of one read, so a read's
 * replies leave in one writev per socket: the same system calls ringport's
 * net backend makes by corking each tick. What it lacks is sessions, a
 * dispatcher, encoding and send-queue limits, so the ratio to it is the
 * price of those (and, for a native backend, what it saves).
 */
export function startNodeNet(): Promise<RunningServer> {
  const sockets = new Set<net.Socket>();
  const rooms = new Map<number, Set<net.Socket>>();

  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    const reader = new FrameReader();
    let broadcastCorked = false;
    let room: Set<net.Socket> | undefined;

    const onFrame = (buf: Buffer, start: number, end: number, packetId: number): void => {
      switch (packetId) {
        case PacketIds.ECHO:
          socket.write(buf.subarray(start, end));
          break;
        case PacketIds.BROADCAST: {
          if (!broadcastCorked) {
            for (const peer of sockets) peer.cork();
            broadcastCorked = true;
          }
          const frame = buf.subarray(start, end);
          for (const peer of sockets) if (peer.writable) peer.write(frame);
          break;
        }
        case PacketIds.JOIN: {
          room?.delete(socket);
          const id = buf.readUInt32LE(start + 6);
          room = rooms.get(id) ?? new Set();
          rooms.set(id, room);
          room.add(socket);
          socket.write(buf.subarray(start, end));
          break;
        }
        case PacketIds.ROOM: {
          if (room === undefined) break;
          if (!broadcastCorked) {
            for (const peer of room) peer.cork();
            broadcastCorked = true;
          }
          const frame = buf.subarray(start, end);
          for (const peer of room) if (peer !== socket && peer.writable) peer.write(frame);
          break;
        }
        case PacketIds.COUNT: {
          const reply = Buffer.allocUnsafe(10);
          reply.writeUInt32LE(6, 0);
          reply.writeUInt16LE(PacketIds.COUNT, 4);
          reply.writeUInt32LE(sockets.size, 6);
          socket.write(reply);
          break;
        }
        default:
          socket.destroy();
      }
    };

    socket.on('data', (chunk: Buffer) => {
      socket.cork();
      if (!reader.push(chunk, onFrame)) socket.destroy();
      socket.uncork();
      if (broadcastCorked) {
        broadcastCorked = false;
        for (const peer of sockets) peer.uncork();
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      sockets.delete(socket);
      room?.delete(socket);
    });
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      resolve({ port: (server.address() as net.AddressInfo).port });
    });
  });
}
