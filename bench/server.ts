import type { BackendKind } from '../src';
import { parseFlags } from './flags';
import { exitWithParent, report, type ToServerMessage } from './ipc';
import type { MallocStats } from './loadgen';
import { startNodeHttp } from './server/node-http';
import { startNodeNet } from './server/node-net';
import { startRingport } from './server/ringport';
import type { RunningServer } from './server/running-server';
import { startUws, startUwsHttp } from './server/uws';
import { startWs } from './server/ws';
import { CpuMeter } from './stats';

/**
 * The server under test, in a process of its own so that it never shares a
 * thread with the load generator:
 *
 *   node -r ts-node/register/transpile-only bench/server.ts --target ringport/net
 *
 * Targets are `ringport/<backend>` (framed TCP), `ringport/websocket/<backend>`
 * (WebSocket at /play), `ringport/http/<backend>` (HTTP/1.1: `GET /`,
 * `POST /echo`) or one of the peers below. A new peer is one more
 * entry here and one file in bench/server/.
 */
const peers: Record<string, () => Promise<RunningServer>> = {
  'node:net': startNodeNet,
  'uWebSockets.js': startUws,
  ws: startWs,
  'uWebSockets.js/http': startUwsHttp,
  'node:http': startNodeHttp,
};

function start(target: string): Promise<RunningServer> {
  if (target.startsWith('ringport/http/')) return startRingport(target.slice('ringport/http/'.length) as BackendKind, 'http');
  if (target.startsWith('ringport/websocket/')) return startRingport(target.slice('ringport/websocket/'.length) as BackendKind, 'websocket');
  if (target.startsWith('ringport/')) return startRingport(target.slice('ringport/'.length) as BackendKind);
  const peer = peers[target];
  if (peer === undefined) throw new Error(`unknown target '${target}': ringport/<backend> or ${Object.keys(peers).join(', ')}`);
  return peer();
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { target: 'ringport/net', 'malloc-stats': '' });
  const target = flags.target;
  // The memory workloads pass the allocator addon (bench/server/malloc-stats.c): trim, then count, after each GC.
  const malloc = flags['malloc-stats'] === '' ? undefined : (require(flags['malloc-stats']) as MallocStats);
  exitWithParent();
  // A normal exit on SIGTERM, so that `--cpu-prof` (bench --profile) gets to write its profile.
  process.on('SIGTERM', () => process.exit(0));
  const server = await start(target);
  const cpu = new CpuMeter();
  process.on('message', (message: ToServerMessage) => {
    if (message.type === 'window-start') {
      cpu.restart();
    } else if (message.type === 'window-end') {
      const { user, system } = cpu.split();
      void report({ type: 'window', cpuPercent: user + system, userPercent: user, systemPercent: system, stats: server.stats?.() });
    } else if (message.type === 'gc') {
      // Started with --expose-gc by the orchestrator for the `conns` workload.
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      // Free pages malloc still holds go back first, so memory it hands out again shows in RSS.
      const inUse = malloc?.trim();
      const { heapUsed, external, arrayBuffers } = process.memoryUsage();
      void report({ type: 'gc-done', heapUsed, external, arrayBuffers, malloc: inUse });
    }
  });
  await report({ type: 'listening', port: server.port });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
