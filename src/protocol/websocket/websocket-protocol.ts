import type { TransportError } from '../../backend/backend';
import { ErrorCodes, RingportError } from '../../errors';
import type { CloseReason } from '../close-reason';
import { PACKET_ID_BYTES, type Framing } from '../framed/options';
import { findHeadEnd, HeadError, parseRequestHead, parseResponseHead, type RequestHead } from '../http/request-head';
import type { ProtocolStream, Role, StreamPeer, WireProtocol } from '../protocol';
import { closeCodeFor, closeReasonFor } from './close-codes';
import { closePayload, encodeControl, encodeFrame, OPCODE } from './frame';
import { checkAnswer, checkUpgrade, refusal, switchingProtocols, upgradeRequest, type UpgradeRules } from './handshake';
import { CLOSE_CODE, FrameReceiver, type ReceiverOptions, type ReceiverSink } from './receiver';

/** An opening handshake a server has checked, as the upgrade hook sees it. */
export interface UpgradeRequest {
  readonly method: string;
  /** The path, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  /** Lower-cased names; a repeated field's values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The subprotocol the handshake will settle on, if any. */
  readonly subprotocol: string | undefined;
}

/**
 * What an upgrade hook decides: accept (optionally with the session's first
 * `data`), or refuse with an HTTP status and body. The endpoint runs the
 * application's hook through its guard, so this never rejects: a hook that
 * throws is a fault, refused with 500.
 */
export type UpgradeDecision =
  | { readonly accept: true; readonly data?: object }
  | { readonly accept: false; readonly status: number; readonly body: string };

export interface WebSocketServerOptions extends UpgradeRules {
  /** The hook, guarded; undefined accepts every request that passes the protocol's checks. */
  readonly authorize: ((request: UpgradeRequest) => Promise<UpgradeDecision>) | undefined;
  /** Text messages arrive as this packet (their UTF-8 bytes the payload); undefined refuses them with 1003. */
  readonly textPacketId: number | undefined;
  readonly keepAliveMs: number;
}

export interface WebSocketClientOptions {
  /** The Host header and the path of the request. */
  readonly host: string;
  readonly path: string;
  readonly subprotocols: readonly string[];
  readonly headers: Readonly<Record<string, string>>;
  readonly textPacketId: number | undefined;
  readonly keepAliveMs: number;
}

/** A handshake's head may not grow past this: the same bound as an HTTP request head's (431). */
/** Shared by every stream with nothing pending: an empty Buffer per connection costs ~180 bytes. */
const EMPTY = Buffer.alloc(0);
const MAX_HEAD_BYTES = 16 * 1024;
/** A server's ping is the same for every connection: one frame serves them all. */
const SERVER_PING = encodeControl(OPCODE.PING, EMPTY, false);

/**
 * RFC 6455 WebSocket as a wire protocol. One binary message is one packet,
 * its body exactly a framed packet's body (packet id, then payload, in the
 * endpoint's byte order); a server's frames are never masked, so a broadcast
 * is encoded once for every WebSocket recipient. permessage-deflate is
 * declined (the handshake never answers it): see the README for why.
 */
export class WebSocketProtocol implements WireProtocol {
  readonly name = 'websocket' as const;
  /** Undefined when pings are off: the endpoint's idle timeout binds its sessions instead. */
  readonly keepAliveMs: number | undefined;

  /** What a receiver checks, one set per side: the same for every connection. */
  private readonly receiverOptions: Readonly<Record<Role, ReceiverOptions>>;
  /** A receiver at rest per side, lent to each stream for the length of a push (see `WebSocketStream.frames`). */
  private readonly spare: Record<Role, FrameReceiver | undefined> = { server: undefined, client: undefined };

  constructor(
    readonly framing: Framing,
    readonly server: WebSocketServerOptions | undefined,
    readonly client: WebSocketClientOptions | undefined,
  ) {
    this.keepAliveMs = (server ?? client)?.keepAliveMs || undefined;
    const options = (masked: boolean, side: { textPacketId: number | undefined } | undefined): ReceiverOptions => ({
      masked,
      maxMessageBytes: framing.maxFrameBytes,
      acceptText: side?.textPacketId !== undefined,
    });
    this.receiverOptions = { server: options(true, server), client: options(false, client) };
  }

  /**
   * @internal A receiver for one push of `role`'s bytes to `sink`. Between
   * frames a connection's receiver holds nothing of its own (`atRest`), so
   * connections share one: an idle WebSocket session keeps no receiver, only
   * one that a frame split across reads left mid-way does.
   */
  lendReceiver(role: Role, sink: ReceiverSink): FrameReceiver {
    const receiver = this.spare[role];
    if (receiver === undefined) return new FrameReceiver(sink, this.receiverOptions[role]);
    // While lent, it is no one else's: a push inside a push would get a new one.
    this.spare[role] = undefined;
    receiver.sink = sink;
    return receiver;
  }

