import { createReadStream, promises as fs, type BigIntStats } from 'node:fs';
import * as path from 'node:path';
import { parseRange, type ByteRange } from './byte-range';
import { acceptsGzip, ifRangeHolds, noneMatchHits, unmodifiedSince } from './conditional';
import { contentTypeOf, isCompressible } from './content-types';
import { FileCache } from './file-cache';
import type { HttpRequest } from './http-request';
import type { HttpResponse, HttpResult } from './http-response';
import { requestedNames } from './safe-path';

export interface StaticOptions {
  /**
   * `Cache-Control` on every file. Default `no-cache`: a browser keeps the
   * files but asks before each use (an ETag match costs a 304 and no
   * body), so a new build of the web client is seen on the next load.
   * Files with a content hash in their names can take `public,
   * max-age=31536000, immutable`.
   */
  cacheControl?: string;
}

/** Kept bytes over every file of one `static` mount: the web client of a game, with room to spare. */
const CACHE_BYTES = 32 * 1024 * 1024;
/**
 * Answers up to this size go to the connection's queue whole, from the
 * cache (which keeps files this small) and gzipped where that pays; larger
 * ones stream from disk as the connection drains.
 */
const WHOLE_ANSWER_BYTES = 256 * 1024;
/** Room for a response's head beside its body in the connection's send queue. */
const HEAD_ROOM_BYTES = 1024;
const EMPTY = Buffer.alloc(0);

interface Found {
  readonly path: string;
  readonly stat: BigIntStats;
}

/**
 * Serves the files below one directory (`server.http.static(prefix, dir)`).
 * Nothing outside it is ever served: see `requestedNames` for the paths
 * refused before the disk is touched, and every file's real path (symlinks
 * followed) must lie inside the directory's real path. A directory answers
 * with its index.html (a path to it without the final slash is redirected
 * to the one with it, so the page's relative links work), or 404.
 *
 * Validators: a strong ETag made of the file's size and modification time
 * in nanoseconds (`"<size>-<mtime>"` in hex; the gzipped form adds `-gz`,
 * being other bytes), and Last-Modified. `If-None-Match` (then
 * `If-Modified-Since`) gives 304; one `Range` gives 206, unless `If-Range`
 * no longer holds; an unsatisfiable one 416; several, the whole file. A
 * compressible type goes gzipped to a client that accepts it, with `Vary:
 * Accept-Encoding`; ranges always go as the file is. Files are read
 * asynchronously, and the cache keeps small files and every gzipped form.
 * An answer over 256 KiB (or over what the connection may queue) streams
 * from disk with `fs.createReadStream`, reading only the range asked for,
 * as the connection drains: a slow reader holds a piece of the file, never
 * all of it.
 */
export class StaticFiles {
  private readonly dir: string;
  private readonly cacheControl: string;
  private readonly cache = new FileCache(CACHE_BYTES);
  private rootPath: Promise<string> | undefined;

  /** Answers over this many bytes are streamed rather than queued whole. */
  private readonly wholeBytes: number;

  /** @internal Made by `server.http.static`; `maxQueueBytes` is the send queue's limit. */
  constructor(dir: string, options: StaticOptions, maxQueueBytes: number) {
    this.dir = path.resolve(dir);
    this.cacheControl = options.cacheControl ?? 'no-cache';
    this.wholeBytes = Math.max(0, Math.min(WHOLE_ANSWER_BYTES, maxQueueBytes - HEAD_ROOM_BYTES));
  }

  /** How many times a file has been gzipped: once per version of each compressible file, not once per request. */
  get compressions(): number {
    return this.cache.compressions;
  }

  /** The route handler: the rest of the path below the prefix is in `req.params['*']`. */
  readonly handle = async (req: HttpRequest, res: HttpResponse): Promise<HttpResult> => {
    const names = requestedNames(req.params['*'] ?? '');
    if (names === undefined) return notFound(res);
    const root = await this.root();
    if (root === undefined) return notFound(res);
    let found = await lookup(root, path.join(root, ...names));
    if (found === undefined) return notFound(res);
    const asDirectory = req.path.endsWith('/');
    if (found.stat.isDirectory()) {
      if (!asDirectory) {
        const query = req.query.toString();
        res.status(301).header('Location', `${req.path}/${query === '' ? '' : `?${query}`}`);
        return 'moved\n';
      }
      found = await lookup(root, path.join(found.path, 'index.html'));
      if (found === undefined) return notFound(res);
    } else if (asDirectory) {
      return notFound(res);
    }
    if (!found.stat.isFile()) return notFound(res);
    return this.serve(req, res, found);
  };

