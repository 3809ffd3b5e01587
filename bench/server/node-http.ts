import * as http from 'node:http';
import type * as net from 'node:net';
import { HTTP_ECHO_PATH, HTTP_GET_PATH, HTTP_GREETING } from '../wire';
import type { RunningServer } from './running-server';

/**
 * The HTTP baseline: plain `node:http`, as its documentation writes a
 * server. `GET /` gets the greeting as text/plain, `POST /echo` its body
 * back as application/octet-stream (chunks gathered, then one `end`), with
 * an explicit Content-Length each, as every row sends one; anything else
 * 404. Node's defaults otherwise (keep-alive, its 5 s keep-alive timeout,
 * which the workloads never leave idle for). `noDelay` is Node's default
 * since 18 for http servers.
 */
export function startNodeHttp(): Promise<RunningServer> {
  const greeting = Buffer.from(HTTP_GREETING);
  let connections = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.method === 'GET' && req.url === HTTP_GET_PATH) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': greeting.length });
      res.end(greeting);
    } else if (req.method === 'POST' && req.url === HTTP_ECHO_PATH) {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
        res.end(body);
      });
    } else {
      res.writeHead(404, { 'Content-Length': 0 });
      res.end();
    }
  });
  server.on('connection', (socket: net.Socket) => {
    connections++;
    socket.setNoDelay(true);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({ port, stats: () => ({ connectionsAccepted: connections, requests }) });
    });
  });
}
