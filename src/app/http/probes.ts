import type { ServerMetrics } from '../metrics/server-metrics';
import type { HttpRequest } from './http-request';
import type { HttpResponse } from './http-response';
import type { HttpRoutes } from './http-routes';

/**
 * The routes every HTTP listener of a server answers unless the
 * application routes the same path itself:
 *
 * - `GET /healthz`: 200 while the process serves HTTP at all (liveness: a
 *   failure means restart it);
 * - `GET /readyz`: 200, and 503 from the moment `server.close()` begins
 *   (readiness: a load balancer stops sending new players to a server that
 *   is draining, while the players it has finish);
 * - `GET /metrics`: the Prometheus text format, unless metrics are off.
 *
 * They pass through the application's HTTP middleware like any route, so
 * one that guards /metrics (by address, by token) guards it here too.
 */
export function mountProbes(routes: HttpRoutes, isReady: () => boolean, metrics: ServerMetrics | undefined): void {
  routes.builtIn('/healthz', (_req, res) => probe(res, 200, 'ok\n'));
  routes.builtIn('/readyz', (_req, res) => (isReady() ? probe(res, 200, 'ready\n') : probe(res, 503, 'closing\n')));
  if (metrics !== undefined) {
    routes.builtIn('/metrics', async (_req: HttpRequest, res: HttpResponse) => {
      const text = await metrics.text();
      res.header('Content-Type', metrics.contentType).header('Cache-Control', 'no-store');
      return text;
    });
  }
}

function probe(res: HttpResponse, status: number, text: string): string {
  // A cached answer would tell a prober the past.
  res.status(status).header('Cache-Control', 'no-store');
  return text;
}
