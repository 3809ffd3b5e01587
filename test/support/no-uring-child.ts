// Run under test/support/no-uring by test/backend/no-uring.test.ts: what the
// addon and `auto` say there, and a round trip through a server on `auto`.
// Prints one line of JSON.
import { availableBackends, connect, createServer } from '../../src';
import { loadAddon } from '../../src/backend/native-addon';

async function main(): Promise<void> {
  const load = loadAddon();
  const uringProbe = load.ok ? load.addon.errnoName(load.addon.probe('uring')) : load.reason;
  const server = createServer();
  server.handle(1, (_session, bytes: Buffer) => Buffer.concat([Buffer.from('re:'), bytes]));
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  const client = await connect({ host: '127.0.0.1', port });
  const reply = await new Promise<string>((resolve) => {
    client.handle(1, (_session, bytes: Buffer) => resolve(bytes.toString()));
    client.send(1, Buffer.from('ping'));
  });
  const clientBackend = client.backend.kind;
  await client.close();
  await server.close({ drainMs: 100 });
  console.log(JSON.stringify({ uringProbe, available: availableBackends(), backend: server.backend, clientBackend, reply }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
