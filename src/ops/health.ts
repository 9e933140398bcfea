// The ops endpoint (node:http, localhost by default): /metrics for Prometheus, /healthz (the process is
// alive), /readyz (listeners up; says "buffering" while Kafka is unreachable, with the buffer's depth and age),
// the status page at / and its JSON feed /api/status. Optional basic auth guards every path but /healthz.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { errorMessage } from '../errors.ts';
import type { Component, HealthReport } from '../core/lifecycle.ts';
import { createOnceLogger, type Logger } from '../core/log.ts';
import { printable } from '../shared/input-text.ts';
import type { Metrics } from '../core/metrics.ts';
import type { LinkState } from '../forward/forwarder.ts';
import type { StatusSnapshot } from './status.ts';
import { STATUS_PAGE_HTML } from './status-page.ts';

export interface OpsServerOptions {
  readonly host: string;
  readonly port: number;
  /** Basic auth for every path except /healthz; the password file is read once, at start. null = open. */
  readonly auth?: { readonly username: string; readonly passwordFile: string } | null;
  /**
   * Host names (besides IP addresses and localhost) the endpoint answers to while it has no auth. Anything else
   * is refused: a web page whose name an attacker points at this gateway (DNS rebinding) sends its own name.
   */
  readonly allowedHosts?: readonly string[];
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly kafka: LinkState;
  readonly components: Readonly<Record<string, HealthReport>>;
  readonly buffer: { readonly depthRecords: number; readonly depthBytes: number; readonly oldestAgeSeconds: number };
}

export interface OpsServerDeps {
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Brings gauges up to date before a scrape. */
  readonly refreshMetrics: () => void;
  readonly readiness: () => ReadinessReport;
  /** The status page's feed (/api/status); without it / and /api/status answer 404. */
  readonly status?: () => Promise<StatusSnapshot>;
  /** The waiting commands (/api/commands, POST /api/commands/{id}/cancel); without it they answer 404. */
  readonly commands?: CommandsApi;
}

/** One waiting command as /api/commands lists it. */
export interface CommandView {
  readonly command_id: string;
  readonly device_id: string;
  readonly name: string;
  readonly state: 'queued' | 'sent';
  readonly attempts: number;
  readonly payload_bytes: number;
  readonly accepted_at: string;
  readonly expires_at: string;
}

export interface CommandsApi {
  list(): readonly CommandView[];
  /** cancelled; sent: handed to its device's path already (its outcome will tell); unknown: no such command waits. */
  cancel(commandId: string): Promise<'cancelled' | 'sent' | 'unknown'>;
}

/** Longest command id in a cancel URL (ids are at most 128 characters). */
const MAX_COMMAND_ID_CHARS = 128;

export interface OpsServer extends Component {
  address(): AddressInfo;
}

