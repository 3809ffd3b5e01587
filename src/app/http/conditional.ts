/**
 * The request fields a static file answer depends on, read as RFC 9110
 * asks: conditional requests (section 13) and content codings (section
 * 12.5.3).
 */

/** Whether `If-None-Match` names `etag`: weak comparison, as section 13.1.2 asks for it; `*` names any. */
export function noneMatchHits(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const opaque = weakless(etag);
  return header.split(',').some((tag) => weakless(tag.trim()) === opaque);
}

/** Whether a file last modified at `mtimeMs` is unchanged since `If-Modified-Since` (to the second, as HTTP dates go). */
export function unmodifiedSince(header: string, mtimeMs: number): boolean {
  const since = Date.parse(header);
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) <= Math.floor(since / 1000);
}

/**
 * Whether `If-Range` still holds, so that `Range` applies (section 13.1.5):
 * an entity tag must match strongly (a weak one never does); a date must be
 * the file's Last-Modified exactly.
 */
export function ifRangeHolds(header: string, etag: string, lastModified: string): boolean {
  const value = header.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return value === etag;
  return value === lastModified;
}

/**
 * Whether `Accept-Encoding` lets gzip through: named (or `x-gzip`, or `*`)
 * with a q-value above 0. Without the field the answer goes as it is: a
 * client that says nothing may not know gzip.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  let wildcard: boolean | undefined;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';');
    const name = coding.trim().toLowerCase();
    if (name !== 'gzip' && name !== 'x-gzip' && name !== '*') continue;
    const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)).find((m) => m !== null);
    const allowed = q === undefined || Number(q[1]) > 0;
    if (name === '*') wildcard = allowed;
    else return allowed;
  }
  return wildcard ?? false;
}

function weakless(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
