import { startHttpExample, type HttpExample } from '../../examples/http/server';
import { backends } from '../support/backends';
import { RawHttp, request } from '../support/http-raw';

describe.each(backends)('the HTTP example on %s', (backend) => {
  let example: HttpExample;
  const clients: RawHttp[] = [];

  beforeEach(async () => {
    example = await startHttpExample({ backend, host: '127.0.0.1', port: 0 });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await example.server.close({ drainMs: 100 });
  });

  async function dial(): Promise<RawHttp> {
    const client = await RawHttp.connect(example.address.port);
    clients.push(client);
    return client;
  }

  it('greets on GET /, answers pong to POST /ping, and echoes the body of POST /echo', async () => {
    const client = await dial();
    const body = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x41]);
    // One keep-alive connection, the requests pipelined: the answers come in order.
    client.write(
      Buffer.concat([
        request('GET', '/'),
        request('POST', '/ping', { body: '' }),
        request('POST', '/echo', { body, headers: { 'Content-Type': 'application/x-test' } }),
      ]),
    );
    const [greeting, pong, echo] = await client.waitResponses(3);
    expect(greeting.status).toBe(200);
    expect(greeting.headers['content-type']).toMatch(/^text\/plain/);
    expect(greeting.body.toString()).toBe('hello from ringport\n');
    expect(pong.status).toBe(200);
    expect(pong.body.toString()).toBe('pong');
    expect(echo.status).toBe(200);
    expect(echo.headers['content-type']).toBe('application/x-test');
    expect(echo.body).toEqual(body);
  });

  it('answers other methods on its paths with 405, and other paths with 404', async () => {
    const client = await dial();
    client.write(Buffer.concat([request('GET', '/ping'), request('GET', '/nowhere')]));
    const [wrongMethod, nowhere] = await client.waitResponses(2);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('POST');
    expect(nowhere.status).toBe(404);
  });
});
