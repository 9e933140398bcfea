// The ops endpoint (node:http, localhost by default): /metrics for Prometheus, /healthz (the process is
// alive), /readyz (listeners up; says "buffering" while Kafka is unreachable, with the buffer's depth and age).
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Component, HealthReport } from './lifecycle.ts';
import type { Logger } from './log.ts';
import type { Metrics } from './metrics.ts';

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly kafka: 'up' | 'buffering' | 'starting';
  readonly components: Readonly<Record<string, HealthReport>>;
  readonly buffer: { readonly depthRecords: number; readonly depthBytes: number; readonly oldestAgeSeconds: number };
}

export interface OpsServerDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Brings gauges up to date before a scrape. */
  readonly refreshMetrics: () => void;
  readonly readiness: () => ReadinessReport;
}

export interface OpsServer extends Component {
  address(): AddressInfo;
}

export function createOpsServer(options: OpsServerOptions, deps: OpsServerDeps): OpsServer {
  const log = deps.log.child({ component: 'ops.http' });
  let server: Server | null = null;

  function reply(response: import('node:http').ServerResponse, status: number, type: string, body: string): void {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
    response.end(body);
  }

  return {
    name: 'ops.http',

    async start() {
      server = createServer((request, response) => {
        const path = (request.url ?? '/').split('?')[0];
        if (request.method !== 'GET' && request.method !== 'HEAD') return reply(response, 405, 'text/plain', 'GET only\n');
        switch (path) {
          case '/metrics':
            deps.refreshMetrics();
            deps.metrics.registry.metrics().then(
              (text) => reply(response, 200, deps.metrics.registry.contentType, text),
              (error: Error) => reply(response, 500, 'text/plain', `${error.message}\n`),
            );
            return;
          case '/healthz':
            return reply(response, 200, 'application/json', '{"status":"ok"}\n');
          case '/readyz': {
            const report = deps.readiness();
            return reply(response, report.ready ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
          }
          default:
            return reply(response, 404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
        }
      });
      const current = server;
      await new Promise<void>((resolve, reject) => {
        current.once('error', (error) => reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port}: ${error.message}`)));
        current.listen(options.port, options.host, () => resolve());
      });
      const bound = current.address() as AddressInfo;
      log.info({ address: `${bound.address}:${bound.port}` }, 'ops endpoint listening (/metrics, /healthz, /readyz)');
    },

    async stop() {
      const current = server;
      server = null;
      if (current === null) return;
      current.closeAllConnections();
      await new Promise<void>((resolve) => current.close(() => resolve()));
    },

    health(): HealthReport {
      return server?.listening === true ? { status: 'ok' } : { status: 'down', detail: 'ops endpoint not listening' };
    },

    address() {
      if (server === null) throw new Error('ops endpoint not started');
      return server.address() as AddressInfo;
    },
  };
}
