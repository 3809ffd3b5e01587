import { ErrorCodes, RingportError } from '../../errors';
import type { ProtocolStream, StreamPeer, WireProtocol } from '../protocol';
import { readUint } from './byte-order';
import { FrameDecoder, type FrameSink } from './frame-decoder';
import { PACKET_ID_BYTES, type Framing } from './options';
import { encodePacket } from './packet';

/**
 * ringport's own protocol over a byte stream: `length | packet id | payload`
 * frames (see src/protocol/framed/options.ts for the settings). No
 * handshake: a connection is a session as soon as it is accepted.
 */
export class FramedProtocol implements WireProtocol {
  readonly name = 'framed' as const;

  constructor(readonly framing: Framing) {}

  /** Both sides send the same bytes: framed packets are never masked. */
  encode(packetId: number, payload: Uint8Array): Buffer {
    return encodePacket(packetId, payload, this.framing);
  }

  open(peer: StreamPeer): ProtocolStream {
    const stream = new FramedStream(this, peer);
    peer.opened(undefined);
    return stream;
  }
}

/** One connection: a frame decoder whose frames become packets. */
class FramedStream implements ProtocolStream, FrameSink {
  private readonly decoder: FrameDecoder;
  private failed = false;

  constructor(
    private readonly protocol: FramedProtocol,
    private readonly peer: StreamPeer,
  ) {
    this.decoder = new FrameDecoder(protocol.framing);
  }

  receive(bytes: Buffer): void {
    if (this.failed) return;
    try {
      this.decoder.pushTo(bytes, this);
    } catch (error) {
      // The decoder throws only for a frame over maxFrameBytes; a body too short for its id fails below.
      if (!(error instanceof RingportError && error.code === ErrorCodes.FRAME_TOO_LARGE)) throw error;
      this.fail('frame-too-large');
    }
  }

  /** @internal One frame body from the decoder. */
  receiveFrame(buffer: Buffer, start: number, end: number): void {
    if (this.failed) return;
    if (end - start < PACKET_ID_BYTES) {
      this.fail('decode-error');
      return;
    }
    const packetId = readUint(buffer, start, PACKET_ID_BYTES, this.protocol.framing.byteOrder);
    this.peer.packet(packetId, buffer, start + PACKET_ID_BYTES, end);
  }

  closing(): undefined {
    return undefined;
  }

  private fail(reason: 'frame-too-large' | 'decode-error'): void {
    this.failed = true;
    this.peer.fail(reason);
  }
}
