import { ErrorCodes, RingportError } from '../../errors';
import type { HttpAnswer, HttpExchange } from '../../protocol';
import type { Guard } from '../../session';
import { HttpRequest } from './http-request';
import { HttpResponse, type HttpResult } from './http-response';
import { StaticFiles, type StaticOptions } from './static-files';
import { StreamBody } from './stream-body';

/**
 * Handles one request: returns what to send (see `HttpResult`), or builds
 * it on `res` and returns nothing (or `res` itself: `return res.stream(file)`).
 */
export type HttpHandler = (req: HttpRequest, res: HttpResponse) => HttpResult | void | Promise<HttpResult | void>;

/** Koa-style HTTP middleware: work, `await next()` for the rest of the chain (and the handler), more work. */
export type HttpMiddleware = (req: HttpRequest, res: HttpResponse, next: () => Promise<void>) => void | Promise<void>;

interface Route {
  readonly method: string;
  /** Literal segments, and `undefined` where a `:name` parameter goes. */
  readonly segments: ReadonlyArray<string | undefined>;
  readonly names: readonly string[];
  /** A trailing `*`: the route matches any path below its prefix, the rest in `params['*']`. */
  readonly prefix: boolean;
  readonly handler: HttpHandler;
  /** Its place among the routes: the first that matches a request wins. */
  readonly index: number;
}

/** A method's routes, looked up the fast way where they can be. */
interface MethodRoutes {
  /** Routes of a literal path (no parameter, no `*`), by path: the first of each path. */
  readonly literal: Map<string, Route>;
  /** The others, in the order added: they are matched segment by segment. */
  readonly patterns: Route[];
}

/** Segments of a path, split on `/`, the leading empty one dropped. */
function segmentsOf(path: string): string[] {
  const parts = path.split('/');
  parts.shift();
  return parts;
}

function isThenable(value: unknown): value is Promise<HttpResult | void> {
  return typeof (value as Promise<unknown> | undefined)?.then === 'function';
}

/**
 * The HTTP routes of a server (`server.http`): `get`, `post`, `put`,
 * `delete`, `head` with path parameters (`/rooms/:id`) and a trailing `*`,
 * and middleware (`use`). A `GET` route answers `HEAD` too. No route: 404;
 * a path known under other methods: 405 with `Allow`. A handler (or
 * middleware) that throws is a fault: `onError` hears of it (source
 * `http`) and the client gets 500, or 400 for a body that is not JSON.
 */
export class HttpRoutes {
  private readonly routes: Route[] = [];
  private readonly byMethod = new Map<string, MethodRoutes>();
  private readonly middleware: HttpMiddleware[] = [];
  /** Routes ringport adds itself (the probes, /metrics), by path: GET and HEAD only, and only where the application routes no literal path of the same name. */
  private readonly builtIns = new Map<string, HttpHandler>();
  private readonly routedPaths = new Set<string>();

  /** @internal `maxQueueBytes`: the send queue's limit; a static file larger than fits in it (or than 256 KiB) is streamed. */
  constructor(
    private readonly guard: Guard,
    readonly maxQueueBytes = Infinity,
  ) {}

  get(path: string, handler: HttpHandler): this {
    return this.add('GET', path, handler);
  }

  post(path: string, handler: HttpHandler): this {
    return this.add('POST', path, handler);
  }

  put(path: string, handler: HttpHandler): this {
    return this.add('PUT', path, handler);
  }

  delete(path: string, handler: HttpHandler): this {
    return this.add('DELETE', path, handler);
  }

  head(path: string, handler: HttpHandler): this {
    return this.add('HEAD', path, handler);
  }

  /**
   * Serves the files below `dir` at `prefix` (`static('/', 'web/dist')`,
   * `static('/assets', 'assets')`) for GET and HEAD: content types by
   * extension, ETag and Last-Modified with 304s, one byte range (206, 416),
   * gzip for compressible types, index.html for a directory, and never a
   * file outside `dir` (404). Returns what serves them; its `compressions`
   * counts gzip runs (one per file version, whatever the requests).
   */
  static(prefix: string, dir: string, options: StaticOptions = {}): StaticFiles {
    const files = new StaticFiles(dir, options, this.maxQueueBytes);
    this.add('GET', `${prefix.replace(/\/+$/, '')}/*`, files.handle);
    return files;
  }

