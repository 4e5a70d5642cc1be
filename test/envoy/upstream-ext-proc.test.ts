// Spike (issue #12 item 3, cross-provider fallback): how Envoy 1.40 runs an
// ext_proc filter in a cluster's UPSTREAM filter chain (HttpProtocolOptions
// http_filters: ext_proc, then upstream_codec), as Envoy AI Gateway does for
// per-attempt translation. A hand-written config, the project's own gRPC
// transport as the ext_proc server, and node:http upstreams that record what
// they receive. Facts established here are listed in envoy/README.md
// ("Upstream ext_proc (per-attempt processing)").
//
// Layout: the routes go to aggregate clusters of two members (the first
// answers 503 or refuses connections, the second answers 200) with one retry
// that moves to the next priority (previous_priorities) and another host.
// Every member has its own upstream ext_proc tagged by initial_metadata; so
// do the aggregates `agg-503` and `agg-refused` (not `agg-plain`), which
// shows whose filter chain runs. A plain cluster whose upstream ext_proc
// points at a Unix socket nobody listens on stands in for "sidecar down".
// `agg-ok` (both members answer 200) is where the sidecar itself fails
// attempt 1: by rewriting its response :status to 503, or by an
// ImmediateResponse 503 (chosen by the client's x-spike-case header).

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, request as http1Request } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import type { IncomingHttpHeaders as Http2Headers } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { startEnvoy } from '../../src/envoy/process.ts';
import type { EnvoyProcess } from '../../src/envoy/process.ts';
import { headerMapToView } from '../../src/server/extproc/wire.ts';
import { ExternalProcessorService } from '../../src/server/proto/load.ts';
import type { HeadersResponseInput, ProcessingRequest, ProcessingResponseInput } from '../../src/server/proto/types.ts';
import type { Value } from '../../src/server/proto/common.ts';
import { Http2GrpcServer, type ServerCall } from '../../src/server/transport/http2-server.ts';
import { envoyBinary } from './helpers.ts';

// ------------------------------------------------------------ ext_proc server

/** One gRPC stream Envoy opened: its metadata and every message, in order. */
interface ExtProcStreamRecord {
  /** 1-based, in the order the streams were opened. */
  readonly n: number;
  readonly metadata: Readonly<Http2Headers>;
  readonly phases: string[];
  requestHeaders?: Map<string, string>;
  /** ProcessingRequest.attributes["envoy.filters.http.ext_proc"] as plain values. */
  attributes?: Record<string, unknown>;
  requestBody?: string;
  responseHeaders?: Map<string, string>;
  responseBody?: string;
  closed: 'end' | 'cancelled' | null;
}

function plain(v: Value | undefined): unknown {
  if (v === undefined) return undefined;
  switch (v.kind) {
    case 'stringValue':
      return v.stringValue;
    case 'numberValue':
      return v.numberValue;
    case 'boolValue':
      return v.boolValue;
    case 'nullValue':
      return null;
    case 'structValue':
      return Object.fromEntries(Object.entries(v.structValue.fields ?? {}).map(([k, x]) => [k, plain(x)]));
    case 'listValue':
      return (v.listValue.values ?? []).map(plain);
    default:
      return undefined;
  }
}

