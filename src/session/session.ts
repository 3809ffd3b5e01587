import { EventEmitter } from 'node:events';
import { ErrorCodes, RingportError } from '../errors';
import type { TransportError } from '../backend';
import type { CloseReason, ProtocolStream, Role, StreamPeer, WireProtocol } from '../protocol';
import type { IdleEntry } from './idle-list';
import type { IdleSweeper } from './idle-sweeper';
import type { SessionTable } from './session-table';

/** A packet as the application names it: a numeric id, or a codec's message name. */
export type PacketKey = string | number;

export type SessionState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/** What a room must offer a session; `src/app` supplies the real one. */
export interface SessionRoom {
  readonly name: string;
  leave(session: Session): void;
  broadcast(packet: PacketKey, message: unknown, options?: { except?: Session }): void;
  /** Sends a packet `from` received, as it came, to every other member: the relay path that the backend did not take. */
  relay(from: Session, packetId: number, payload: Uint8Array): void;
}

let nextSessionId = 1;

/** A packet that waits behind its session's pending async handler: its own copy of the payload. */
export interface WaitingPacket {
  readonly packetId: number;
  readonly payload: Buffer;
}

// A Session is an EventEmitter: `instanceof EventEmitter`, and every method of one, from its
// prototype (set below the class). But it never runs EventEmitter's constructor, which gives
// each instance six fields and `_events`, a dictionary-mode object of about 200 bytes, before
// anyone listens: Node's EventEmitter makes `_events` on the first `on`, so a session nobody
// listens to (most of them, in a big server) carries none of it.
export interface Session<Data extends object = Record<string, any>> extends EventEmitter {}

/**
 * One peer: an accepted connection ({@link InboundSession}) or a dialled one
 * ({@link OutboundSession}), speaking one wire protocol (framed or
 * WebSocket), which this class serves as the protocol stream's peer: it sees
 * packets, never frames. Events: `drain` (the send queue fell back to the
 * low-water mark), `close` (reason, error?).
 */
export class Session<Data extends object = Record<string, any>> implements IdleEntry, StreamPeer {
  /** Unique in this process; an outbound session keeps its id across reconnects. */
  readonly id = nextSessionId++;
  /** Per-session application data: login name, rate-limit buckets, anything. */
  get data(): Data {
    // Made on first use: a session the application never gives data (a connection that has not
    // logged in yet) carries no empty object.
    return (this.ownData ??= {} as Data);
  }
  set data(data: Data) {
    this.ownData = data;
  }
  /** The room this session is in, if any (a session is in at most one room). */
  room: SessionRoom | undefined = undefined;
  state: SessionState;
  remoteAddress = '';
  remotePort = 0;
  /** Set once the session starts closing. */
  closeReason: CloseReason | undefined = undefined;
  /** The wire protocol this session speaks (an HTTP connection that upgraded speaks WebSocket). */
  protocol: WireProtocol;

  /** @internal The backend connection carrying this session now, or -1. */
  connId = -1;
  /** @internal */ idlePrev: IdleEntry | null = null;
  /** @internal */ idleNext: IdleEntry | null = null;
  /** @internal */ lastActiveMs = 0;
  /** @internal The sweeper that closes this session when it goes quiet, if any. */
  idle: IdleSweeper | undefined = undefined;
  /** @internal A keep-alive (a ping) went out and no sign of life has come since. */
  askedForLife = false;
  /** @internal Packets waiting for this session's pending async handler (see Dispatcher). */
  waitingPackets: WaitingPacket[] | undefined = undefined;

  private ownData: Data | undefined = undefined;
  protected readonly table: SessionTable;
  /** The current connection's protocol state; a new connection gets a new stream. */
  protected stream: ProtocolStream | undefined = undefined;
  /** Whether the application has been told of this session (a handshake that fails never is). */
  protected announced = false;
  private readonly role: Role;
  /** What the peer said when the protocol closed the session (a WebSocket close code), for the close event. */
  private closeError: TransportError | undefined = undefined;

  /** @internal Sessions are made by servers and `connect()`, not by applications. */
  constructor(table: SessionTable, state: SessionState, protocol: WireProtocol, role: Role) {
    this.table = table;
    this.state = state;
    this.protocol = protocol;
    this.role = role;
  }

  /**
   * Listeners run through the endpoint's guard: one that throws (or rejects)
   * is reported to `onError`, and the listeners after it still run.
   */
  emit(event: string | symbol, ...args: unknown[]): boolean {
    return this.table.guard.emit(this, event, this, args);
  }

  /** True while packets can be sent and received. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Bytes queued for this peer and not yet written to the network. */
  get bufferedAmount(): number {
    return this.connId >= 0 ? this.table.backend.bufferedAmount(this.connId) : 0;
  }

  /**
   * Encodes and sends one packet. Returns false when the send queue is over
   * its high-water mark (the packet is still queued; wait for `drain` before
   * sending more). Throws `RP_ERR_SESSION_CLOSED` once the session is closing.
   */
  send(packet: PacketKey, message: unknown): boolean {
    const codec = this.table.codec;
    const packetId = codec.idOf(packet);
    return this.sendFrame(this.protocol.encode(packetId, codec.encode(packetId, message), this.role));
  }

  /** Sends the bytes of packets already encoded for this session's protocol and side. */
  sendFrame(frame: Buffer): boolean {
    if (this.state !== 'open') {
      throw new RingportError(ErrorCodes.SESSION_CLOSED, `session ${this.id} is ${this.state}; cannot send`);
    }
    this.table.packetsOut++;
    const traffic = this.table.traffic[this.protocol.name];
    traffic.packetsOut++;
    traffic.bytesOut += frame.length;
    return this.table.backend.send(this.connId, frame);
  }