  /** Adds middleware; it runs for every request, in the order added, before the route's handler. */
  use(middleware: HttpMiddleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /** @internal Adds a route for any method (the static files and probes use it). */
  add(method: string, path: string, handler: HttpHandler): this {
    if (!path.startsWith('/')) throw new RingportError(ErrorCodes.INVALID_ARGUMENT, `a route's path starts with /, got '${path}'`);
    const raw = segmentsOf(path);
    const prefix = raw[raw.length - 1] === '*';
    if (prefix) raw.pop();
    const names: string[] = [];
    const segments = raw.map((segment) => {
      if (!segment.startsWith(':')) return segment;
      names.push(segment.slice(1));
      return undefined;
    });
    const route: Route = { method, segments, names, prefix, handler, index: this.routes.length };
    this.routes.push(route);
    let forMethod = this.byMethod.get(method);
    if (forMethod === undefined) {
      forMethod = { literal: new Map(), patterns: [] };
      this.byMethod.set(method, forMethod);
    }
    if (!prefix && names.length === 0) {
      this.routedPaths.add(path);
      if (!forMethod.literal.has(path)) forMethod.literal.set(path, route);
    } else {
      forMethod.patterns.push(route);
    }
    return this;
  }

  /**
   * @internal A route of ringport's own (a probe): it answers GET and HEAD
   * on `path` through the middleware like any route, and before the
   * application's wildcards (a static mount at `/` does not hide it), but
   * an application route of the same literal path replaces it.
   */
  builtIn(path: string, handler: HttpHandler): void {
    this.builtIns.set(path, handler);
  }

  /** @internal Answers one request; never throws or rejects. */
  readonly respond = (exchange: HttpExchange): HttpAnswer | Promise<HttpAnswer> => {
    const q = exchange.target.indexOf('?');
    const path = q < 0 ? exchange.target : exchange.target.slice(0, q);
    const req = new HttpRequest(exchange, path, q < 0 ? '' : exchange.target.slice(q + 1));
    const res = new HttpResponse();
    let route: Route | undefined;
    try {
      route = this.match(req);
    } catch {
      return plain(400, 'bad percent-encoding in the path');
    }
    const handler = this.builtInFor(req) ?? route?.handler ?? this.notFound(req);
    if (this.middleware.length === 0) {
      // The common case: no middleware, so a synchronous handler is answered without a promise.
      try {
        const result = handler(req, res);
        if (!isThenable(result)) {
          finish(res, result);
          return this.answerOf(req, res);
        }
        return result
          .then((value: HttpResult | void) => {
            finish(res, value);
            return this.answerOf(req, res);
          })
          .then(undefined, (error: unknown) => this.failed(error, req, res));
      } catch (error) {
        return this.failed(error, req, res);
      }
    }
    return this.runChain(req, res, handler).then(
      () => this.answerOf(req, res),
      (error: unknown) => this.failed(error, req, res),
    );
  };

  /** What `res` holds, with a streamed body's failures reported as faults of this request. */
  private answerOf(req: HttpRequest, res: HttpResponse): HttpAnswer {
    if (res.body instanceof StreamBody) {
      res.body.onFault = (error) => this.guard.fault(error, { source: 'http', session: undefined, event: `${req.method} ${req.path}` });
    }
    return res.answer();
  }

  private async runChain(req: HttpRequest, res: HttpResponse, handler: HttpHandler): Promise<void> {
    let called = -1;
    const step = async (i: number): Promise<void> => {
      if (i <= called) throw new Error('next() called more than once in one middleware');
      called = i;
      if (i < this.middleware.length) {
        await this.middleware[i](req, res, () => step(i + 1));
        return;
      }
      const value = await handler(req, res);
      finish(res, value);
    };
    await step(0);
  }

  private match(req: HttpRequest): Route | undefined {
    const route = this.matchMethod(req, req.method);
    return route === undefined && req.method === 'HEAD' ? this.matchMethod(req, 'GET') : route;
  }

  /**
   * The first route of `method`, in the order added, that matches: a
   * literal path is one lookup, and only patterns added before it are
   * tried against the segments.
   */
  private matchMethod(req: HttpRequest, method: string): Route | undefined {
    const routes = this.byMethod.get(method);
    if (routes === undefined) return undefined;
    // A target not starting with / (`*`, an absolute URL) compares as segments against every route, as it always has.
    const rooted = req.path.charCodeAt(0) === 47;
    const literal = rooted ? routes.literal.get(req.path) : undefined;
    const patterns = rooted ? routes.patterns : this.routes;
    if (patterns.length === 0 || (literal !== undefined && patterns[0].index > literal.index)) return literal;
    const segments = segmentsOf(req.path);
    for (const route of patterns) {
      if (literal !== undefined && route.index > literal.index) break;
      if (route.method !== method) continue;
      const params = matchSegments(route, segments);
      if (params !== undefined) {
        req.params = params;
        return route;
      }
    }
    return literal;
  }

  private builtInFor(req: HttpRequest): HttpHandler | undefined {
    if (this.builtIns.size === 0 || (req.method !== 'GET' && req.method !== 'HEAD') || this.routedPaths.has(req.path)) return undefined;
    return this.builtIns.get(req.path);
  }

  /** No route for this method: 405 where the path has other methods, else 404. */
  private notFound(req: HttpRequest): HttpHandler {
    const segments = segmentsOf(req.path);
    const allowed = new Set<string>();
    if (this.builtIns.has(req.path) && !this.routedPaths.has(req.path)) allowed.add('GET');
    for (const route of this.routes) {
      if (matchSegments(route, segments) !== undefined) allowed.add(route.method);
    }
    if (allowed.has('GET')) allowed.add('HEAD');
    if (allowed.size === 0) return () => plainResult(404, `no route for ${req.method} ${req.path}`);
    return (_req, res) => {
      res.status(405).header('Allow', [...allowed].join(', '));
      return `${req.method} is not allowed on ${req.path}\n`;
    };
  }

  private failed(error: unknown, req: HttpRequest, res: HttpResponse): HttpAnswer {
    // A stream the handler set up before it failed is not sent: its source is released.
    res.discard();
    if (error instanceof RingportError && error.code === ErrorCodes.DECODE) return plain(400, `${error.message}\n`);
    this.guard.fault(error, { source: 'http', session: undefined, event: `${req.method} ${req.path}` });
    return plain(500, 'internal server error\n');
  }
}

function matchSegments(route: Route, segments: string[]): Record<string, string> | undefined {
  const n = route.segments.length;
  if (route.prefix ? segments.length < n : segments.length !== n) return undefined;
  let params: Record<string, string> | undefined;
  let name = 0;
  for (let i = 0; i < n; i++) {
    const want = route.segments[i];
    if (want === undefined) {
      (params ??= {})[route.names[name++]] = decodeURIComponent(segments[i]);
    } else if (want !== segments[i]) {
      return undefined;
    }
  }
  if (route.prefix) (params ??= {})['*'] = segments.slice(n).join('/');
  return params ?? {};
}

/** Settles `res` once a handler returned `value`. */
function finish(res: HttpResponse, result: HttpResult | void): void {
  // `return res.send(x)` and `return res.stream(s)` return the response itself: what it holds is the answer.
  const value = result === res ? undefined : result;
  if (value !== undefined || !res.sent) {
    if (value instanceof PlainResult) {
      res.status(value.status);
      res.send(value.text);
    } else if (value !== undefined) {
      res.send(value);
    } else if (!res.sent) {
      // Nothing returned and nothing sent: there is no content.
      res.status(res.statusCode === 200 ? 204 : res.statusCode);
    }
  }
}

class PlainResult {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {}
}

function plainResult(status: number, text: string): PlainResult {
  return new PlainResult(status, `${text}\n`);
}

function plain(status: number, text: string): HttpAnswer {
  return { status, headers: [['Content-Type', 'text/plain; charset=utf-8']], body: text };
}
