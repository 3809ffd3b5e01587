/**
 * The answers of one pass over a connection's pipelined requests, gathered
 * and handed to the connection as one write: one buffer and one queued send
 * for sixteen pipelined answers instead of sixteen. Heads (and bodies that
 * are ASCII text) are kept as one latin1 string, encoded once; other bodies
 * are copied in when the batch is taken.
 */
export class OutputBatch {
  /** Bytes gathered so far. */
  bytes = 0;
  /** latin1 text gathered after the last part in `parts`. */
  private text = '';
  private parts: Array<string | Uint8Array> | undefined = undefined;

  /** Adds text of one byte per character (a head, an ASCII body). */
  addText(latin1: string): void {
    this.text += latin1;
    this.bytes += latin1.length;
  }

  /** Adds bytes; they are copied when the batch is taken, so the caller may not change them before. */
  addBytes(bytes: Uint8Array): void {
    const parts = (this.parts ??= []);
    if (this.text !== '') {
      parts.push(this.text);
      this.text = '';
    }
    parts.push(bytes);
    this.bytes += bytes.length;
  }

  /** What was gathered, as one buffer of its own, and the batch empty again; undefined when nothing was. */
  take(): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    let out: Buffer;
    const parts = this.parts;
    if (parts === undefined) {
      out = Buffer.from(this.text, 'latin1');
    } else {
      out = Buffer.allocUnsafe(this.bytes);
      let at = 0;
      for (const part of parts) {
        if (typeof part === 'string') {
          at += out.write(part, at, 'latin1');
        } else {
          out.set(part, at);
          at += part.length;
        }
      }
      if (this.text !== '') out.write(this.text, at, 'latin1');
      this.parts = undefined;
    }
    this.text = '';
    this.bytes = 0;
    return out;
  }
}
