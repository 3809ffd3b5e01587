export { resolveFraming, PACKET_ID_BYTES, type Framing, type FramingOptions } from './options';
export { FrameDecoder, type FrameSink } from './frame-decoder';
export { encodeFrame } from './encode-frame';
export { encodePacket, readPacketId, readPacketIdAt, packetPayload } from './packet';
