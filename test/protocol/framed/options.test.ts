import { ErrorCodes } from '../../../src/errors';
import { PACKET_ID_BYTES, resolveFraming, type FramingOptions } from '../../../src/protocol/framed';
import { thrown } from './helpers';

describe('resolveFraming', () => {
  it('defaults to a 4-byte little-endian prefix and 1 MiB frames', () => {
    expect(resolveFraming()).toEqual({ lengthBytes: 4, byteOrder: 'le', maxFrameBytes: 1048576 });
    expect(resolveFraming({})).toEqual({ lengthBytes: 4, byteOrder: 'le', maxFrameBytes: 1048576 });
  });

  it('defaults maxFrameBytes to 65535 with a 2-byte prefix', () => {
    expect(resolveFraming({ lengthBytes: 2 })).toEqual({ lengthBytes: 2, byteOrder: 'le', maxFrameBytes: 65535 });
  });

  it('keeps valid values, including the boundaries', () => {
    expect(resolveFraming({ lengthBytes: 2, byteOrder: 'be', maxFrameBytes: 2 })).toEqual({
      lengthBytes: 2,
      byteOrder: 'be',
      maxFrameBytes: 2,
    });
    expect(resolveFraming({ lengthBytes: 2, maxFrameBytes: 65535 }).maxFrameBytes).toBe(65535);
    expect(resolveFraming({ maxFrameBytes: 0xffffffff }).maxFrameBytes).toBe(0xffffffff);
  });

  it('is idempotent and returns a frozen object', () => {
    const framing = resolveFraming({ lengthBytes: 2, byteOrder: 'be', maxFrameBytes: 100 });
    expect(resolveFraming(framing)).toEqual(framing);
    expect(Object.isFrozen(framing)).toBe(true);
  });

  it('exports the packet id size', () => {
    expect(PACKET_ID_BYTES).toBe(2);
  });

  const invalid: Array<[string, unknown]> = [
    ['lengthBytes 3', { lengthBytes: 3 }],
    ['lengthBytes 8', { lengthBytes: 8 }],
    ['lengthBytes "4"', { lengthBytes: '4' }],
    ['byteOrder "LE"', { byteOrder: 'LE' }],
    ['byteOrder "big"', { byteOrder: 'big' }],
    ['maxFrameBytes 0', { maxFrameBytes: 0 }],
    ['maxFrameBytes 1 (no room for the packet id)', { maxFrameBytes: 1 }],
    ['maxFrameBytes -1', { maxFrameBytes: -1 }],
    ['maxFrameBytes 1.5', { maxFrameBytes: 1.5 }],
    ['maxFrameBytes NaN', { maxFrameBytes: NaN }],
    ['maxFrameBytes Infinity', { maxFrameBytes: Infinity }],
    ['maxFrameBytes "100"', { maxFrameBytes: '100' }],
    ['maxFrameBytes 2^32', { maxFrameBytes: 2 ** 32 }],
    ['maxFrameBytes 65536 with a 2-byte prefix', { lengthBytes: 2, maxFrameBytes: 65536 }],
  ];
  it.each(invalid)('rejects %s with RP_ERR_INVALID_ARGUMENT', (_name, options) => {
    const err = thrown(() => resolveFraming(options as FramingOptions));
    expect(err.code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });
});