  /** @internal A lent receiver back, at rest. */
  giveBackReceiver(role: Role, receiver: FrameReceiver): void {
    this.spare[role] = receiver;
  }

  encode(packetId: number, payload: Uint8Array, role: Role): Buffer {
    if (!Number.isInteger(packetId) || packetId < 0 || packetId > 0xffff) {
      throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `packet id must be an integer in 0..65535, got ${String(packetId)}`);
    }
    const body = PACKET_ID_BYTES + payload.length;
    if (body > this.framing.maxFrameBytes) {
      throw new RingportError(
        ErrorCodes.FRAME_TOO_LARGE,
        `packet body of ${body} bytes (id + payload) is over maxFrameBytes ${this.framing.maxFrameBytes}`,
      );
    }
    // A client masks every frame with a fresh key (section 5.3); a server never masks.
    return encodeFrame(OPCODE.BINARY, packetId, PACKET_ID_BYTES, this.framing.byteOrder, payload, role === 'client');
  }

  open(peer: StreamPeer, role: Role): ProtocolStream {
    return new WebSocketStream(this, peer, role);
  }
}

const AWAITING_HEAD = 0;
const AUTHORIZING = 1;
const OPEN = 2;
const DONE = 3;

/** One connection: the opening handshake, then frames. */
class WebSocketStream implements ProtocolStream, ReceiverSink {
  private state = AWAITING_HEAD;
  /** The handshake's bytes so far; then, while the hook decides, what came after it. */
  private pending: Buffer = EMPTY;
  /** Its own receiver only while a frame or fragmented message is part-way; otherwise one is lent per push. */
  private receiver: FrameReceiver | undefined;
  private closeSent = false;
  private clientKey = '';

  constructor(
    private readonly protocol: WebSocketProtocol,
    private readonly peer: StreamPeer,
    private readonly role: Role,
  ) {
    if (role === 'client') {
      const options = protocol.client!;
      const { request, key } = upgradeRequest(options.host, options.path, options.subprotocols, options.headers);
      this.clientKey = key;
      peer.write(request);
    }
  }

  receive(bytes: Buffer): void {
    if (this.state === OPEN) {
      this.frames(bytes);
      return;
    }
    if (this.state === DONE || bytes.length === 0) return;
    // Before the session opens, bytes wait here: the head, or what follows it while the hook decides.
    this.pending = this.pending.length === 0 ? bytes : Buffer.concat([this.pending, bytes]);
    if (this.state === AWAITING_HEAD) this.readHead();
  }

  private readHead(): void {
    let end: number;
    try {
      end = findHeadEnd(this.pending, this.pending.length, MAX_HEAD_BYTES);
    } catch (error) {
      this.refuse(error as HeadError);
      return;
    }
    if (end < 0) return;
    const head = this.pending.subarray(0, end);
    this.pending = this.pending.subarray(end);
    if (this.role === 'client') this.answered(head);
    else this.requested(head);
  }

  /** Server: the opening handshake has arrived. */
  private requested(bytes: Buffer): void {
    const options = this.protocol.server!;
    let head: RequestHead;
    let upgrade: ReturnType<typeof checkUpgrade>;
    try {
      head = parseRequestHead(bytes);
      upgrade = checkUpgrade(head, options);
    } catch (error) {
      this.refuse(error as HeadError);
      return;
    }
    const open = (data: object | undefined): void => {
      if (this.state === DONE) return;
      this.peer.write(switchingProtocols(upgrade));
      this.openFrames(data);
    };
    if (options.authorize === undefined) {
      open(undefined);
      return;
    }
    this.state = AUTHORIZING;
    const q = head.target.indexOf('?');
    const request: UpgradeRequest = {
      method: head.method,
      path: q < 0 ? head.target : head.target.slice(0, q),
      query: new URLSearchParams(q < 0 ? '' : head.target.slice(q + 1)),
      headers: head.headers,
      remoteAddress: this.peer.remoteAddress,
      remotePort: this.peer.remotePort,
      subprotocol: upgrade.subprotocol,
    };
    void options.authorize(request).then((decision) => {
      if (decision.accept) open(decision.data);
      else this.refuse(new HeadError(decision.status, decision.body));
    });
  }

