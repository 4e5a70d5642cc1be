// End-to-end check over real gRPC connections: a server built from our
// service definitions is called by clients generated from the upstream
// protos, and clients built from our definitions call a server generated from
// the upstream protos. The handlers are written against our hand-written
// types, so this also exercises those types on both sides of the wire.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { AuthorizationService, ExternalProcessorService, HealthService, LOADER_OPTIONS } from '../../src/server/proto/load.ts';
import { clientConstructors } from '../../src/server/proto/clients.ts';
import type {
  AuthorizationHandlers,
  CheckRequest,
  CheckResponse,
  ExternalProcessorHandlers,
  HealthHandlers,
  ProcessingRequest,
  ProcessingRequestInput,
  ProcessingResponse,
  ProcessingResponseInput,
} from '../../src/server/proto/types.ts';

const NODE_MODULES = path.resolve(import.meta.dirname, '../../node_modules');
const XDS_DEPS = path.join(NODE_MODULES, '@grpc/grpc-js-xds/deps');

/** Service client constructors generated from the upstream protos. */
function upstreamServices(): Record<'ExternalProcessor' | 'Authorization' | 'Health', grpc.ServiceClientConstructor> {
  const def = protoLoader.loadSync(
    [
      'envoy/service/ext_proc/v3/external_processor.proto',
      'envoy/service/auth/v3/external_auth.proto',
      path.join(NODE_MODULES, 'grpc-health-check/proto/health/v1/health.proto'),
    ],
    {
      ...LOADER_OPTIONS,
      includeDirs: ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(XDS_DEPS, d)),
    },
  );
  const ctor = (name: string): grpc.ServiceClientConstructor => {
    const service = def[name];
    assert.ok(service && !('format' in service), `${name} missing upstream`);
    return grpc.makeClientConstructor(service, name);
  };
  return {
    ExternalProcessor: ctor('envoy.service.ext_proc.v3.ExternalProcessor'),
    Authorization: ctor('envoy.service.auth.v3.Authorization'),
    Health: ctor('grpc.health.v1.Health'),
  };
}

// Handlers written against our types; reused for both servers.

function processorReply(req: ProcessingRequest): ProcessingResponseInput {
  switch (req.request) {
    case 'request_headers': {
      const names = (req.request_headers.headers?.headers ?? []).map((h) => h.key ?? '');
      return {
        request_headers: {
          response: {
            status: 'CONTINUE',
            header_mutation: {
              set_headers: [
                {
                  header: { key: 'x-seen', raw_value: Buffer.from(names.join(',')) },
                  append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
                },
              ],
              remove_headers: ['authorization'],
            },
          },
        },
        dynamic_metadata: { fields: { tenant: { stringValue: 'acme' } } },
      };
    }
    case 'request_body':
      return {
        immediate_response: {
          status: { code: 429 },
          body: Buffer.from(`too big: ${req.request_body.body?.length ?? 0}`),
          grpc_status: { status: 8 },
          details: 'quota',
        },
      };
    default:
      return { request_trailers: {} };
  }
}

const processorHandlers: ExternalProcessorHandlers = {
  Process(call) {
    call.on('data', (req: ProcessingRequest) => {
      call.write(processorReply(req));
    });
    call.on('end', () => call.end());
  },
};

function checkReply(req: CheckRequest): Parameters<Parameters<AuthorizationHandlers['Check']>[1]>[1] {
  const http = req.attributes?.request?.http;
  if (http?.headers?.['authorization'] === 'Bearer ok') {
    return {
      status: { code: 0 },
      ok_response: {
        headers: [{ header: { key: 'x-user', value: 'u1' } }],
        headers_to_remove: ['authorization'],
        query_parameters_to_set: [{ key: 'a', value: 'b' }],
      },
    };
  }
  return {
    status: { code: 7, message: 'denied' },
    denied_response: { status: { code: 'Forbidden' }, body: `no (${http?.size ?? '?'})` },
  };
}

const authorizationHandlers: AuthorizationHandlers = {
  Check(call, callback) {
    callback(null, checkReply(call.request));
  },
};

const healthHandlers: HealthHandlers = {
  Check(call, callback) {
    callback(null, { status: call.request.service ? 'SERVICE_UNKNOWN' : 'SERVING' });
  },
  Watch(call) {
    call.write({ status: 'SERVING' });
    call.write({ status: 'NOT_SERVING' });
    call.end();
  },
};

async function startServer(register: (server: grpc.Server) => void): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server();
  register(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, address: `127.0.0.1:${port}` };
}

function unary<Res>(invoke: (cb: grpc.requestCallback<Res>) => void): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke((err, res) => (err ? reject(err) : res === undefined ? reject(new Error('empty')) : resolve(res)));
  });
}

function collect<T>(stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on('data', (m: T) => out.push(m));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

const creds = grpc.credentials.createInsecure();

/** Requests in the shape both sides produce/accept. */
const PROCESS_REQUESTS: ProcessingRequestInput[] = [
  {
    request_headers: {
      headers: {
        headers: [
          { key: ':path', raw_value: Buffer.from('/v1/chat/completions') },
          { key: 'authorization', raw_value: Buffer.from('Bearer x') },
        ],
      },
    },
    protocol_config: { request_body_mode: 'FULL_DUPLEX_STREAMED' },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'request.id': { stringValue: 'r1' } } } },
  },
  { request_body: { body: Buffer.from('0123456789'), end_of_stream: true } },
];

