import type { HttpExchange } from '../../protocol';
import { ErrorCodes, RingportError } from '../../errors';

/** One HTTP request, as a route handler sees it. */
export class HttpRequest {
  readonly method: string;
  /** The path, without the query, as sent (percent-encoding kept). */
  readonly path: string;
  private readonly queryString: string;
  private parsedQuery: URLSearchParams | undefined = undefined;
  private scratch: Record<string, unknown> | undefined = undefined;
  /** Lower-cased names; a repeated field's values joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, whole (up to the listener's `maxBodyBytes`; a larger one was refused with 413). */
  readonly body: Buffer;
  readonly remoteAddress: string;
  readonly remotePort: number;
  private routeParams: Record<string, string> | undefined = undefined;
  /** Path parameters of the route that matched (`/rooms/:id` gives `params.id`), decoded. */
  get params(): Record<string, string> {
    // Made when first asked for: most routes have none.
    return (this.routeParams ??= {});
  }

  set params(params: Record<string, string>) {
    this.routeParams = params;
  }
  /** The query string's parameters, parsed when first asked for. */
  get query(): URLSearchParams {
    return (this.parsedQuery ??= new URLSearchParams(this.queryString));
  }

  /** Per-request scratch space shared by middleware and the handler, made when first used. */
  get state(): Record<string, unknown> {
    return (this.scratch ??= {});
  }

  /** @internal */
  constructor(exchange: HttpExchange, path: string, query: string) {
    this.method = exchange.method;
    this.path = path;
    this.queryString = query;
    this.headers = exchange.headers;
    this.body = exchange.body;
    this.remoteAddress = exchange.remoteAddress;
    this.remotePort = exchange.remotePort;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return this.body.toString('utf8');
  }

  /** The body parsed as JSON; throws `RP_ERR_DECODE` (answered 400 unless caught) when it is not. */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.body.toString('utf8')) as T;
    } catch (error) {
      throw new RingportError(ErrorCodes.DECODE, `the request body is not JSON: ${(error as Error).message}`, { cause: error });
    }
  }
}
