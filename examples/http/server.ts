import { parseArgs } from 'node:util';
// An application would import these from 'ringport'.
import { createServer, type BackendChoice, type Server } from '../../src';

export interface HttpExampleOptions {
  /** Default: every interface. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Default `auto`. */
  backend?: BackendChoice;
}

export interface HttpExample {
  readonly server: Server;
  readonly address: { host: string; port: number };
}

/**
 * The seed endpoints: `GET /` greets, `POST /ping` answers `pong`, `POST
 * /echo` answers with the request's body. Every HTTP listener also answers
 * `/healthz`, `/readyz` and `/metrics` by itself.
 */
export async function startHttpExample(options: HttpExampleOptions = {}): Promise<HttpExample> {
  const server = createServer({ backend: options.backend });
  server.http.get('/', () => 'hello from ringport\n');
  server.http.post('/ping', () => 'pong');
  // The body is bytes: sent back as they came, with the client's Content-Type when it gave one.
  server.http.post('/echo', (req, res) => {
    res.header('Content-Type', req.headers['content-type'] ?? 'application/octet-stream');
    return req.body;
  });
  const address = await server.listen({ host: options.host, port: options.port ?? 8080, protocol: 'http' });
  return { server, address };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, host: { type: 'string' }, backend: { type: 'string' } },
  });
  const { server, address } = await startHttpExample({
    host: values.host,
    port: values.port === undefined ? undefined : Number(values.port),
    backend: values.backend as BackendChoice | undefined,
  });
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  console.log(`http://${host}:${address.port}/ on backend ${server.backend.kind} (${server.backend.reason})`);
  const stop = (): void => {
    console.log('closing');
    void server.close().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error((error as Error).message);
    process.exit(1);
  });
}
