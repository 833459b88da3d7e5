/**
 * nginx (open-source) in front of N `osprey serve` replicas, HTTP and gRPC. `deploy/nginx/osprey.conf` is this
 * module's output for {@link DEFAULT_NGINX_OPTIONS}; `osprey plan --emit nginx` and test/deploy/nginx.test.ts render
 * it for their own replicas and ports.
 *
 * What each directive is for (nginx docs: ngx_http_upstream_module, ngx_http_proxy_module, ngx_http_grpc_module):
 * - health checks: open-source nginx has no active checks; `max_fails=1 fail_timeout=…` is the passive one: a
 *   replica that refused a connection, timed out or answered 503 (draining: `OSPREY_ERR_SHUTTING_DOWN`, or not ready)
 *   gets no requests for `fail_timeout`, then one trial request.
 * - retries: `proxy_next_upstream error timeout http_503 non_idempotent` sends a request to the next replica when
 *   the connection failed (a killed replica), timed out, or the replica answered 503 (draining). Inference is
 *   idempotent (no state changes) although it is a POST, hence `non_idempotent`; the body is buffered
 *   (`proxy_request_buffering on`, the default) so it can be sent again. `/v2/repository/` (load/unload) is NOT
 *   retried that way: a load must not run twice.
 * - keep-alive upstreams: `keepalive N` idle connections per worker, `proxy_http_version 1.1` and an empty
 *   `Connection` header; nginx's `keepalive_timeout` (60 s) is below Osprey's 65 s (`HTTP_TIMEOUT_DEFAULTS`), so
 *   nginx closes an idle connection before the replica does.
 * - gRPC: `grpc_pass` over an HTTP/2 listener, `grpc_next_upstream error timeout non_idempotent` retries calls whose
 *   replica refused the connection. nginx streams gRPC request bodies to the upstream unbuffered, so a call whose
 *   replica died after its body was sent cannot be re-sent by nginx: its 502 is turned into a gRPC trailers-only
 *   response with status UNAVAILABLE (`error_page` → `@grpc_unavailable`), which gRPC clients retry. A draining
 *   replica answers new calls UNAVAILABLE itself. So gRPC clients need a retry policy on UNAVAILABLE (a grpc service
 *   config `retryPolicy`, docs/operations.md) — without it they see those calls fail; HTTP clients need nothing.
 * - one client address: every request reaches the replicas from nginx's address, so each replica must allow more
 *   connections per address than nginx opens: start replicas with `--max-connections-per-ip` above
 *   `worker_processes × worker_connections` (the local setup passes 4096).
 */

/** One replica's listeners as nginx reaches them. */
export interface NginxUpstream {
  host: string;
  httpPort: number;
  /** gRPC port; omitted = no gRPC upstream for this replica. */
  grpcPort?: number;
}

export interface NginxOptions {
  upstreams: readonly NginxUpstream[];
  /** Listen address:port of the HTTP front (e.g. `127.0.0.1:8080` or `8080`). */
  httpListen: string;
  /** Listen address:port of the gRPC front (HTTP/2 cleartext); null = no gRPC front. */
  grpcListen: string | null;
  /** `max_fails` of each upstream server. Default 1. */
  maxFails?: number;
  /** `fail_timeout`: how long a failed replica is skipped, e.g. `5s`. Default 5s. */
  failTimeout?: string;
  /** Idle keep-alive connections per worker to the upstreams. Default 32. */
  keepalive?: number;
  /** Tries per request (the first + retries). Default 3. */
  tries?: number;
  /** Upstream connect timeout, e.g. `1s`. Default 1s. */
  connectTimeout?: string;
  /** Upstream read timeout (longest inference), e.g. `60s`. Default 60s. */
  readTimeout?: string;
  /** Largest request body, nginx size (`128m` = Osprey's DEFAULT_MAX_BODY_BYTES). */
  clientMaxBodySize?: string;
  /** nginx `worker_processes`. Default `auto`. */
  workerProcesses?: number | 'auto';
  /** nginx `worker_connections`. Default 1024. */
  workerConnections?: number;
  /**
   * A standalone nginx.conf (with `events`, `pid`, logs and temp paths under `prefix`) instead of a file for
   * `/etc/nginx/conf.d/` (an `http {}` fragment). Tests and the local setup run nginx unprivileged from a folder.
   */
  standalone?: { prefix: string; accessLog?: boolean };
}

export const DEFAULT_NGINX_OPTIONS: Readonly<NginxOptions> = Object.freeze({
  upstreams: [
    { host: '127.0.0.1', httpPort: 8000, grpcPort: 8001 },
    { host: '127.0.0.1', httpPort: 8010, grpcPort: 8011 },
    { host: '127.0.0.1', httpPort: 8020, grpcPort: 8021 },
  ],
  httpListen: '8080',
  grpcListen: '8081',
});

/** The access-log format: upstream addresses and statuses show every try (`a, b` = retried on b). */
export const NGINX_LOG_FORMAT = '$msec $status $request_method $uri upstream=[$upstream_addr] upstream_status=[$upstream_status] request_time=$request_time';

/**
 * Renders the nginx configuration.
 * @example renderNginxConfig(DEFAULT_NGINX_OPTIONS) // the text of deploy/nginx/osprey.conf
 * @throws Error when there is no upstream or a port is not in 1..65535.
 */