  /**
   * Starts closing: queued packets are flushed, then the connection closes and
   * `close` fires with `reason`. Calling it again changes nothing.
   */
  close(reason: CloseReason = 'closed'): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.closeReason = reason;
    this.state = 'closing';
    this.table.stopIdleTracking(this);
    if (this.connId < 0) {
      this.finish(reason);
      return;
    }
    // The protocol's goodbye (a WebSocket close frame) goes out ahead of the end of the stream.
    const goodbye = this.stream?.closing(reason);
    if (goodbye !== undefined) this.write(goodbye);
    this.table.backend.close(this.connId, 'graceful');
  }

  /** @internal Drops the queue and resets the connection; the close reason stays. */
  abort(): void {
    if (this.connId >= 0) this.table.backend.close(this.connId, 'abort');
  }

  /**
   * @internal A connection now carries this session: its protocol starts
   * (and, without a handshake, opens the session at once).
   */
  attach(connId: number, remoteAddress: string, remotePort: number): void {
    this.connId = connId;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.stream = this.protocol.open(this, this.role);
  }

  /** @internal Bytes from the peer, for its protocol to turn into packets. */
  receive(bytes: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.stream!.receive(bytes);
  }

  /** @internal The handshake is over: the session is open. */
  opened(data: object | undefined): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (data !== undefined) this.data = data as Data;
    this.state = 'open';
    this.announced = true;
    this.onOpened();
  }

  /** What opening means to each kind of session: announced by its server, or reconnected. */
  protected onOpened(): void {}

  /**
   * @internal One packet from this session's protocol. A method, not a
   * closure made per session: an idle session should cost as little as it can.
   */
  packet(packetId: number, buffer: Buffer, start: number, end: number): void {
    // A packet earlier in the same chunk may have closed the session.
    if (this.state !== 'open') return;
    this.table.packetsIn++;
    this.table.traffic[this.protocol.name].packetsIn++;
    // A relayed packet goes to the room instead of the handlers; the native
    // backends relay framed senders' ones before they get here (native/relay.h).
    if (this.room !== undefined && this.table.relayIds.has(packetId)) {
      this.room.relay(this, packetId, buffer.subarray(start, end));
      return;
    }
    this.table.onPacket(this, packetId, buffer, start, end);
  }

  /** @internal Bytes of the protocol's own (a handshake, a pong, a close frame); false once over the high-water mark. */
  write(bytes: Uint8Array): boolean {
    if (this.connId < 0) return false;
    this.table.traffic[this.protocol.name].bytesOut += bytes.length;
    return this.table.backend.send(this.connId, bytes);
  }

  /** @internal `write` of a latin1 string's bytes (an HTTP answer's head and text), encoded by the backend as it queues them. */
  writeText(latin1: string): boolean {
    if (this.connId < 0) return false;
    this.table.traffic[this.protocol.name].bytesOut += latin1.length;
    return this.table.backend.sendText(this.connId, latin1);
  }

  /** @internal The send queue fell back to its low-water mark: the protocol hears first, then the listeners. */
  drained(): void {
    this.stream?.drained?.();
    this.emit('drain');
  }

  /** @internal The connection goes over to another protocol (an HTTP upgrade to WebSocket). */
  switchTo(protocol: WireProtocol, bytes: Buffer): void {
    this.protocol = protocol;
    this.table.stopIdleTracking(this);
    this.idle = this.table.sweeperFor(protocol);
    this.table.touch(this);
    this.stream = protocol.open(this, this.role);
    this.stream.receive(bytes);
  }

  /** @internal The peer proved itself alive without a packet (a pong). */
  activity(): void {
    this.table.touch(this);
  }

  /** @internal The peer broke the protocol, or asked to close; `error` is what it said, for the close event. */
  fail(reason: CloseReason, error?: TransportError): void {
    this.closeError = error;
    this.close(reason);
  }

  /** @internal Quiet for a while: asks the peer for a sign of life where the protocol can (a ping). */
  askForLife(): boolean {
    const ping = this.state === 'open' ? this.stream?.keepAlive?.() : undefined;
    if (ping === undefined) return false;
    this.write(ping);
    return true;
  }

  /**
   * @internal The connection is gone. `transportReason` is the session-level
   * reading of the transport's reason; a close this side asked for keeps the
   * reason given to `close()`.
   */
  transportClosed(transportReason: CloseReason, error: TransportError | undefined): void {
    this.connId = -1;
    // The stream stops: nothing it still holds (pipelined requests) is handled for a peer that is gone.
    this.stream?.closing(this.closeReason ?? transportReason);
    this.finish(this.closeReason ?? transportReason, error ?? this.closeError);
  }

  /** `error` is the transport's, when the connection ending is what closes the session. */
  protected finish(reason: CloseReason, error?: TransportError): void {
    if (this.state === 'closed') return;
    this.closeReason = reason;
    this.state = 'closed';
    this.table.forget(this);
    // A session the application never saw (its handshake failed) closes unheard.
    if (!this.announced) return;
    this.emit('close', reason, error);
    this.table.onClose(this, reason, error);
  }
}

// The EventEmitter methods, without its constructor (see the comment above the class).
Object.setPrototypeOf(Session.prototype, EventEmitter.prototype);
