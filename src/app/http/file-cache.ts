import { gzip } from 'node:zlib';
import { promisify } from 'node:util';

const gzipAsync = promisify(gzip);

/** Files up to this size are kept whole: a web client's html, css and small scripts, read once. */
const MAX_KEPT_FILE_BYTES = 256 * 1024;
/** Larger sources are served as they are: compressing one would hold it whole in memory, and take long. */
const MAX_GZIP_SOURCE_BYTES = 16 * 1024 * 1024;
/** What an entry costs beyond its bytes, so that many tiny entries still count. */
const ENTRY_OVERHEAD_BYTES = 128;

interface Entry {
  /** The file version this entry holds: size and modification time, as the ETag says them. */
  readonly version: string;
  bytes: Buffer | undefined;
  /** The gzipped bytes; null when gzip did not pay (or the result is too large to keep), so the file goes as it is. */
  gzip: Buffer | null | undefined;
  gzipping: Promise<Buffer | null> | undefined;
  cost: number;
}

/**
 * The bytes of served files, by real path, each entry valid for one version
 * of its file (size + mtime): small files whole, and compressible ones
 * gzipped. The gzipped bytes are made once per version, however many
 * requests ask at once, and kept, so no request ever waits for (or pays
 * for) a compression another made. Bounded by bytes, least recently used
 * first out; a changed file replaces its entry.
 */
export class FileCache {
  /** How many times gzip has run: once per file version while its entry is kept. */
  compressions = 0;
  private readonly entries = new Map<string, Entry>();
  private total = 0;

  constructor(private readonly maxBytes: number) {}

  /** The whole file, read with `read` unless kept; kept when small. */
  async contents(path: string, version: string, size: number, read: () => Promise<Buffer>): Promise<Buffer> {
    const entry = this.entry(path, version);
    if (entry.bytes !== undefined) return entry.bytes;
    const bytes = await read();
    // A file that changed while it was read is served, not kept: its bytes may not match `version`.
    if (size <= MAX_KEPT_FILE_BYTES && bytes.length === size && this.entries.get(path) === entry) {
      entry.bytes = bytes;
      this.account(entry, bytes.length);
    }
    return bytes;
  }

  /** The gzipped file, or null when it should go as it is. */
  gzipped(path: string, version: string, size: number, read: () => Promise<Buffer>): Promise<Buffer | null> {
    if (size > MAX_GZIP_SOURCE_BYTES) return Promise.resolve(null);
    const entry = this.entry(path, version);
    if (entry.gzip !== undefined) return Promise.resolve(entry.gzip);
    entry.gzipping ??= this.compress(path, entry, size, read).finally(() => {
      entry.gzipping = undefined;
    });
    return entry.gzipping;
  }

  private async compress(path: string, entry: Entry, size: number, read: () => Promise<Buffer>): Promise<Buffer | null> {
    const source = await this.contents(path, entry.version, size, read);
    this.compressions++;
    const zipped = await gzipAsync(source);
    const result = zipped.length < source.length && zipped.length <= this.maxBytes / 4 ? zipped : null;
    if (this.entries.get(path) === entry) {
      entry.gzip = result;
      this.account(entry, result?.length ?? 0);
    }
    return result;
  }

  /** The entry for this version of the file, made (replacing an older version's) when there is none; now the most recent. */
  private entry(path: string, version: string): Entry {
    let entry = this.entries.get(path);
    if (entry !== undefined) {
      this.entries.delete(path);
      if (entry.version === version) {
        this.entries.set(path, entry);
        return entry;
      }
      this.total -= entry.cost;
    }
    entry = { version, bytes: undefined, gzip: undefined, gzipping: undefined, cost: ENTRY_OVERHEAD_BYTES };
    this.entries.set(path, entry);
    this.total += entry.cost;
    return entry;
  }

  private account(entry: Entry, bytes: number): void {
    entry.cost += bytes;
    this.total += bytes;
    // A Map iterates in insertion order, and every use re-inserts: the first entries are the least recently used.
    for (const [path, oldest] of this.entries) {
      if (this.total <= this.maxBytes) break;
      this.entries.delete(path);
      this.total -= oldest.cost;
    }
  }
}