  private async serve(req: HttpRequest, res: HttpResponse, file: Found): Promise<HttpResult> {
    const { stat } = file;
    const size = Number(stat.size);
    const version = `${stat.size.toString(16)}-${stat.mtimeNs.toString(16)}`;
    const etag = `"${version}"`;
    const lastModified = new Date(Number(stat.mtimeMs)).toUTCString();
    const type = contentTypeOf(file.path);
    const compressible = isCompressible(type);
    const headers = req.headers;
    const read = () => fs.readFile(file.path);

    const rangeHeader = headers.range;
    const range =
      rangeHeader === undefined || (headers['if-range'] !== undefined && !ifRangeHolds(headers['if-range'], etag, lastModified))
        ? 'whole'
        : parseRange(rangeHeader, size);
    // Ranges are of the file's own bytes; only a whole answer may be gzipped. A file too large to answer
    // whole goes identity, even when compressible: gzip would need it all in memory to be cached, or a
    // compressor per request, whose output has no length to send ahead and no ETag of its own.
    const streamed = size > this.wholeBytes;
    const gzipped =
      range === 'whole' && !streamed && compressible && acceptsGzip(headers['accept-encoding'])
        ? await this.cache.gzipped(file.path, version, size, read)
        : null;
    const tag = gzipped === null ? etag : `"${version}-gz"`;

    res.header('ETag', tag).header('Last-Modified', lastModified).header('Cache-Control', this.cacheControl);
    if (compressible) res.header('Vary', 'Accept-Encoding');
    // RFC 9110 section 13.2.2: If-None-Match decides when present; If-Modified-Since only without it.
    const inm = headers['if-none-match'];
    if (inm !== undefined ? noneMatchHits(inm, tag) : headers['if-modified-since'] !== undefined && unmodifiedSince(headers['if-modified-since'], Number(stat.mtimeMs))) {
      res.status(304);
      return undefined;
    }

    res.header('Accept-Ranges', 'bytes');
    if (range === 'unsatisfiable') return unsatisfiable(res, size);
    res.header('Content-Type', type).header('X-Content-Type-Options', 'nosniff');
    // HEAD answers with the same fields and reads nothing it would not send.
    const omitBody = req.method === 'HEAD';
    if (range !== 'whole') {
      const length = range.end - range.start + 1;
      if (length > this.wholeBytes) {
        res.status(206).header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
        return streamFile(res, file.path, range, omitBody);
      }
      const part = omitBody ? undefined : await readRange(file.path, range);
      // A file that shrank since its stat may no longer hold the range.
      if (part?.length === 0) return unsatisfiable(res, size);
      const end = part === undefined ? range.end : range.start + part.length - 1;
      res.status(206).header('Content-Range', `bytes ${range.start}-${end}/${size}`);
      return body(res, part, part?.length ?? length);
    }
    if (gzipped !== null) {
      res.header('Content-Encoding', 'gzip');
      return body(res, omitBody ? undefined : gzipped, gzipped.length);
    }
    if (streamed) return streamFile(res, file.path, { start: 0, end: size - 1 }, omitBody);
    const whole = omitBody ? undefined : await this.cache.contents(file.path, version, size, read);
    return body(res, whole, whole?.length ?? size);
  }

  /** The directory's real path, found once; a directory that is not there (yet) is looked for again next time. */
  private async root(): Promise<string | undefined> {
    this.rootPath ??= fs.realpath(this.dir);
    try {
      return await this.rootPath;
    } catch {
      this.rootPath = undefined;
      return undefined;
    }
  }
}

/** The file `candidate` names, if its real path (every symlink followed) is inside `root`. */
async function lookup(root: string, candidate: string): Promise<Found | undefined> {
  try {
    const real = await fs.realpath(candidate);
    const inside = root.endsWith(path.sep) ? root : root + path.sep;
    if (real !== root && !real.startsWith(inside)) return undefined;
    return { path: real, stat: await fs.stat(real, { bigint: true }) };
  } catch {
    // Not there, not readable, or a name the system refuses: all the same to a client.
    return undefined;
  }
}

/** The bytes of one range, read from the file at its offset; fewer when the file has shrunk meanwhile. */
async function readRange(file: string, range: ByteRange): Promise<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const length = range.end - range.start + 1;
    const buffer = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await handle.read(buffer, got, length - got, range.start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === length ? buffer : buffer.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/**
 * Streams `range` of the file from disk, or, answering HEAD, sends its
 * length alone and opens nothing. The read ends at the range's end
 * whatever the file has become since its stat: one that grew sends the
 * length promised, one that shrank falls short of it, which closes the
 * connection (see `res.stream`).
 */
function streamFile(res: HttpResponse, file: string, range: ByteRange, omitBody: boolean): HttpResult {
  const length = range.end - range.start + 1;
  if (omitBody) return body(res, undefined, length);
  res.stream(createReadStream(file, { start: range.start, end: range.end }), { length });
  return undefined;
}

/** Sends `bytes` (or, answering HEAD, nothing) with the Content-Length of what GET sends. */
function body(res: HttpResponse, bytes: Buffer | undefined, length: number): HttpResult {
  res.header('Content-Length', length);
  res.send(bytes ?? EMPTY);
  return undefined;
}

function unsatisfiable(res: HttpResponse, size: number): HttpResult {
  res.status(416).header('Content-Range', `bytes */${size}`);
  return 'range not satisfiable\n';
}

function notFound(res: HttpResponse): HttpResult {
  res.status(404);
  return 'not found\n';
}
