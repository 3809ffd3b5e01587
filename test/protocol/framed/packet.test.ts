import fc from 'fast-check';
import { ErrorCodes } from '../../../src/errors';
import { encodePacket, packetPayload, readPacketId, resolveFraming } from '../../../src/protocol/framed';
import { COMBINATIONS, decodeChunks, thrown } from './helpers';

describe('packets', () => {
  it.each([
    [4, 'le', '03000000' + '0201' + 'aa'],
    [4, 'be', '00000003' + '0102' + 'aa'],
    [2, 'le', '0300' + '0201' + 'aa'],
    [2, 'be', '0003' + '0102' + 'aa'],
  ] as const)('lays out id 0x0102 with payload [0xaa] under a %i-byte %s prefix', (lengthBytes, byteOrder, hex) => {
    const framing = resolveFraming({ lengthBytes, byteOrder });
    const frame = encodePacket(0x0102, Uint8Array.of(0xaa), framing);
    expect(frame.toString('hex')).toBe(hex);
    const body = frame.subarray(lengthBytes);
    expect(readPacketId(body, framing)).toBe(0x0102);
    expect(packetPayload(body)).toEqual(Buffer.of(0xaa));
  });

  it.each(COMBINATIONS)('round-trips through the decoder with a $lengthBytes-byte $byteOrder prefix', (options) => {
    const framing = resolveFraming({ ...options, maxFrameBytes: 600 });
    fc.assert(
      fc.property(
        fc.array(fc.record({ id: fc.integer({ min: 0, max: 0xffff }), payload: fc.uint8Array({ maxLength: 598 }) }), {
          maxLength: 8,
        }),
        (packets) => {
          const stream = Buffer.concat(packets.map(({ id, payload }) => encodePacket(id, payload, framing)));
          const { bodies } = decodeChunks([stream], framing);
          expect(bodies.map((body) => readPacketId(body, framing))).toEqual(packets.map((p) => p.id));
          expect(bodies.map((body) => packetPayload(body))).toEqual(packets.map((p) => Buffer.from(p.payload)));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('returns the payload as a view of the body', () => {
    const body = Buffer.from([1, 0, 5, 6, 7]);
    const payload = packetPayload(body);
    expect(payload.buffer).toBe(body.buffer);
    expect(payload.byteOffset).toBe(body.byteOffset + 2);
    expect(packetPayload(Buffer.from([1, 0]))).toEqual(Buffer.alloc(0));
  });

  it.each([-1, 0x10000, 1.5, NaN, Infinity])('rejects packet id %p with RP_ERR_INVALID_ARGUMENT', (id) => {
    expect(thrown(() => encodePacket(id, new Uint8Array(0), resolveFraming())).code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('accepts ids 0 and 65535', () => {
    const framing = resolveFraming();
    for (const id of [0, 0xffff]) {
      expect(readPacketId(encodePacket(id, new Uint8Array(0), framing).subarray(4), framing)).toBe(id);
    }
  });

  it('counts the id against maxFrameBytes', () => {
    const framing = resolveFraming({ maxFrameBytes: 10 });
    expect(encodePacket(1, new Uint8Array(8), framing).length).toBe(4 + 10);
    expect(thrown(() => encodePacket(1, new Uint8Array(9), framing)).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it.each([0, 1])('rejects a %i-byte body with RP_ERR_DECODE', (length) => {
    const body = Buffer.alloc(length);
    const err = thrown(() => readPacketId(body, resolveFraming()));
    expect(err.code).toBe(ErrorCodes.DECODE);
    expect(err.message).toBe(`frame body of ${length} bytes is shorter than the 2-byte packet id`);
    expect(thrown(() => packetPayload(body)).code).toBe(ErrorCodes.DECODE);
  });
});
