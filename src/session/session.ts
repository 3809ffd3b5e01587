import { EventEmitter } from 'node:events';
import { ErrorCodes, RingportError } from '../errors';
import { FrameDecoder, type FrameSink } from '../framing';
import type { TransportError } from '../backend';
import type { CloseReason } from './close-reason';
import type { IdleEntry } from './idle-list';
import type { SessionTable } from './session-table';

/** A packet as the application names it: a numeric id, or a codec's message name. */
export type PacketKey = string | number;

export type SessionState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';

/** What a room must offer a session; `src/app` supplies the real one. */
export interface SessionRoom {
  readonly name: string;
  leave(session: Session): void;
  broadcast(packet: PacketKey, message: unknown, options?: { except?: Session }): void;
}

let nextSessionId = 1;

/**
 * One peer: an accepted connection ({@link InboundSession}) or a dialled one
 * ({@link OutboundSession}). Events: `drain` (the send queue fell back to the
 * low-water mark), `close` (reason, error?).
 */
export class Session<Data extends object = Record<string, any>> extends EventEmitter implements IdleEntry, FrameSink {
  /** Unique in this process; an outbound session keeps its id across reconnects. */
  readonly id = nextSessionId++;
  /** Per-session application data: login name, rate-limit buckets, anything. */
  data: Data = {} as Data;
  /** The room this session is in, if any (a session is in at most one room). */
  room: SessionRoom | undefined = undefined;
  state: SessionState;
  remoteAddress = '';
  remotePort = 0;
  /** Set once the session starts closing. */
  closeReason: CloseReason | undefined = undefined;

  /** @internal The backend connection carrying this session now, or -1. */
  connId = -1;
  /** @internal */ idlePrev: IdleEntry | null = null;
  /** @internal */ idleNext: IdleEntry | null = null;
  /** @internal */ lastActiveMs = 0;
  /** @internal Frames waiting for this session's pending async handler (see Dispatcher). */
  waitingFrames: Buffer[] | undefined = undefined;

  protected readonly table: SessionTable;
  protected decoder: FrameDecoder;

  /** @internal Sessions are made by servers and `connect()`, not by applications. */
  constructor(table: SessionTable, state: SessionState) {
    super();
    this.table = table;
    this.state = state;
    this.decoder = new FrameDecoder(table.framing);
  }

  /**
   * Listeners run through the endpoint's guard: one that throws (or rejects)
   * is reported to `onError`, and the listeners after it still run.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
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
    return this.sendFrame(this.table.encode(packet, message));
  }

  /** Sends a complete, already encoded frame (see `encodePacket`). */
  sendFrame(frame: Buffer): boolean {
    if (this.state !== 'open') {
      throw new RingportError(ErrorCodes.SESSION_CLOSED, `session ${this.id} is ${this.state}; cannot send`);
    }
    this.table.packetsOut++;
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
    if (this.connId >= 0) this.table.backend.close(this.connId, 'graceful');
    else this.finish(reason);
  }

  /** @internal Drops the queue and resets the connection; the close reason stays. */
  abort(): void {
    if (this.connId >= 0) this.table.backend.close(this.connId, 'abort');
  }

  /** @internal */
  attach(connId: number, remoteAddress: string, remotePort: number): void {
    this.connId = connId;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.state = 'open';
  }

  /** @internal Bytes from the peer: split them into frames and hand each to the table's dispatcher. */
  receive(bytes: Buffer): void {
    if (this.state !== 'open') return;
    try {
      this.decoder.pushTo(bytes, this);
    } catch (err) {
      if (err instanceof RingportError && err.code === ErrorCodes.FRAME_TOO_LARGE) {
        this.close('frame-too-large');
        return;
      }
      throw err;
    }
  }

  /**
   * @internal One frame body from this session's decoder. A method, not a
   * closure made per session: an idle session should cost as little as it can.
   */
  receiveFrame(buffer: Buffer, start: number, end: number): void {
    // A frame earlier in the same chunk may have closed the session.
    if (this.state !== 'open') return;
    this.table.packetsIn++;
    this.table.onFrame(this, buffer, start, end);
  }

  /**
   * @internal The connection is gone. `transportReason` is the session-level
   * reading of the transport's reason; a close this side asked for keeps the
   * reason given to `close()`.
   */
  transportClosed(transportReason: CloseReason, error: TransportError | undefined): void {
    this.connId = -1;
    this.finish(this.closeReason ?? transportReason, error);
  }

  /** `error` is the transport's, when the connection ending is what closes the session. */
  protected finish(reason: CloseReason, error?: TransportError): void {
    if (this.state === 'closed') return;
    this.closeReason = reason;
    this.state = 'closed';
    this.table.forget(this);
    this.emit('close', reason, error);
    this.table.onClose(this, reason, error);
  }
}
