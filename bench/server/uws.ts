import * as path from 'node:path';
import type * as Uws from '@trufflesuite/uws-js-unofficial';
import { HTTP_ECHO_PATH, HTTP_GET_PATH, HTTP_GREETING, MAX_FRAME_BYTES, PacketIds, WEBSOCKET_PATH } from '../wire';
import type { RunningServer } from './running-server';

/**
 * The anchor of the WebSocket workloads: uWebSockets.js, µWebSockets (C++,
 * its own epoll loop inside Node's) behind a thin JS binding. Installed as
 * the npm package `@trufflesuite/uws-js-unofficial`, which ships the native
 * binaries for Node 14, 18 and 20 in `binaries/`.
 *
 * The package's main entry (src/uws.js) catches a failure to load the binary,
 * prints a warning and returns a pure-JS reimplementation built on `ws`
 * instead, so a row that loaded it that way would measure `ws` under the
 * uWebSockets.js name. Here the binary for this platform and Node ABI
 * (`uws_linux_x64_115.node` on Linux x64, Node 20) is required by its path,
 * and a binary that does not load fails the row with the reason.
 */
const PACKAGE = '@trufflesuite/uws-js-unofficial';

export function uwsBinaryPath(): string {
  const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
  return path.join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
}

function loadUws(): typeof Uws {
  let file: string;
  try {
    file = uwsBinaryPath();
  } catch (err) {
    throw new Error(`uWebSockets.js: ${PACKAGE} is not installed (npm install): ${(err as Error).message}`);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const uws = require(file) as typeof Uws;
    if (typeof uws.App !== 'function') throw new Error('it has no App()');
    return uws;
  } catch (err) {
    throw new Error(`uWebSockets.js: the native binary ${file} did not load (${(err as Error).message}); this row never uses the package's JS fallback`);
  }
}

/**
 * The same job as ringport's bench server: every binary message is a packet
 * (u16 LE id | payload); ECHO goes back to its sender, BROADCAST to every
 * connection (the sender included), COUNT is answered with the number of
 * open connections. A broadcast is `app.publish` to one topic every
 * connection subscribes to on open: µWebSockets' own way to reach many
 * sockets, which walks the subscribers in C++ and sends the same bytes to
 * each (a loop of `ws.send` would cross from JS to C++ once per recipient).
 *
 * Options left at uWS's defaults but for those ringport's defaults differ
 * on: no compression (uWS's default too; ringport declines
 * permessage-deflate), messages up to ringport's 1 MiB `maxFrameBytes`
 * (uWS: 16 KiB), and up to ringport's 4 MiB `maxQueueBytes` queued per
 * connection before uWS would skip it (uWS: 64 KiB). Neither limit is
 * approached by the workloads; a message uWS skipped would show as a gap.
 */
export async function startUws(): Promise<RunningServer> {
  const uws = loadUws();
  const file = uwsBinaryPath();
  const TOPIC = 'all';
  const app = uws.App();
  let open = 0;
  app.ws<Record<string, never>>(WEBSOCKET_PATH, {
    compression: uws.DISABLED,
    maxPayloadLength: MAX_FRAME_BYTES,
    maxBackpressure: 4 * 1024 * 1024,
    open: (ws) => {
      open++;
      ws.subscribe(TOPIC);
    },
    message: (ws, message, isBinary) => {
      const bytes = new Uint8Array(message);
      if (!isBinary || bytes.length < 2) {
        ws.end(1003);
        return;
      }
      switch (bytes[0] | (bytes[1] << 8)) {
        case PacketIds.ECHO:
          ws.send(message, true);
          break;
        case PacketIds.BROADCAST:
          app.publish(TOPIC, message, true);
          break;
        case PacketIds.COUNT: {
          const reply = Buffer.allocUnsafe(6);
          reply.writeUInt16LE(PacketIds.COUNT, 0);
          reply.writeUInt32LE(open, 2);
          ws.send(reply, true);
          break;
        }
        default:
          ws.end(1003);
      }
    },
    close: () => {
      open--;
    },
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (listenSocket) => {
      if (listenSocket === false) {
        reject(new Error('uWebSockets.js could not listen on 127.0.0.1'));
        return;
      }
      const port = uws.us_socket_local_port(listenSocket as unknown as Uws.us_socket);
      resolve({ port, stats: () => ({ connections: open, binary: path.basename(file), broadcast: 'app.publish' }) });
    });
  });
}

/**
 * The anchor of the HTTP workloads: uWebSockets.js's own HTTP server, from
 * the same binary (loaded the same way, never the package's JS fallback).
 * `app.get('/')` ends the response with the greeting as text/plain.
 * `app.post('/echo')` sets `onAborted` (uWS requires it of any response not
 * ended in the handler itself) and reads the body with `res.onData`: the
 * chunks before the last are copied, since uWS neuters each ArrayBuffer when
 * the callback returns; a body in one chunk, as 32 bytes always is, goes to
 * `end` as it is (`end` copies it into the socket's buffer), inside
 * `res.cork`, as application/octet-stream. uWS adds Content-Length, Date and
 * its own `uWebSockets` header. Anything else is a 404, as on the other rows.
 */
export async function startUwsHttp(): Promise<RunningServer> {
  const uws = loadUws();
  const file = uwsBinaryPath();
  const app = uws.App();
  let gets = 0;
  let echoes = 0;
  app.get(HTTP_GET_PATH, (res) => {
    gets++;
    res.writeHeader('Content-Type', 'text/plain; charset=utf-8').end(HTTP_GREETING);
  });
  app.post(HTTP_ECHO_PATH, (res) => {
    echoes++;
    let chunks: Buffer[] | undefined;
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    res.onData((chunk, isLast) => {
      if (!isLast) {
        (chunks ??= []).push(Buffer.from(Buffer.from(chunk)));
        return;
      }
      if (aborted) return;
      const body = chunks === undefined ? chunk : Buffer.concat([...chunks, Buffer.from(chunk)]);
      res.cork(() => {
        res.writeHeader('Content-Type', 'application/octet-stream').end(body);
      });
    });
  });
  app.any('/*', (res) => {
    res.writeStatus('404 Not Found').end();
  });
  return new Promise((resolve, reject) => {
    app.listen('127.0.0.1', 0, (listenSocket) => {
      if (listenSocket === false) {
        reject(new Error('uWebSockets.js could not listen on 127.0.0.1'));
        return;
      }
      const port = uws.us_socket_local_port(listenSocket as unknown as Uws.us_socket);
      resolve({ port, stats: () => ({ binary: path.basename(file), gets, echoes }) });
    });
  });
}
