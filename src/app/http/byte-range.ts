/** One byte range of a file, both ends inclusive, as Content-Range writes it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * What a `Range` header asks of a file of `size` bytes (RFC 9110 section
 * 14.1.2): one satisfiable range (`bytes=a-b`, `a-`, `-n`, the end clamped
 * to the file), `unsatisfiable` (416), or `whole` for a header this server
 * does not act on. That covers a malformed one (which RFC 9110 says to
 * ignore), another unit, and several ranges: a multipart/byteranges answer
 * would cost a body format of its own for what no game client asks, and the
 * whole file with 200 is a correct answer to any Range request.
 */
export function parseRange(header: string, size: number): ByteRange | 'unsatisfiable' | 'whole' {
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (match === null) return 'whole';
  const [, first, last] = match;
  if (first === '' && last === '') return 'whole';
  if (first === '') {
    // A suffix: the last n bytes, or all of a file shorter than n.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  // last < first makes the range-spec invalid, hence the header: ignored.
  if (last !== '' && Number(last) < start) return 'whole';
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}
