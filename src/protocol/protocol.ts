/**
 * The wire-protocol seam. A protocol turns the bytes of one connection into
 * packets, each a packet id (0..65535) and a payload, and packets into bytes;
 * it may run a handshake first. Three implementations exist: `framed`
 * (ringport's length-prefixed frames, src/protocol/framed), `websocket`
 * (RFC 6455, src/protocol/websocket) and `http` (HTTP/1.1, whose requests go
 * to routes rather than packets to handlers, and whose connections become
 * sessions only by upgrading to WebSocket; src/protocol/http). Sessions, the dispatcher, rooms and
 * broadcast above see packets only; the backend below sees bytes only. What
 * every protocol must provide is listed here and nowhere else:
 *
 * - `name` says which protocol it is (`server.stats()` counts by it).
 * - `encode(packetId, payload, role)` returns the complete bytes of one
 *   packet as the given side sends it. A server's depend on the packet alone,
 *   never on the connection, so a broadcast is encoded once per protocol and
 *   the same bytes are queued for every recipient that speaks it; a client's
 *   may differ from packet to packet (a WebSocket client masks each frame
 *   with a fresh key). Throws `RP_ERR_INVALID_ARGUMENT` for an id outside
 *   0..65535 and `RP_ERR_FRAME_TOO_LARGE` for a packet over the protocol's
 *   limit.
 * - `open(peer, role)` starts one connection: `server` for an accepted one,
 *   `client` for a dialled one. The stream it returns takes the peer's bytes
 *   in order through `receive(bytes)` (a chunk of any size, empty included;
 *   the stream may keep views of it), and answers through `peer`,
 *   synchronously, inside `receive` or `open`:
 *   - `peer.write(bytes)` for bytes of the protocol's own: a handshake, a
 *     pong, a close frame, an HTTP response. It returns false once the
 *     connection's queue is over its high-water mark: a protocol that writes
 *     in answer to requests (HTTP) stops reading more of them until
 *     `stream.drained()`;
 *   - `peer.writeText(latin1)`: `peer.write` of a string's bytes, one byte
 *     per character (an HTTP head and an ASCII body), with no buffer made
 *     for them on the way: the backend encodes them where it queues them;
 *   - `peer.opened(data)` once the handshake is over (for a protocol without
 *     one, inside `open`): the connection becomes a session now, with `data`
 *     (what an upgrade hook handed over) as its initial `session.data`. No
 *     packet comes before it;
 *   - `peer.packet(packetId, buffer, start, end)` for each packet, its
 *     payload being `buffer[start, end)`: valid during the call, and a view
 *     of it keeps `buffer` alive;
 *   - `peer.switchTo(protocol, bytes)` when the connection goes over to
 *     another protocol (an HTTP connection upgraded to WebSocket on its
 *     path): the peer opens `protocol`'s stream in the same role and hands
 *     it `bytes` (what already arrived for it: the upgrade request and
 *     anything after), then every byte from then on; the connection speaks
 *     `protocol` now (a broadcast encodes for it). The old stream is done;
 *   - `peer.activity()` when bytes arrived that prove the peer alive without
 *     carrying a packet (a pong);
 *   - `peer.fail(reason, error?)` when the peer broke the protocol, refused
 *     the handshake, or asked to close: the connection closes with that
 *     close reason (and `error`, what the peer said, for the close event),
 *     after what the stream has written. A dialled connection that fails
 *     before `opened` counts as a failed connection attempt. Once it has
 *     failed, a stream ignores further input.
 *   `receive` never throws. A handshake that needs the application's answer
 *   (an upgrade hook) may call `peer.opened` or `peer.fail` later, from a
 *   promise; bytes that arrive meanwhile wait in the stream.
 * - `stream.closing(reason)`: this side closes the connection with a close
 *   reason; it returns the bytes to send before the transport ends (a
 *   WebSocket close frame, once), or undefined. It is also called, its bytes
 *   going nowhere, when the connection is gone: the stream stops then, and
 *   no request waiting in it is handled for nobody.
 * - `stream.drained()`, where the protocol has it: the queue fell back to
 *   its low-water mark after `peer.write` returned false.
 * - `keepAliveMs`, where the protocol has a keep-alive of its own: a session
 *   that shows no sign of life (a packet, or `peer.activity()`) for this long
 *   is sent `stream.keepAlive()` (a ping), and closed with `idle-timeout` if
 *   it stays quiet as long again. `stream.keepAlive()` returns undefined
 *   before the handshake is over: such a connection is closed instead. A
 *   protocol without one is bound by the endpoint's `idleTimeoutMs`.
 */
import type { TransportError } from '../backend/backend';
import type { CloseReason } from './close-reason';

/** The protocols a listener or a client can speak. */
export type ProtocolName = 'framed' | 'websocket' | 'http';

/** What a protocol stream tells the connection it serves (see the contract above). */
export interface StreamPeer {
  /** Where the connection comes from, for a handshake hook to see. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  write(bytes: Uint8Array): boolean;
  writeText(latin1: string): boolean;
  opened(data: object | undefined): void;
  packet(packetId: number, buffer: Buffer, start: number, end: number): void;
  activity(): void;
  switchTo(protocol: WireProtocol, bytes: Buffer): void;
  fail(reason: CloseReason, error?: TransportError): void;
}

/** One connection's state in its protocol. */
export interface ProtocolStream {
  receive(bytes: Buffer): void;
  closing(reason: CloseReason): Uint8Array | undefined;
  keepAlive?(): Uint8Array | undefined;
  drained?(): void;
}

/** Which end of a connection this side is. */
export type Role = 'server' | 'client';

export interface WireProtocol {
  readonly name: ProtocolName;
  readonly keepAliveMs?: number;
  encode(packetId: number, payload: Uint8Array, role: Role): Buffer;
  open(peer: StreamPeer, role: Role): ProtocolStream;
}