  /** Client: the server's answer to the opening handshake has arrived. */
  private answered(bytes: Buffer): void {
    const options = this.protocol.client!;
    let why: string | undefined;
    try {
      why = checkAnswer(parseResponseHead(bytes), this.clientKey, options.subprotocols);
    } catch (error) {
      why = (error as Error).message;
    }
    if (why !== undefined) {
      this.state = DONE;
      this.peer.fail('protocol-error', { code: 'EHANDSHAKE', message: `WebSocket handshake refused: ${why}` });
      return;
    }
    this.openFrames(undefined);
  }

  private openFrames(data: object | undefined): void {
    this.state = OPEN;
    this.peer.opened(data);
    const early = this.pending;
    this.pending = EMPTY;
    // Frames the peer sent right behind its handshake.
    if (early.length > 0 && this.state === OPEN) this.frames(early);
  }

  /** Frames from the peer, read by this stream's own receiver or by one lent for the call. */
  private frames(bytes: Buffer): void {
    const receiver = this.receiver ?? this.protocol.lendReceiver(this.role, this);
    receiver.push(bytes);
    if (receiver.atRest) {
      this.receiver = undefined;
      this.protocol.giveBackReceiver(this.role, receiver);
    } else {
      // Part-way through a frame (or stopped, the stream done): this connection's state, kept with it.
      this.receiver = receiver;
    }
  }

  /** A refused handshake: an HTTP error, then the connection closes, never having been a session. */
  private refuse(error: HeadError): void {
    if (this.state === DONE) return;
    this.state = DONE;
    this.pending = EMPTY;
    const status = error instanceof HeadError ? error.status : 400;
    this.peer.write(refusal(status, `${error.message}\n`));
    this.peer.fail('protocol-error');
  }

  // -- ReceiverSink ---------------------------------------------------------

  message(binary: boolean, buffer: Buffer, start: number, end: number): void {
    if (!binary) {
      const textPacketId = (this.role === 'server' ? this.protocol.server! : this.protocol.client!).textPacketId!;
      this.peer.packet(textPacketId, buffer, start, end);
      return;
    }
    if (end - start < PACKET_ID_BYTES) {
      this.violation(CLOSE_CODE.INVALID_PAYLOAD, 'a binary message shorter than a packet id');
      return;
    }
    const packetId = this.protocol.framing.byteOrder === 'le' ? buffer.readUInt16LE(start) : buffer.readUInt16BE(start);
    this.peer.packet(packetId, buffer, start + PACKET_ID_BYTES, end);
  }

  ping(payload: Buffer): void {
    this.peer.activity();
    if (!this.closeSent) this.peer.write(encodeControl(OPCODE.PONG, payload, this.role === 'client'));
  }

  pong(): void {
    this.peer.activity();
  }

  close(code: number, text: string): void {
    this.state = DONE;
    // Section 5.5.1: answer a close with a close, echoing its code, unless this side sent one first.
    if (!this.closeSent) {
      this.closeSent = true;
      const payload = code === CLOSE_CODE.NO_STATUS ? EMPTY : closePayload(code, '');
      this.peer.write(encodeControl(OPCODE.CLOSE, payload, this.role === 'client'));
    }
    const error: TransportError | undefined =
      code === CLOSE_CODE.NORMAL || code === CLOSE_CODE.NO_STATUS ? undefined : { code: `WS_${code}`, message: text };
    this.peer.fail(closeReasonFor(code, text), error);
  }

  violation(code: number, reason: string): void {
    this.state = DONE;
    if (!this.closeSent) {
      this.closeSent = true;
      this.peer.write(encodeControl(OPCODE.CLOSE, closePayload(code, reason), this.role === 'client'));
    }
    this.peer.fail(closeReasonFor(code, ''), { code: `WS_${code}`, message: reason });
  }

  // -- ProtocolStream -------------------------------------------------------

  closing(reason: CloseReason): Uint8Array | undefined {
    const open = this.state === OPEN && !this.closeSent;
    // Whatever comes later (a hook's decision, the peer's frames) finds the stream done.
    this.state = DONE;
    if (!open) return undefined;
    this.closeSent = true;
    return encodeControl(OPCODE.CLOSE, closePayload(closeCodeFor(reason), reason), this.role === 'client');
  }

  keepAlive(): Uint8Array | undefined {
    // With pings off (pingIntervalMs 0) the idle timeout binds the session: a quiet one is closed, not
    // pinged, or a peer that answers pings (every browser does) would never be idle.
    if (this.state !== OPEN || this.protocol.keepAliveMs === undefined) return undefined;
    return this.role === 'server' ? SERVER_PING : encodeControl(OPCODE.PING, EMPTY, true);
  }
}
