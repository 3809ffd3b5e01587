// Entry point of a worker thread in test/transport/reuse-port.test.ts: jest's
// transform does not reach worker threads, so the TypeScript server is
// loaded through ts-node here.
require('ts-node').register({ transpileOnly: true, project: require('node:path').join(__dirname, '../../tsconfig.test.json') });
require('./worker-server.ts');