const setHeaders = (pairs: ReadonlyArray<readonly [string, string]>, remove: string[] = []): HeadersResponseInput => ({
  response: {
    header_mutation: {
      set_headers: pairs.map(([key, value]) => ({ header: { key, raw_value: Buffer.from(value, 'latin1') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
      remove_headers: remove,
    },
  },
});

/**
 * Answers every phase with a CommonResponse tagged with the stream's number:
 * request_headers → `:path` /attempt-N/chat, `authorization: Bearer key-N`;
 * request_body → `{"attempt":N}`; response_headers → `x-upstream-ext-proc:
 * attempt-N`; response_body → the upstream's body wrapped as
 * `{"attempt":N,"upstream":…}`.
 */
function recordingProcessor(streams: ExtProcStreamRecord[]) {
  return (call: ServerCall<ProcessingRequest, ProcessingResponseInput>): void => {
    const rec: ExtProcStreamRecord = { n: streams.length + 1, metadata: call.metadata, phases: [], closed: null };
    streams.push(rec);
    const n = rec.n;
    call.on('data', (msg) => {
      rec.phases.push(msg.request ?? '(none)');
      switch (msg.request) {
        case 'request_headers': {
          rec.requestHeaders = headerMapToView(msg.request_headers.headers);
          const attrs = msg.attributes?.['envoy.filters.http.ext_proc'];
          rec.attributes = Object.fromEntries(Object.entries(attrs?.fields ?? {}).map(([k, x]) => [k, plain(x)]));
          if (rec.requestHeaders.get('x-spike-case') === 'extproc-immediate' && rec.requestHeaders.get('x-envoy-attempt-count') === '1') {
            call.write({ immediate_response: { status: { code: 'ServiceUnavailable' }, body: Buffer.from('{"immediate":1}'), details: 'spike_immediate' } });
            return;
          }
          call.write({
            request_headers: setHeaders(
              [
                [':path', `/attempt-${n}/chat`],
                ['authorization', `Bearer key-${n}`],
              ],
              ['content-length'],
            ),
          });
          return;
        }
        case 'request_body':
          rec.requestBody = Buffer.from(msg.request_body.body ?? []).toString('utf8');
          call.write({ request_body: { response: { body_mutation: { body: Buffer.from(JSON.stringify({ attempt: n })) } } } });
          return;
        case 'response_headers':
          rec.responseHeaders = headerMapToView(msg.response_headers.headers);
          if (rec.requestHeaders?.get('x-spike-case') === 'extproc-503' && rec.requestHeaders.get('x-envoy-attempt-count') === '1') {
            call.write({
              response_headers: setHeaders(
                [
                  [':status', '503'],
                  ['x-upstream-ext-proc', `attempt-${n}`],
                ],
                ['content-length'],
              ),
            });
            return;
          }
          call.write({ response_headers: setHeaders([['x-upstream-ext-proc', `attempt-${n}`]], ['content-length']) });
          return;
        case 'response_body': {
          rec.responseBody = Buffer.from(msg.response_body.body ?? []).toString('utf8');
          const body = JSON.stringify({ attempt: n, upstream: rec.responseBody });
          call.write({ response_body: { response: { body_mutation: { body: Buffer.from(body) } } } });
          return;
        }
        default:
          call.write({});
      }
    });
    call.on('end', () => {
      rec.closed ??= 'end';
      call.end();
    });
    call.on('cancelled', () => {
      rec.closed ??= 'cancelled';
    });
  };
}

// ------------------------------------------------------------ upstreams

interface UpstreamHit {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

async function upstream(status: number, hits: UpstreamHit[], name: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      hits.push({ path: req.url ?? '', headers: req.headers, body });
      const out = JSON.stringify({ from: name, status });
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return { server, port: addr.port };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** `spikeCase` goes in x-spike-case, which names the request in the access log. */
function post(port: number, path: string, body: string, spikeCase = path.slice(1)): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http1Request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', authorization: 'Bearer client-key', 'x-spike-case': spikeCase },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('request timed out')));
    req.end(body);
  });
}

// ------------------------------------------------------------ Envoy config

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** The upstream filter chain of one cluster: ext_proc (tagged via initial_metadata), then upstream_codec. */
function upstreamFilters(tag: string, sidecarCluster: string): object {
  return {
    [HTTP_PROTOCOL_OPTIONS]: {
      '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
      explicit_http_config: { http_protocol_options: {} },
      http_filters: [
        {
          name: 'envoy.filters.http.ext_proc',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
            grpc_service: {
              envoy_grpc: { cluster_name: sidecarCluster },
              timeout: '5s',
              initial_metadata: [{ key: 'x-gateway-attempt-cluster', value: tag }],
            },
            failure_mode_allow: false,
            processing_mode: {
              request_header_mode: 'SEND',
              request_body_mode: 'BUFFERED',
              response_header_mode: 'SEND',
              response_body_mode: 'BUFFERED',
              request_trailer_mode: 'SKIP',
              response_trailer_mode: 'SKIP',
            },
            request_attributes: ['xds.cluster_name', 'upstream.address', 'xds.upstream_host_metadata'],
          },
        },
        {
          name: 'envoy.filters.http.upstream_codec',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec' },
        },
      ],
    },
  };
}

/** Every endpoint carries filter metadata `gateway.member: <its cluster>` (read back via xds.upstream_host_metadata). */
/** An endpoint: a TCP port on 127.0.0.1, or a Unix socket path (one nothing listens on is refused every time, unlike a freed TCP port another listener may take). */
function staticCluster(name: string, at: number | string, protocolOptions: object): object {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    typed_extension_protocol_options: protocolOptions,
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            {
              endpoint: { address: typeof at === 'number' ? { socket_address: { address: '127.0.0.1', port_value: at } } : { pipe: { path: at } } },
              metadata: { filter_metadata: { gateway: { member: name } } },
            },
          ],
        },
      ],
    },
  };
}

