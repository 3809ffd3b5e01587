import fc from 'fast-check';
import { ErrorCodes, RingportError } from '../../../src/errors';
import { FrameDecoder, encodeFrame, resolveFraming, type Framing } from '../../../src/protocol/framed';
import { COMBINATIONS, cutBySizes, decodeChunks, thrown } from './helpers';

function encodeStream(bodies: Uint8Array[], framing: Framing): Buffer {
  return Buffer.concat(bodies.map((body) => encodeFrame(body, framing)));
}

/** A buffer with an ArrayBuffer of its own, so `.buffer` identity really means "not copied". */
function ownedCopy(bytes: Uint8Array): Buffer {
  const owned = Buffer.from(new ArrayBuffer(bytes.length));
  owned.set(bytes);
  return owned;
}

function asBuffers(bodies: Uint8Array[]): Buffer[] {
  return bodies.map((body) => Buffer.from(body));
}

describe.each(COMBINATIONS)('FrameDecoder with a $lengthBytes-byte $byteOrder prefix', ({ lengthBytes, byteOrder }) => {
  // Bodies over 255 bytes make the high bytes of the prefix matter.
  const framing = resolveFraming({ lengthBytes, byteOrder, maxFrameBytes: 1000 });

  it('decodes a small stream split at every point into two chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (bodies) => {
        const stream = encodeStream(bodies, framing);
        for (let split = 0; split <= stream.length; split++) {
          const { bodies: out, decoder } = decodeChunks([stream.subarray(0, split), stream.subarray(split)], framing);
          expect(out).toEqual(asBuffers(bodies));
          expect(decoder.bufferedBytes).toBe(0);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('decodes a stream cut into random chunk sizes, including empty and 1-byte chunks', () => {
    const chunkSize = fc.oneof(
      fc.constant(0),
      fc.constant(1),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 1, max: 600 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 1000 }), { maxLength: 10 }),
        fc.array(chunkSize, { minLength: 1, maxLength: 20 }),
        (bodies, sizes) => {
          const { bodies: out, decoder } = decodeChunks(cutBySizes(encodeStream(bodies, framing), sizes), framing);
          expect(out).toEqual(asBuffers(bodies));
          expect(decoder.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('decodes a stream fed one byte at a time, counting buffered bytes as they arrive', () => {
    const bodies = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(300, 7)];
    const stream = encodeStream(bodies, framing);
    const decoder = new FrameDecoder(framing);
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) {
      decoder.push(stream.subarray(i, i + 1), (body) => out.push(body));
      expect(decoder.bufferedBytes).toBe(i + 1 - out.reduce((sum, body) => sum + lengthBytes + body.length, 0));
    }
    expect(out).toEqual(bodies);
  });

  it('delivers an empty body as an empty buffer', () => {
    const stream = encodeStream([new Uint8Array(0), Uint8Array.of(1), new Uint8Array(0)], framing);
    const { bodies } = decodeChunks([stream], framing);
    expect(bodies).toEqual([Buffer.alloc(0), Buffer.of(1), Buffer.alloc(0)]);
  });

  it('accepts an empty chunk at any time', () => {
    const decoder = new FrameDecoder(framing);
    const out: Buffer[] = [];
    decoder.push(Buffer.alloc(0), (body) => out.push(body));
    expect(out).toEqual([]);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('delivers a frame within one chunk as a view of the chunk, without copying', () => {
    const first = Buffer.from('first');
    const second = Buffer.from('second frame');
    const chunk = ownedCopy(encodeStream([first, second], framing));
    const out: Buffer[] = [];
    new FrameDecoder(framing).push(chunk, (body) => out.push(body));

    expect(out).toEqual([first, second]);
    for (const body of out) expect(body.buffer).toBe(chunk.buffer);
    expect(out[0].byteOffset).toBe(chunk.byteOffset + lengthBytes);
    expect(out[1].byteOffset).toBe(chunk.byteOffset + 2 * lengthBytes + first.length);
    chunk[lengthBytes] = 0x46;
    expect(out[0].toString()).toBe('First');
  });

  it('copies a frame split across chunks into one buffer of exactly its size', () => {
    const body = Buffer.alloc(200, 9);
    const stream = encodeStream([body], framing);
    const chunks = [0, 50, 120].map((start, i, starts) => ownedCopy(stream.subarray(start, starts[i + 1])));
    const out: Buffer[] = [];
    const decoder = new FrameDecoder(framing);
    for (const chunk of chunks) decoder.push(chunk, (b) => out.push(b));

    expect(out).toEqual([body]);
    expect(out[0].length).toBe(200);
    for (const chunk of chunks) expect(out[0].buffer).not.toBe(chunk.buffer);
  });

  it('keeps the rest of a chunk when onFrame throws', () => {
    const decoder = new FrameDecoder(framing);
    const stream = encodeStream([Buffer.from('a'), Buffer.from('b')], framing);
    expect(() =>
      decoder.push(stream, () => {
        throw new Error('handler failed');
      }),
    ).toThrow('handler failed');
    const out: Buffer[] = [];
    decoder.push(Buffer.alloc(0), (body) => out.push(body));
    expect(out).toEqual([Buffer.from('b')]);
  });

  it('after onFrame throws, joins what it kept with the next chunks, a frame split across them included', () => {
    const decoder = new FrameDecoder(framing);
    const bodies = ['a', 'second', 'third frame', 'fourth'].map((t) => Buffer.from(t));
    const stream = encodeStream(bodies, framing);
    // The first push ends inside the third frame's body; its callback throws on the first frame.
    const cut = 2 * lengthBytes + 1 + 6 + lengthBytes + 4;
    let calls = 0;
    expect(() =>
      decoder.push(ownedCopy(stream.subarray(0, cut)), () => {
        calls++;
        throw new Error('handler failed');
      }),
    ).toThrow('handler failed');
    expect(calls).toBe(1);
    const out: Buffer[] = [];
    decoder.push(ownedCopy(stream.subarray(cut, cut + 3)), (body) => out.push(Buffer.from(body)));
    decoder.push(ownedCopy(stream.subarray(cut + 3)), (body) => out.push(Buffer.from(body)));
    expect(out).toEqual(bodies.slice(1));
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('gives pushTo ranges of the chunk, delivered to the sink', () => {
    const chunk = encodeStream([Buffer.from('ab'), Buffer.alloc(0)], framing);
    const ranges: Array<[Buffer, number, number]> = [];
    new FrameDecoder(framing).pushTo(chunk, { receiveFrame: (buffer, start, end) => ranges.push([buffer, start, end]) });

    expect(ranges).toHaveLength(2);
    expect(ranges[0]).toEqual([chunk, lengthBytes, lengthBytes + 2]);
    const [empty, start, end] = ranges[1];
    expect(end - start).toBe(0);
    expect(empty.subarray(start, end)).toEqual(Buffer.alloc(0));
  });

  describe('a header over maxFrameBytes', () => {
    const small = resolveFraming({ lengthBytes, byteOrder, maxFrameBytes: 100 });
    function oversizedHeader(length: number): Buffer {
      const header = Buffer.alloc(lengthBytes);
      if (lengthBytes === 2) {
        if (byteOrder === 'le') header.writeUInt16LE(length);
        else header.writeUInt16BE(length);
      } else if (byteOrder === 'le') {
        header.writeUInt32LE(length);
      } else {
        header.writeUInt32BE(length);
      }
      return header;
    }

    it('accepts a frame of exactly maxFrameBytes', () => {
      const body = Buffer.alloc(100, 1);
      expect(decodeChunks([encodeFrame(body, small)], small).bodies).toEqual([body]);
    });

    it('throws as soon as the header is complete, without buffering the body', () => {
      const declared = lengthBytes === 2 ? 0xffff : 0xffffffff;
      const h = oversizedHeader(declared);
      const decoder = new FrameDecoder(small);
      const onFrame = jest.fn();
      for (let i = 0; i < lengthBytes - 1; i++) {
        decoder.push(h.subarray(i, i + 1), onFrame);
        expect(decoder.bufferedBytes).toBe(i + 1);
      }
      const err = thrown(() => decoder.push(h.subarray(lengthBytes - 1), onFrame));
      expect(err.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
      expect(err.message).toContain(String(declared));
      expect(err.message).toContain('100');
      expect(decoder.bufferedBytes).toBe(0);
      expect(onFrame).not.toHaveBeenCalled();
    });

    it('delivers the frames before it in the same chunk, then throws', () => {
      const chunk = Buffer.concat([
        encodeFrame(Buffer.from('one'), small),
        encodeFrame(Buffer.from('two'), small),
        oversizedHeader(101),
        Buffer.alloc(101, 0xee),
      ]);
      const decoder = new FrameDecoder(small);
      const out: Buffer[] = [];
      const err = thrown(() => decoder.push(chunk, (body) => out.push(body)));
      expect(err.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
      expect(out).toEqual([Buffer.from('one'), Buffer.from('two')]);
      expect(decoder.bufferedBytes).toBe(0);
    });

    it('leaves the decoder poisoned: every later push throws the same code', () => {
      const decoder = new FrameDecoder(small);
      const onFrame = jest.fn();
      expect(thrown(() => decoder.push(oversizedHeader(101), onFrame)).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
      for (const chunk of [encodeFrame(Buffer.from('ok'), small), Buffer.alloc(0)]) {
        const err = thrown(() => decoder.push(chunk, onFrame));
        expect(err.code).toBe(ErrorCodes.FRAME_TOO_LARGE);
        expect(err.cause).toBeInstanceOf(RingportError);
      }
      expect(onFrame).not.toHaveBeenCalled();
      expect(decoder.bufferedBytes).toBe(0);
    });
  });

  it('survives random garbage: only RP_ERR_FRAME_TOO_LARGE, never more than a frame buffered', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 600 }),
        fc.uint8Array({ maxLength: 2000 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 10 }),
        (maxFrameBytes, garbage, sizes) => {
          const limits = resolveFraming({ lengthBytes, byteOrder, maxFrameBytes });
          const decoder = new FrameDecoder(limits);
          const bodies: Buffer[] = [];
          let failed = false;
          for (const chunk of cutBySizes(Buffer.from(garbage), sizes)) {
            let error: unknown;
            try {
              decoder.push(chunk, (body) => bodies.push(body));
            } catch (err) {
              error = err;
            }
            if (failed) expect(error).toBeDefined();
            if (error !== undefined) {
              expect(error).toBeInstanceOf(RingportError);
              expect((error as RingportError).code).toBe(ErrorCodes.FRAME_TOO_LARGE);
              failed = true;
            }
            expect(decoder.bufferedBytes).toBeLessThanOrEqual(maxFrameBytes + lengthBytes);
          }
          for (const body of bodies) expect(body.length).toBeLessThanOrEqual(maxFrameBytes);
        },
      ),
      { numRuns: 200 },
    );
  });
});
