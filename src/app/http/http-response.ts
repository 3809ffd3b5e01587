import type { HttpAnswer } from '../../protocol';

/** What a route handler may return: text, bytes, a value sent as JSON, or nothing (the `res` it was given says). */
export type HttpResult = string | Buffer | Uint8Array | object | number | boolean | null | undefined;

/**
 * The response a route handler builds, when returning a value is not
 * enough: `res.status(201).header('Location', '/rooms/7').send({ id: 7 })`.
 * A handler that returns a value (other than undefined) sends it with
 * whatever status and headers it set here.
 */
export class HttpResponse {
  statusCode = 200;
  readonly headers: Array<[string, string]> = [];
  /** @internal What was sent, once `send` (or a returned value) has decided it. */
  body: Buffer | string | undefined = undefined;
  /** @internal */
  sent = false;

  status(code: number): this {
    this.statusCode = code;
    return this;
  }

  /** Adds a header field (no check for duplicates: `Set-Cookie` may repeat). */
  header(name: string, value: string | number): this {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value))) throw new TypeError('a header may not contain CR or LF');
    this.headers.push([name, String(value)]);
    return this;
  }

  /** Whether a header of this name has been set. */
  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.headers.some(([n]) => n.toLowerCase() === lower);
  }

  /** Sends `body`: a string as text, bytes as they are, anything else as JSON. */
  send(body: HttpResult): this {
    this.sent = true;
    if (body === undefined) {
      this.body = undefined;
    } else if (typeof body === 'string') {
      if (!this.has('content-type')) this.header('Content-Type', 'text/plain; charset=utf-8');
      this.body = body;
    } else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      if (!this.has('content-type')) this.header('Content-Type', 'application/octet-stream');
      this.body = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    } else {
      if (!this.has('content-type')) this.header('Content-Type', 'application/json');
      this.body = JSON.stringify(body);
    }
    return this;
  }

  /** @internal */
  answer(): HttpAnswer {
    return { status: this.statusCode, headers: this.headers, body: this.body };
  }
}
