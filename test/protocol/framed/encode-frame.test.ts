import { ErrorCodes } from '../../../src/errors';
import { encodeFrame, resolveFraming } from '../../../src/protocol/framed';
import { thrown } from './helpers';

describe('encodeFrame', () => {
  const body = Uint8Array.of(0xaa, 0xbb, 0xcc);

  it.each([
    [2, 'le', '0300aabbcc'],
    [2, 'be', '0003aabbcc'],
    [4, 'le', '03000000aabbcc'],
    [4, 'be', '00000003aabbcc'],
  ] as const)('writes a %i-byte %s prefix', (lengthBytes, byteOrder, hex) => {
    expect(encodeFrame(body, resolveFraming({ lengthBytes, byteOrder })).toString('hex')).toBe(hex);
  });

  it('encodes an empty body as a bare header', () => {
    expect(encodeFrame(new Uint8Array(0), resolveFraming()).toString('hex')).toBe('00000000');
  });

  it('accepts a body of exactly maxFrameBytes and rejects one byte more', () => {
    const framing = resolveFraming({ maxFrameBytes: 8 });
    expect(encodeFrame(new Uint8Array(8), framing).length).toBe(12);
    expect(thrown(() => encodeFrame(new Uint8Array(9), framing)).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });
});
