import { FrameDecoder } from '../../../src/protocol/framed/frame-decoder';
import type { Framing } from '../../../src/protocol/framed/options';
import { RingportError } from '../../../src/errors';

export const COMBINATIONS = [
  { lengthBytes: 2, byteOrder: 'le' },
  { lengthBytes: 2, byteOrder: 'be' },
  { lengthBytes: 4, byteOrder: 'le' },
  { lengthBytes: 4, byteOrder: 'be' },
] as const;

/** Feeds `chunks` to a fresh decoder and returns every body, copied so later pushes cannot alias them. */
export function decodeChunks(chunks: Buffer[], framing: Framing): { bodies: Buffer[]; decoder: FrameDecoder } {
  const decoder = new FrameDecoder(framing);
  const bodies: Buffer[] = [];
  for (const chunk of chunks) decoder.push(chunk, (body) => bodies.push(Buffer.from(body)));
  return { bodies, decoder };
}

/** Cuts `stream` into consecutive chunks of the given sizes, cycling through them (0 gives an empty chunk). */
export function cutBySizes(stream: Buffer, sizes: number[]): Buffer[] {
  const usable = sizes.some((s) => s > 0) ? sizes : [...sizes, 1];
  const chunks: Buffer[] = [];
  for (let pos = 0, i = 0; pos < stream.length; i++) {
    const size = usable[i % usable.length];
    chunks.push(stream.subarray(pos, pos + size));
    pos += size;
  }
  return chunks;
}

/** Runs `fn` and returns what it threw, failing the test when it does not throw. */
export function thrown(fn: () => unknown): RingportError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RingportError);
    return err as RingportError;
  }
  throw new Error('expected a throw');
}