export function createOpsServer(options: OpsServerOptions, deps: OpsServerDeps): OpsServer {
  const log = deps.log.child({ component: 'ops.http' });
  /** One warning per address (or host name) per minute: a scraper with a wrong password must not flood the journal. */
  const once = createOnceLogger(60_000);
  const allowedHosts = new Set((options.allowedHosts ?? []).map((host) => host.toLowerCase()));
  let server: Server | null = null;
  let checkCredentials: ((header: string | undefined) => boolean) | null = null;

  function reply(response: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
    response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
    response.end(body);
  }

  function authorized(request: IncomingMessage, path: string): boolean {
    return checkCredentials === null || path === '/healthz' || checkCredentials(request.headers.authorization);
  }

  /** With basic auth on, a foreign page gets no credentials and so no data: only an open endpoint checks Host. */
  function hostAllowed(hostHeader: string | undefined): boolean {
    if (checkCredentials !== null || hostHeader === undefined) return true;
    const host = hostName(hostHeader);
    return host === 'localhost' || isIP(host) !== 0 || allowedHosts.has(host);
  }

  return {
    name: 'ops.http',

    async start() {
      checkCredentials = options.auth == null ? null : basicAuthChecker(options.auth.username, readPasswordFile(options.auth.passwordFile));
      server = createServer((request, response) => {
        const path = (request.url ?? '/').split('?')[0] ?? '/';
        const cancel = /^\/api\/commands\/([^/]+)\/cancel$/.exec(path);
        if (request.method === 'POST' && cancel !== null) {
          // A browser page cannot send this header cross-origin without a preflight we never answer (CSRF).
          if (request.headers['x-iotgw-request'] !== 'cancel') {
            return reply(response, 403, 'text/plain', 'a cancel needs the header X-Iotgw-Request: cancel (iotgw commands cancel sends it)\n');
          }
        } else if (request.method !== 'GET' && request.method !== 'HEAD') {
          return reply(response, 405, 'text/plain', 'GET only (and POST /api/commands/{id}/cancel)\n');
        }
        if (path !== '/healthz' && !hostAllowed(request.headers.host)) {
          const host = printable(hostName(request.headers.host ?? ''), 64);
          if (once.shouldLog(`host:${host}`))
            log.warn({ host, address: request.socket.remoteAddress }, 'ops endpoint: request for a host name it does not serve');
          return reply(
            response,
            421,
            'text/plain',
            `this endpoint answers to IP addresses, localhost and http.allowed_hosts, not to "${host}" (a guard against DNS rebinding while http.auth is off): add the name to http.allowed_hosts, or set http.auth\n`,
          );
        }
        if (!authorized(request, path)) {
          if (once.shouldLog(`401:${request.socket.remoteAddress ?? '?'}`))
            log.warn({ path, address: request.socket.remoteAddress }, 'ops endpoint: missing or wrong basic-auth credentials');
          return reply(response, 401, 'text/plain', 'authentication required (http.auth)\n', { 'www-authenticate': 'Basic realm="iotgw", charset="UTF-8"' });
        }
        if (cancel !== null && request.method === 'POST' && deps.commands !== undefined) {
          const commandId = decodeURIComponentSafe(cancel[1] ?? '');
          if (commandId === null || commandId.length > MAX_COMMAND_ID_CHARS) return reply(response, 400, 'text/plain', 'not a command id\n');
          const commands = deps.commands;
          commands.cancel(commandId).then(
            (outcome) => {
              if (outcome === 'cancelled')
                log.info({ commandId: printable(commandId, 128), address: request.socket.remoteAddress }, 'command cancelled by an operator');
              const [status, body] =
                outcome === 'cancelled'
                  ? [200, { cancelled: commandId }]
                  : outcome === 'sent'
                    ? [409, { error: `command ${commandId} was handed to its device's path already and may have arrived; its outcome comes as a receipt` }]
                    : [404, { error: `no waiting command ${commandId}: delivered, expired, cancelled already, or never read` }];
              reply(response, status, 'application/json', `${JSON.stringify(body)}\n`);
            },
            (error: Error) => reply(response, 500, 'text/plain', `${error.message}\n`),
          );
          return;
        }
        switch (path) {
          case '/api/commands':
            if (deps.commands === undefined) break;
            return reply(response, 200, 'application/json', `${JSON.stringify({ commands: deps.commands.list() })}\n`);
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
          case '/':
          case '/index.html':
            if (deps.status === undefined) break;
            return reply(response, 200, 'text/html; charset=utf-8', STATUS_PAGE_HTML, {
              'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
              'x-content-type-options': 'nosniff',
            });
          case '/api/status':
            if (deps.status === undefined) break;
            deps.status().then(
              (snapshot) => reply(response, 200, 'application/json', `${JSON.stringify(snapshot)}\n`),
              (error: Error) => reply(response, 500, 'text/plain', `${error.message}\n`),
            );
            return;
          default:
            break;
        }
        reply(response, 404, 'text/plain', 'not found: try / (status page), /api/status, /api/commands, /metrics, /healthz or /readyz\n');
      });
      const current = server;
      await new Promise<void>((resolve, reject) => {
        current.once('error', (error) => reject(new Error(`cannot listen for HTTP on ${options.host}:${options.port}: ${error.message}`)));
        current.listen(options.port, options.host, () => resolve());
      });
      const bound = current.address() as AddressInfo;
      log.info(
        { address: `${bound.address}:${bound.port}`, auth: checkCredentials !== null },
        'ops endpoint listening (/ status page, /api/status, /metrics, /healthz, /readyz)',
      );
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

function readPasswordFile(path: string): string {
  let password: string;
  try {
    password = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new Error(`http.auth.password_file: cannot read ${path}: ${errorMessage(error)}`);
  }
  if (password === '') throw new Error(`http.auth.password_file: ${path} is empty`);
  return password;
}

/**
 * `Authorization: Basic base64(user:password)` checked in constant time: both sides are hashed to 32 bytes
 * first, so neither the length nor the first differing byte of the secret shows in the response time.
 */
export function basicAuthChecker(username: string, password: string): (header: string | undefined) => boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();
  const expected = digest(`${username}:${password}`);
  return (header) => {
    const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(header ?? '');
    const given = match?.[1] === undefined ? '' : Buffer.from(match[1], 'base64').toString('utf8');
    return timingSafeEqual(digest(given), expected) && match !== null;
  };
}

function decodeURIComponentSafe(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** The host of a Host header, lower case, without its port or IPv6 brackets. */
function hostName(header: string): string {
  const trimmed = header.trim().toLowerCase();
  if (trimmed.startsWith('[')) return trimmed.slice(1, trimmed.indexOf(']') === -1 ? undefined : trimmed.indexOf(']'));
  const colon = trimmed.lastIndexOf(':');
  return colon === -1 ? trimmed : trimmed.slice(0, colon);
}
