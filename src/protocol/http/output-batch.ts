import type { StreamPeer } from '../protocol';

/**
 * The answers of one pass over a connection's pipelined requests, gathered
 * and handed to the connection together: one buffer and one queued send
 * for sixteen pipelined answers instead of sixteen. Heads (and bodies that
 * are ASCII text) are kept as one latin1 string, which the backend encodes
 * where it queues it; other bodies are queued as they are, or copied into
 * the one buffer made for many answers.
 */
export class OutputBatch {
  /** Bytes gathered so far. */
  bytes = 0;
  /** latin1 text gathered after the last part in `parts`. */
  private text = '';
  /** Text and bytes in order, before `text`; one array for the connection's life, emptied by each write. */
  private readonly parts: Array<string | Uint8Array> = [];

  /** Adds text of one byte per character (a head, an ASCII body). */
  addText(latin1: string): void {
    this.text += latin1;
    this.bytes += latin1.length;
  }

  /** Adds bytes; the caller may not change them afterwards (they may be queued as they are). */
  addBytes(bytes: Uint8Array): void {
    if (this.text !== '') {
      this.parts.push(this.text);
      this.text = '';
    }
    this.parts.push(bytes);
    this.bytes += bytes.length;
  }

  /**
   * Writes what was gathered to `peer` and empties the batch: text alone
   * goes as text (no buffer made for it); one answer's head and body go as
   * they are, which the backend joins where it queues them; more than that
   * is copied into one buffer. The peer's answer (false: over its
   * high-water mark); true when there was nothing.
   */
  writeTo(peer: StreamPeer): boolean {
    if (this.bytes === 0) return true;
    const parts = this.parts;
    const text = this.text;
    this.text = '';
    this.bytes = 0;
    if (parts.length === 0) return peer.writeText(text);
    if (parts.length <= 2 && text === '') {
      // Emptied before writing: a write that closes the connection may flush this batch again.
      const first = parts[0];
      const second = parts.length === 2 ? parts[1] : undefined;
      parts.length = 0;
      const below = typeof first === 'string' ? peer.writeText(first) : peer.write(first);
      if (second === undefined) return below;
      return (typeof second === 'string' ? peer.writeText(second) : peer.write(second)) && below;
    }
    let size = text.length;
    for (const part of parts) size += part.length;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const part of parts) {
      if (typeof part === 'string') {
        at += out.write(part, at, 'latin1');
      } else {
        out.set(part, at);
        at += part.length;
      }
    }
    if (text !== '') out.write(text, at, 'latin1');
    parts.length = 0;
    return peer.write(out);
  }
}