export function renderNginxConfig(o: NginxOptions): string {
  if (o.upstreams.length === 0) throw new Error('nginx: at least one upstream replica is needed');
  for (const u of o.upstreams) {
    for (const p of [u.httpPort, u.grpcPort]) if (p !== undefined && (!Number.isInteger(p) || p < 1 || p > 65535)) throw new Error(`nginx: upstream port ${p} is not in 1..65535`);
  }
  const maxFails = o.maxFails ?? 1;
  const failTimeout = o.failTimeout ?? '5s';
  const keepalive = o.keepalive ?? 32;
  const tries = o.tries ?? 3;
  const connectTimeout = o.connectTimeout ?? '1s';
  const readTimeout = o.readTimeout ?? '60s';
  const bodySize = o.clientMaxBodySize ?? '128m';
  const server = (host: string, port: number) => `    server ${host}:${port} max_fails=${maxFails} fail_timeout=${failTimeout};`;
  const grpcUps = o.upstreams.filter((u) => u.grpcPort !== undefined);
  const lines: string[] = [];
  const s = o.standalone;
  const http: string[] = [`  log_format osprey '${NGINX_LOG_FORMAT}';`];
  if (s) {
    http.push(`  access_log ${s.accessLog ? `${s.prefix}/access.log osprey` : 'off'};`);
    http.push(`  client_body_temp_path ${s.prefix}/client_body;`);
    http.push(`  proxy_temp_path ${s.prefix}/proxy;`);
    http.push(`  fastcgi_temp_path ${s.prefix}/fastcgi;`);
    http.push(`  uwsgi_temp_path ${s.prefix}/uwsgi;`);
    http.push(`  scgi_temp_path ${s.prefix}/scgi;`);
  }
  http.push(
    '',
    '  # Every replica, HTTP (KServe v2 REST). Passive health checks: a replica that fails (connection refused, timeout,',
    '  # 503 while draining) is skipped for fail_timeout.',
    '  upstream osprey_http {',
    '    least_conn;',
    ...o.upstreams.map((u) => server(u.host, u.httpPort)),
    `    keepalive ${keepalive};`,
    '    keepalive_timeout 60s;  # below osprey serve\'s 65 s keep-alive: nginx closes idle connections first',
    '  }',
  );
  if (o.grpcListen !== null && grpcUps.length > 0) {
    http.push('', '  upstream osprey_grpc {', '    least_conn;', ...grpcUps.map((u) => server(u.host, u.grpcPort!)), `    keepalive ${keepalive};`, '  }');
  }
  const proxyCommon = [
    '      proxy_pass http://osprey_http;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    '      proxy_set_header Host $host;',
    '      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    `      proxy_connect_timeout ${connectTimeout};`,
    `      proxy_read_timeout ${readTimeout};`,
    `      proxy_next_upstream_tries ${tries};`,
  ];
  http.push(
    '',
    '  server {',
    `    listen ${o.httpListen};`,
    `    client_max_body_size ${bodySize};`,
    '',
    '    # Inference, metadata, health: idempotent, retried on the next replica when one fails or drains.',
    '    location / {',
    ...proxyCommon,
    '      proxy_next_upstream error timeout http_503 non_idempotent;',
    '    }',
    '',
    '    # Model load/unload must not run twice: retried only when the connection could not be made.',
    '    location /v2/repository/ {',
    ...proxyCommon,
    '      proxy_next_upstream error timeout;',
    '    }',
    '',
    '    # Prometheus scrapes each replica, never one picked by the balancer.',
    '    location = /metrics {',
    '      default_type application/json;',
    '      return 404 \'{"error":"scrape /metrics on each replica directly, not through the load balancer","code":"OSPREY_ERR_NO_ROUTE"}\';',
    '    }',
    '  }',
  );
  if (o.grpcListen !== null && grpcUps.length > 0) {
    http.push(
      '',
      '  # KServe v2 gRPC (HTTP/2 cleartext). Calls are retried when a replica refuses or drops the connection;',
      '  # UNAVAILABLE from a draining replica is retried by the client (grpc retryPolicy, docs/operations.md).',
      '  server {',
      `    listen ${o.grpcListen} http2;`,
      `    client_max_body_size ${bodySize};`,
      '    location / {',
      '      grpc_pass grpc://osprey_grpc;',
      `      grpc_connect_timeout ${connectTimeout};`,
      `      grpc_read_timeout ${readTimeout};`,
      `      grpc_send_timeout ${readTimeout};`,
      '      grpc_next_upstream error timeout non_idempotent;',
      `      grpc_next_upstream_tries ${tries};`,
      '      # nginx forwards gRPC request bodies unbuffered: a call whose replica died after its body was sent',
      '      # cannot be re-sent by nginx. Its 502 becomes a gRPC trailers-only UNAVAILABLE, which clients retry.',
      '      error_page 502 503 504 = @grpc_unavailable;',
      '    }',
      '    location @grpc_unavailable {',
      '      default_type application/grpc;',
      '      add_header grpc-status 14 always;',
      '      add_header grpc-message "osprey replica unavailable (retry)" always;',
      '      return 204;',
      '    }',
      '  }',
    );
  }
  if (s) {
    lines.push(
      '# osprey: nginx in front of osprey serve replicas (generated by src/deploy/nginx.ts)',
      `worker_processes ${o.workerProcesses ?? 'auto'};`,
      `pid ${s.prefix}/nginx.pid;`,
      `error_log ${s.prefix}/error.log warn;`,
      'daemon off;',
      'events {',
      `  worker_connections ${o.workerConnections ?? 1024};`,
      '}',
      'http {',
      ...http,
      '}',
    );
  } else {
    lines.push(
      '# osprey: nginx in front of osprey serve replicas (generated by src/deploy/nginx.ts).',
      '# Drop into /etc/nginx/conf.d/ (inside nginx\'s http {} block). Start the replicas with',
      '# --max-connections-per-ip above worker_processes × worker_connections: every request comes from nginx\'s address.',
      ...http.map((l) => (l.startsWith('  ') ? l.slice(2) : l)),
    );
  }
  return lines.join('\n') + '\n';
}