const HTTP2_ONLY = {
  [HTTP_PROTOCOL_OPTIONS]: { '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, explicit_http_config: { http2_protocol_options: {} } },
};

function aggregateCluster(name: string, members: string[], protocolOptions: object): object {
  return {
    name,
    typed_extension_protocol_options: protocolOptions,
    connect_timeout: '1s',
    lb_policy: 'CLUSTER_PROVIDED',
    cluster_type: {
      name: 'envoy.clusters.aggregate',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig', clusters: members },
    },
  };
}

/** One retry; the retry moves to the next priority (= the next aggregate member) and another host. */
const RETRY_POLICY = {
  retry_on: '5xx,connect-failure,reset',
  num_retries: 1,
  per_try_timeout: '5s',
  retry_priority: {
    name: 'envoy.retry_priorities.previous_priorities',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
      update_frequency: 1,
    },
  },
  retry_host_predicate: [
    {
      name: 'envoy.retry_host_predicates.previous_hosts',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' },
    },
  ],
  host_selection_retry_max_attempts: 3,
};

interface Ports {
  sidecar: number;
  sidecarDown: string;
  failing: number;
  working: number;
  refused: string;
  working2: number;
}

function envoyConfig(p: Ports, accessLog: string): string {
  const route = (prefix: string, cluster: string): object => ({ match: { prefix }, route: { cluster, retry_policy: RETRY_POLICY } });
  return stringifyYaml({
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: 'gateway',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'gateway',
                    access_log: [
                      {
                        name: 'envoy.access_loggers.file',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                          path: accessLog,
                          log_format: {
                            json_format: {
                              case: '%REQ(X-SPIKE-CASE)%',
                              path: '%REQ(:PATH)%',
                              status: '%RESPONSE_CODE%',
                              details: '%RESPONSE_CODE_DETAILS%',
                              flags: '%RESPONSE_FLAGS%',
                              attempts: '%UPSTREAM_REQUEST_ATTEMPT_COUNT%',
                              upstream_cluster: '%UPSTREAM_CLUSTER%',
                              upstream_host: '%UPSTREAM_HOST%',
                            },
                          },
                        },
                      },
                    ],
                    // The gateway's mapper for a failed ext_proc stream (envoy/gateway.yaml), in short.
                    local_reply_config: {
                      mappers: [
                        {
                          filter: {
                            extension_filter: {
                              name: 'envoy.access_loggers.extension_filters.cel',
                              typed_config: {
                                '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
                                expression: "response.code_details.startsWith('ext_proc_error_gRPC_error')",
                              },
                            },
                          },
                          status_code: 503,
                          body_format_override: { json_format: { code: 'gateway_unavailable' } },
                        },
                      ],
                    },
                    http_filters: [
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          include_request_attempt_count: true,
                          include_attempt_count_in_response: true,
                          routes: [
                            route('/members-only', 'agg-plain'),
                            route('/fallback-503', 'agg-503'),
                            route('/fallback-refused', 'agg-refused'),
                            route('/sidecar-down', 'member-sidecar-down'),
                            route('/extproc-503', 'agg-ok'),
                            route('/extproc-immediate', 'agg-ok'),
                          ],
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        staticCluster('sidecar', p.sidecar, HTTP2_ONLY),
        staticCluster('sidecar-down', p.sidecarDown, HTTP2_ONLY),
        staticCluster('member-failing', p.failing, upstreamFilters('member-failing', 'sidecar')),
        staticCluster('member-working', p.working, upstreamFilters('member-working', 'sidecar')),
        staticCluster('member-refused', p.refused, upstreamFilters('member-refused', 'sidecar')),
        staticCluster('member-sidecar-down', p.working, upstreamFilters('member-sidecar-down', 'sidecar-down')),
        staticCluster('member-working2', p.working2, upstreamFilters('member-working2', 'sidecar')),
        aggregateCluster('agg-ok', ['member-working', 'member-working2'], upstreamFilters('agg-ok', 'sidecar')),
        aggregateCluster('agg-plain', ['member-failing', 'member-working'], {}),
        aggregateCluster('agg-503', ['member-failing', 'member-working'], upstreamFilters('agg-503', 'sidecar')),
        aggregateCluster('agg-refused', ['member-refused', 'member-working'], upstreamFilters('agg-refused', 'sidecar')),
      ],
    },
  });
}

