// Raw node:net peers in a process of their own, for test/transport/mass-close.test.ts:
// they answer a FIN with their own at once (allowHalfOpen is off), all in one
// burst, as a crowd of real clients would and in-process peers do not.
// Usage: fork(this, [port, count]); says 'open' once every peer is connected,
// then { ended, clean, errors } once every peer is closed.
const net = require('node:net');

const [port, count] = process.argv.slice(2).map(Number);
let connected = 0;
let closed = 0;
const result = { ended: 0, clean: 0, errors: [] };
for (let i = 0; i < count; i++) {
  const peer = net.connect({ host: '127.0.0.1', port }, () => {
    if (++connected === count) process.send('open');
  });
  peer.on('end', () => result.ended++);
  peer.on('error', (err) => result.errors.push(err.code || err.message));
  peer.on('close', (hadError) => {
    if (!hadError) result.clean++;
    if (++closed === count) process.send(result);
  });
}
process.on('disconnect', () => process.exit(0));