function checkProcessResponses(responses: ProcessingResponse[]): void {
  assert.equal(responses.length, 2);
  const [first, second] = responses;
  assert.ok(first?.response === 'request_headers');
  const mutation = first.request_headers.response?.header_mutation;
  // protobufjs puts explicitly set zero values on the wire, so it comes back.
  assert.equal(first.request_headers.response?.status, 'CONTINUE');
  assert.equal(mutation?.set_headers?.[0]?.header?.key, 'x-seen');
  assert.equal(mutation?.set_headers?.[0]?.header?.raw_value?.toString(), ':path,authorization');
  assert.equal(mutation?.set_headers?.[0]?.append_action, 'OVERWRITE_IF_EXISTS_OR_ADD');
  assert.deepEqual(mutation?.remove_headers, ['authorization']);
  assert.deepEqual(first.dynamic_metadata, {
    fields: { tenant: { kind: 'stringValue', stringValue: 'acme' } },
  });
  assert.ok(second?.response === 'immediate_response');
  assert.deepEqual(second.immediate_response, {
    status: { code: 'TooManyRequests' },
    body: Buffer.from('too big: 10'),
    grpc_status: { status: 8 },
    details: 'quota',
  });
}

function checkCheckResponses(ok: CheckResponse, denied: CheckResponse): void {
  assert.ok(ok.http_response === 'ok_response');
  assert.deepEqual(ok.status, { code: 0 });
  assert.deepEqual(ok.ok_response, {
    headers: [{ header: { key: 'x-user', value: 'u1' } }],
    headers_to_remove: ['authorization'],
    query_parameters_to_set: [{ key: 'a', value: 'b' }],
  });
  assert.ok(denied.http_response === 'denied_response');
  assert.deepEqual(denied.status, { code: 7, message: 'denied' });
  assert.deepEqual(denied.denied_response, { status: { code: 'Forbidden' }, body: 'no (-1)' });
}

const CHECK_OK = {
  attributes: { request: { http: { method: 'GET', headers: { authorization: 'Bearer ok' } } } },
};
const CHECK_DENIED = {
  attributes: { request: { http: { method: 'GET', path: '/x', size: '-1' } } },
};

void describe('our server, upstream-generated clients', () => {
  let server: grpc.Server;
  let address: string;
  const up = upstreamServices();

  before(async () => {
    ({ server, address } = await startServer((s) => {
      s.addService(ExternalProcessorService, processorHandlers);
      s.addService(AuthorizationService, authorizationHandlers);
      s.addService(HealthService, healthHandlers);
    }));
  });
  after(() => server.forceShutdown());

  void test('ExternalProcessor/Process', async () => {
    const client = new up.ExternalProcessor(address, creds);
    try {
      const call = (client['Process'] as () => grpc.ClientDuplexStream<object, ProcessingResponse>).call(client);
      const done = collect(call);
      for (const r of PROCESS_REQUESTS) call.write(r);
      call.end();
      checkProcessResponses(await done);
    } finally {
      client.close();
    }
  });

  void test('Authorization/Check', async () => {
    const client = new up.Authorization(address, creds);
    try {
      type CheckFn = (req: object, cb: grpc.requestCallback<CheckResponse>) => void;
      const check = (client['Check'] as CheckFn).bind(client);
      const ok = await unary<CheckResponse>((cb) => check(CHECK_OK, cb));
      const denied = await unary<CheckResponse>((cb) => check(CHECK_DENIED, cb));
      checkCheckResponses(ok, denied);
    } finally {
      client.close();
    }
  });

  void test('Health/Check and Health/Watch', async () => {
    const client = new up.Health(address, creds);
    try {
      type CheckFn = (req: object, cb: grpc.requestCallback<object>) => void;
      const check = (client['Check'] as CheckFn).bind(client);
      assert.deepEqual(await unary<object>((cb) => check({}, cb)), { status: 'SERVING' });
      assert.deepEqual(await unary<object>((cb) => check({ service: 'nope' }, cb)), {
        status: 'SERVICE_UNKNOWN',
      });
      const watch = (client['Watch'] as (req: object) => grpc.ClientReadableStream<object>).call(client, {});
      assert.deepEqual(await collect(watch), [{ status: 'SERVING' }, { status: 'NOT_SERVING' }]);
    } finally {
      client.close();
    }
  });
});

void describe('upstream-generated server, our typed clients', () => {
  let server: grpc.Server;
  let address: string;
  const up = upstreamServices();

  before(async () => {
    ({ server, address } = await startServer((s) => {
      s.addService(up.ExternalProcessor.service, processorHandlers);
      s.addService(up.Authorization.service, authorizationHandlers);
      s.addService(up.Health.service, healthHandlers);
    }));
  });
  after(() => server.forceShutdown());

  const ctors = clientConstructors();

  void test('ExternalProcessor/Process', async () => {
    const client = new ctors.ExternalProcessor(address, creds);
    try {
      const call = client.Process();
      const done = collect(call);
      for (const r of PROCESS_REQUESTS) call.write(r);
      call.end();
      checkProcessResponses(await done);
    } finally {
      client.close();
    }
  });

  void test('Authorization/Check', async () => {
    const client = new ctors.Authorization(address, creds);
    try {
      const ok = await unary<CheckResponse>((cb) => client.Check(CHECK_OK, cb));
      const denied = await unary<CheckResponse>((cb) => client.Check(CHECK_DENIED, cb));
      checkCheckResponses(ok, denied);
    } finally {
      client.close();
    }
  });

  void test('Health/Check, Health/Watch and an unimplemented List', async () => {
    const client = new ctors.Health(address, creds);
    try {
      assert.deepEqual(await unary((cb) => client.Check({}, cb)), { status: 'SERVING' });
      assert.deepEqual(await collect(client.Watch({})), [{ status: 'SERVING' }, { status: 'NOT_SERVING' }]);
      await assert.rejects(
        unary((cb) => client.List({}, cb)),
        (err: grpc.ServiceError) => err.code === grpc.status.UNIMPLEMENTED,
      );
    } finally {
      client.close();
    }
  });
});