// ------------------------------------------------------------ the spike

interface AccessLogLine {
  case: string;
  path: string;
  status: number;
  details: string;
  flags: string;
  attempts: number;
  upstream_cluster: string;
  upstream_host: string;
}

void describe('ext_proc in the upstream filter chain of aggregate-cluster members (Envoy 1.40)', () => {
  let dir = '';
  let envoy: EnvoyProcess | undefined;
  let sidecar: Http2GrpcServer | undefined;
  let port = 0;
  let accessLog = '';
  const streams: ExtProcStreamRecord[] = [];
  const failingHits: UpstreamHit[] = [];
  const workingHits: UpstreamHit[] = [];
  const working2Hits: UpstreamHit[] = [];
  const upstreams: Server[] = [];
  const ports = { failing: 0, working: 0, refused: '' };

  const reset = (): void => {
    streams.length = 0;
    failingHits.length = 0;
    workingHits.length = 0;
    working2Hits.length = 0;
  };

  const dump = (): string =>
    JSON.stringify(
      {
        streams: streams.map((s) => ({
          ...s,
          requestHeaders: s.requestHeaders && Object.fromEntries(s.requestHeaders),
          responseHeaders: s.responseHeaders && Object.fromEntries(s.responseHeaders),
        })),
        failingHits,
        workingHits,
      },
      null,
      1,
    );

  before(async () => {
    const bin = await envoyBinary();
    if (bin === undefined) return;
    dir = await mkdtemp(join(tmpdir(), 'envoy-upstream-extproc-'));
    accessLog = join(dir, 'access.log');
    sidecar = new Http2GrpcServer({ maxReceiveBytes: 4 * 1024 * 1024 });
    sidecar.bidi(ExternalProcessorService.Process, recordingProcessor(streams));
    const sidecarPort = await sidecar.listen({ host: '127.0.0.1', port: 0 });
    if (sidecarPort === null) throw new Error('no sidecar port');
    const failing = await upstream(503, failingHits, 'failing');
    const working = await upstream(200, workingHits, 'working');
    const working2 = await upstream(200, working2Hits, 'working2');
    upstreams.push(failing.server, working.server, working2.server);
    ports.failing = failing.port;
    ports.working = working.port;
    ports.refused = join(dir, 'refused.sock'); // never created
    envoy = await startEnvoy({
      bin,
      workDir: dir,
      configYaml: envoyConfig(
        {
          sidecar: sidecarPort,
          sidecarDown: join(dir, 'sidecar-down.sock'),
          failing: failing.port,
          working: working.port,
          refused: ports.refused,
          working2: working2.port,
        },
        accessLog,
      ),
    });
    port = await envoy.listenerPort();
  });

  after(async () => {
    await envoy?.stop();
    sidecar?.forceShutdown();
    for (const s of upstreams) s.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  const ORIGINAL = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

  const hdr = (r: ExtProcStreamRecord | undefined, name: string): string | undefined => r?.requestHeaders?.get(name);

  void test("routed to an aggregate cluster, the MEMBER clusters' upstream filters never run (no ext_proc stream at all)", async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    const r = await post(port, '/members-only', ORIGINAL);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-envoy-attempt-count'], '2', 'the 503 of the first member was retried on the second');
    assert.equal(streams.length, 0, dump());
    // Both attempts went out untouched.
    assert.deepEqual(
      [...failingHits, ...workingHits].map((h) => [h.path, h.headers.authorization, h.body]),
      [
        ['/members-only', 'Bearer client-key', ORIGINAL],
        ['/members-only', 'Bearer client-key', ORIGINAL],
      ],
    );
  });

  void test("aggregate cluster's upstream ext_proc: one stream per attempt, per-attempt rewrites, the 503 retried, the final attempt's response mutations reach the client", async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    const r = await post(port, '/fallback-503', ORIGINAL);

    // Client: attempt 2's 200, with attempt 2's response mutations (header and body) — none of attempt 1's.
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-envoy-attempt-count'], '2');
    assert.equal(r.headers['x-upstream-ext-proc'], 'attempt-2');
    assert.deepEqual(JSON.parse(r.body), { attempt: 2, upstream: JSON.stringify({ from: 'working', status: 200 }) });

    // One gRPC stream per attempt, each with the full exchange.
    assert.equal(streams.length, 2, dump());
    const [s1, s2] = streams;
    for (const s of streams) assert.deepEqual(s.phases, ['request_headers', 'request_body', 'response_headers', 'response_body'], dump());

    // What identifies the attempt's target: initial_metadata and xds.cluster_name name the AGGREGATE (same on both);
    // upstream.address and xds.upstream_host_metadata are the member's endpoint; x-envoy-attempt-count numbers the attempt.
    for (const s of streams) {
      assert.equal(s.metadata['x-gateway-attempt-cluster'], 'agg-503');
      assert.equal(s.attributes?.['xds.cluster_name'], 'agg-503');
    }
    assert.equal(s1?.attributes?.['upstream.address'], `127.0.0.1:${ports.failing}`);
    assert.equal(s2?.attributes?.['upstream.address'], `127.0.0.1:${ports.working}`);
    // xds.upstream_host_metadata arrives as the envoy.config.core.v3.Metadata message in protobuf TEXT format (a string), not a Struct.
    assert.equal(
      s1?.attributes?.['xds.upstream_host_metadata'],
      'filter_metadata { key: "gateway" value { fields { key: "member" value { string_value: "member-failing" } } } } ',
      dump(),
    );
    assert.equal(
      s2?.attributes?.['xds.upstream_host_metadata'],
      'filter_metadata { key: "gateway" value { fields { key: "member" value { string_value: "member-working" } } } } ',
    );
    assert.equal(hdr(s1, 'x-envoy-attempt-count'), '1');
    assert.equal(hdr(s2, 'x-envoy-attempt-count'), '2');

    // Each upstream saw its own attempt's rewrite: path, credential, body.
    assert.deepEqual(
      failingHits.map((h) => [h.path, h.headers.authorization, h.body]),
      [['/attempt-1/chat', 'Bearer key-1', JSON.stringify({ attempt: 1 })]],
    );
    assert.deepEqual(
      workingHits.map((h) => [h.path, h.headers.authorization, h.body]),
      [['/attempt-2/chat', 'Bearer key-2', JSON.stringify({ attempt: 2 })]],
    );

    // The body is re-sent to every attempt as the client sent it ...
    assert.equal(s1?.requestBody, ORIGINAL);
    assert.equal(s2?.requestBody, ORIGINAL);
    // ... but the HEADERS are not: attempt 2 starts from attempt 1's mutated headers (set and removed headers carry over).
    assert.equal(hdr(s1, ':path'), '/fallback-503');
    assert.equal(hdr(s1, 'authorization'), 'Bearer client-key');
    assert.equal(hdr(s1, 'content-length'), String(Buffer.byteLength(ORIGINAL)));
    assert.equal(hdr(s2, ':path'), '/attempt-1/chat');
    assert.equal(hdr(s2, 'authorization'), 'Bearer key-1');
    assert.equal(hdr(s2, 'content-length'), undefined);

    // Response side: each stream saw its own attempt's response.
    assert.equal(s1?.responseHeaders?.get(':status'), '503');
    assert.deepEqual(JSON.parse(s1?.responseBody ?? ''), { from: 'failing', status: 503 });
    assert.equal(s2?.responseHeaders?.get(':status'), '200');
    assert.deepEqual(JSON.parse(s2?.responseBody ?? ''), { from: 'working', status: 200 });
  });

  void test('first member refuses connections: its stream gets request_headers only, the retry goes to the second member with its own rewrite', async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    const r = await post(port, '/fallback-refused', ORIGINAL);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-envoy-attempt-count'], '2');
    assert.equal(r.headers['x-upstream-ext-proc'], 'attempt-2');
    assert.equal(streams.length, 2, dump());
    const [s1, s2] = streams;
    // The connect failure races the sidecar's answers: attempt 1 never gets past the request side.
    assert.equal(s1?.phases[0], 'request_headers', dump());
    assert.ok(!s1?.phases.includes('response_headers'), dump());
    assert.equal(s1?.attributes?.['upstream.address'], ports.refused, dump());
    assert.equal(s2?.attributes?.['upstream.address'], `127.0.0.1:${ports.working}`);
    assert.deepEqual(s2?.phases, ['request_headers', 'request_body', 'response_headers', 'response_body']);
    assert.equal(s2?.requestBody, ORIGINAL);
    assert.deepEqual(
      workingHits.map((h) => [h.path, h.headers.authorization, h.body]),
      [['/attempt-2/chat', 'Bearer key-2', JSON.stringify({ attempt: 2 })]],
    );
  });

  void test("sidecar down with failure_mode_allow false: the attempt fails with a local 500 before reaching the upstream, NOT retried; the HCM's local_reply_config maps it like a downstream ext_proc failure", async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    const r = await post(port, '/sidecar-down', ORIGINAL);
    // The local 500 (ext_proc_error_gRPC_error_14, see the access log) went through the listener's local_reply_config mapper.
    assert.equal(r.status, 503, r.body);
    assert.deepEqual(JSON.parse(r.body), { code: 'gateway_unavailable' });
    assert.equal(workingHits.length, 0);
    assert.equal(streams.length, 0);
  });

  void test("the upstream ext_proc can CAUSE a retry by turning an attempt's response status into 503 (the router decides after the upstream filters)", async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    // agg-ok: both members answer 200; on attempt 1 the sidecar rewrites the response's :status to 503.
    const r = await post(port, '/extproc-503', ORIGINAL);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers['x-envoy-attempt-count'], '2');
    assert.equal(r.headers['x-upstream-ext-proc'], 'attempt-2');
    assert.deepEqual(JSON.parse(r.body), { attempt: 2, upstream: JSON.stringify({ from: 'working2', status: 200 }) });
    assert.equal(streams.length, 2, dump());
    // Attempt 1's stream still got its (200) response body before the retry.
    assert.deepEqual(streams[0]?.phases, ['request_headers', 'request_body', 'response_headers', 'response_body']);
    assert.equal(streams[0]?.responseHeaders?.get(':status'), '200');
    assert.deepEqual([workingHits.map((h) => h.path), working2Hits.map((h) => h.path)], [['/attempt-1/chat'], ['/attempt-2/chat']]);
  });

  void test('an ImmediateResponse 503 from the upstream ext_proc is NOT retried: the client gets it as is', async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    reset();
    const r = await post(port, '/extproc-immediate', ORIGINAL);
    assert.equal(r.status, 503);
    assert.equal(r.body, '{"immediate":1}');
    assert.equal(r.headers['x-envoy-attempt-count'], undefined);
    assert.equal(streams.length, 1, dump());
    assert.deepEqual(streams[0]?.phases, ['request_headers']);
    assert.equal(workingHits.length + working2Hits.length, 0);
  });

  void test('access log (flushed by stopping Envoy): attempts and response code details per request', async (t) => {
    if (envoy === undefined) return t.skip('no Envoy');
    await envoy.stop();
    const lines = (await readFile(accessLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AccessLogLine);
    const byCase = new Map(lines.map((l) => [l.case, l]));
    // The downstream access log's %REQ(:PATH)% is the LAST attempt's rewritten path: the upstream filters
    // mutate the request headers the router (and the access log) hold, not a per-attempt copy.
    assert.deepEqual(
      ['members-only', 'fallback-503', 'fallback-refused', 'extproc-503', 'extproc-immediate'].map((c) => {
        const l = byCase.get(c);
        return [l?.path, l?.status, l?.attempts, l?.details, l?.upstream_cluster];
      }),
      [
        ['/members-only', 200, 2, 'via_upstream', 'agg-plain'],
        ['/attempt-2/chat', 200, 2, 'via_upstream', 'agg-503'],
        ['/attempt-2/chat', 200, 2, 'via_upstream', 'agg-refused'],
        ['/attempt-2/chat', 200, 2, 'via_upstream', 'agg-ok'],
        // The ImmediateResponse's details string is the response code details; one attempt.
        ['/extproc-immediate', 503, 1, 'spike_immediate', 'agg-ok'],
      ],
      JSON.stringify(lines),
    );
    const down = byCase.get('sidecar-down');
    assert.equal(down?.status, 503, 'the access log records the mapped status');
    assert.equal(down.attempts, 1, 'a failed upstream ext_proc is not retried although retry_on includes 5xx');
    assert.match(down.details, /^ext_proc_error_gRPC_error_14\{/);
  });
});
