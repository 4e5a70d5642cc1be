// Ties the hand-written types to what the loader really produces: inputs are
// typed with the `…Input` types, expected decoded objects with the decoded
// types, and both go through the production codecs. A type that disagrees
// with the runtime shape either fails `tsc` here or fails the deepEqual.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MessageTypeDefinition } from '@grpc/proto-loader';
import { packageDefinition } from '../../src/server/proto/load.ts';
import type {
  CheckRequest,
  CheckRequestInput,
  CheckResponse,
  CheckResponseInput,
  HealthCheckResponse,
  ProcessingPhase,
  ProcessingRequest,
  ProcessingRequestInput,
  ProcessingResponse,
  ProcessingResponseInput,
} from '../../src/server/proto/types.ts';

function roundTrip(fullName: string, input: object): unknown {
  const def = packageDefinition[fullName] as MessageTypeDefinition<object, unknown> | undefined;
  assert.ok(def && 'serialize' in def, fullName);
  return def.deserialize(def.serialize(input));
}

/** Exhaustive over the union: adding a phase without handling it fails tsc. */
function phaseOf(req: ProcessingRequest): ProcessingPhase | 'none' {
  switch (req.request) {
    case 'request_headers':
      return req.request_headers.end_of_stream === true ? 'request_headers' : req.request;
    case 'response_headers':
    case 'request_body':
    case 'response_body':
    case 'request_trailers':
    case 'response_trailers':
      return req.request;
    case undefined:
      return 'none';
    default: {
      const unreachable: never = req;
      return unreachable;
    }
  }
}

void test('ProcessingRequest: headers phase with every kind of nested value', () => {
  const input: ProcessingRequestInput = {
    request_headers: {
      headers: {
        headers: [
          { key: ':method', raw_value: Buffer.from('POST') },
          { key: 'x-b64', raw_value: 'aGk=' },
        ],
      },
      end_of_stream: false,
    },
    metadata_context: {
      filter_metadata: {
        'envoy.filters.http.jwt_authn': {
          fields: {
            sub: { stringValue: 'u1' },
            admin: { boolValue: true },
            n: { numberValue: 2.5 },
            none: { nullValue: 'NULL_VALUE' },
            list: { listValue: { values: [{ stringValue: 'a' }] } },
            nested: { structValue: { fields: { k: { numberValue: 1 } } } },
          },
        },
      },
      typed_filter_metadata: { t: { type_url: 'type.googleapis.com/x.Y', value: Buffer.from([1]) } },
    },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'request.path': { stringValue: '/v1' } } } },
    observability_mode: true,
    protocol_config: { request_body_mode: 'STREAMED', response_body_mode: 9 },
    flow_control_init: { initial_window_downstream_to_sidestream: 65536 },
  };
  const expected: ProcessingRequest = {
    request: 'request_headers',
    request_headers: {
      headers: {
        headers: [
          { key: ':method', raw_value: Buffer.from('POST') },
          { key: 'x-b64', raw_value: Buffer.from('hi') },
        ],
      },
      end_of_stream: false,
    },
    metadata_context: {
      filter_metadata: {
        'envoy.filters.http.jwt_authn': {
          fields: {
            sub: { kind: 'stringValue', stringValue: 'u1' },
            admin: { kind: 'boolValue', boolValue: true },
            n: { kind: 'numberValue', numberValue: 2.5 },
            none: { kind: 'nullValue', nullValue: 'NULL_VALUE' },
            list: { kind: 'listValue', listValue: { values: [{ kind: 'stringValue', stringValue: 'a' }] } },
            nested: {
              kind: 'structValue',
              structValue: { fields: { k: { kind: 'numberValue', numberValue: 1 } } },
            },
          },
        },
      },
      typed_filter_metadata: { t: { type_url: 'type.googleapis.com/x.Y', value: Buffer.from([1]) } },
    },
    attributes: {
      'envoy.filters.http.ext_proc': {
        fields: { 'request.path': { kind: 'stringValue', stringValue: '/v1' } },
      },
    },
    observability_mode: true,
    // Undeclared enum numbers come back as numbers.
    protocol_config: { request_body_mode: 'STREAMED', response_body_mode: 9 },
    // int64 comes back as a decimal string.
    flow_control_init: { initial_window_downstream_to_sidestream: '65536' },
  };
  const decoded = roundTrip('envoy.service.ext_proc.v3.ProcessingRequest', input);
  assert.deepEqual(decoded, expected);
  assert.equal(phaseOf(expected), 'request_headers');
});

void test('ProcessingRequest: body phase and the empty message', () => {
  const expected: ProcessingRequest = {
    request: 'request_body',
    request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true },
  };
  assert.deepEqual(
    roundTrip('envoy.service.ext_proc.v3.ProcessingRequest', {
      request_body: { body: Buffer.from('{"model":"m"}'), end_of_stream: true },
    } satisfies ProcessingRequestInput),
    expected,
  );
  const empty: ProcessingRequest = {};
  assert.deepEqual(roundTrip('envoy.service.ext_proc.v3.ProcessingRequest', {}), empty);
  assert.equal(phaseOf(empty), 'none');
});

void test('ProcessingResponse: immediate response from numeric status and base64 body', () => {
  const input: ProcessingResponseInput = {
    immediate_response: {
      status: { code: 503 },
      headers: {
        set_headers: [{ header: { key: 'retry-after', raw_value: Buffer.from('1') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
      body: 'aGk=',
      details: 'overloaded',
    },
    override_message_timeout: { seconds: 2, nanos: 5 },
  };
  const expected: ProcessingResponse = {
    response: 'immediate_response',
    immediate_response: {
      status: { code: 'ServiceUnavailable' },
      headers: {
        set_headers: [{ header: { key: 'retry-after', raw_value: Buffer.from('1') }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
      body: Buffer.from('hi'),
      details: 'overloaded',
    },
    override_message_timeout: { seconds: '2', nanos: 5 },
  };
  const decoded = roundTrip('envoy.service.ext_proc.v3.ProcessingResponse', input);
  assert.deepEqual(decoded, expected);

  // A decoded response can be sent back as is.
  const echo: ProcessingResponseInput = expected;
  assert.deepEqual(roundTrip('envoy.service.ext_proc.v3.ProcessingResponse', echo), expected);
});

void test('ProcessingResponse: body mutation alternatives', () => {
  const expected: ProcessingResponse = {
    response: 'request_body',
    request_body: {
      response: {
        status: 'CONTINUE_AND_REPLACE',
        body_mutation: { mutation: 'clear_body', clear_body: true },
        clear_route_cache: true,
      },
    },
    mode_override: { response_body_mode: 'FULL_DUPLEX_STREAMED', response_trailer_mode: 'SEND' },
  };
  assert.deepEqual(
    roundTrip('envoy.service.ext_proc.v3.ProcessingResponse', {
      request_body: {
        response: {
          status: 'CONTINUE_AND_REPLACE',
          body_mutation: { clear_body: true },
          clear_route_cache: true,
        },
      },
      mode_override: { response_body_mode: 'FULL_DUPLEX_STREAMED', response_trailer_mode: 'SEND' },
    } satisfies ProcessingResponseInput),
    expected,
  );
});

void test('oneof types reject two alternatives at once', () => {
  // @ts-expect-error request_headers and immediate_response are exclusive
  const bad: ProcessingResponseInput = { request_headers: {}, immediate_response: {} };
  // @ts-expect-error the discriminant must name the alternative that is set
  const mislabelled: ProcessingResponseInput = { response: 'request_body', request_headers: {} };
  // A decoded message always carries the discriminant with its alternative.
  // @ts-expect-error missing `request` discriminant
  const undiscriminated: ProcessingRequest = { request_body: {} };
  assert.ok(bad && mislabelled && undiscriminated);
});

void test('CheckRequest: attribute context with address, time and raw body', () => {
  const input: CheckRequestInput = {
    attributes: {
      source: {
        address: { socket_address: { address: '10.0.0.1', port_value: 40000 } },
        principal: 'spiffe://cluster.local/ns/a/sa/b',
        labels: { app: 'chat' },
      },
      destination: { address: { pipe: { path: '/run/envoy.sock', mode: 0o600 } } },
      request: {
        time: { seconds: 1_700_000_000, nanos: 1 },
        http: {
          id: 'req-1',
          method: 'POST',
          headers: { ':path': '/v1/chat/completions', authorization: 'Bearer k' },
          path: '/v1/chat/completions',
          host: 'gw',
          scheme: 'https',
          size: -1,
          protocol: 'HTTP/2',
          raw_body: Buffer.from([0, 255]),
        },
      },
      context_extensions: { route: 'chat' },
      tls_session: { sni: 'gw.example' },
    },
  };
  const expected: CheckRequest = {
    attributes: {
      source: {
        address: {
          address: 'socket_address',
          socket_address: { address: '10.0.0.1', port_specifier: 'port_value', port_value: 40000 },
        },
        principal: 'spiffe://cluster.local/ns/a/sa/b',
        labels: { app: 'chat' },
      },
      destination: { address: { address: 'pipe', pipe: { path: '/run/envoy.sock', mode: 0o600 } } },
      request: {
        time: { seconds: '1700000000', nanos: 1 },
        http: {
          id: 'req-1',
          method: 'POST',
          headers: { ':path': '/v1/chat/completions', authorization: 'Bearer k' },
          path: '/v1/chat/completions',
          host: 'gw',
          scheme: 'https',
          size: '-1',
          protocol: 'HTTP/2',
          raw_body: Buffer.from([0, 255]),
        },
      },
      context_extensions: { route: 'chat' },
      tls_session: { sni: 'gw.example' },
    },
  };
  assert.deepEqual(roundTrip('envoy.service.auth.v3.CheckRequest', input), expected);
});

void test('CheckResponse: error response with numeric HTTP status', () => {
  const input: CheckResponseInput = {
    status: { code: 14, message: 'backend down' },
    error_response: { status: { code: 503 }, body: 'try later', headers: [{ header: { key: 'x', value: 'y' } }] },
    dynamic_metadata: { fields: { reason: { stringValue: 'down' } } },
  };
  const expected: CheckResponse = {
    status: { code: 14, message: 'backend down' },
    http_response: 'error_response',
    error_response: {
      status: { code: 'ServiceUnavailable' },
      body: 'try later',
      headers: [{ header: { key: 'x', value: 'y' } }],
    },
    dynamic_metadata: { fields: { reason: { kind: 'stringValue', stringValue: 'down' } } },
  };
  assert.deepEqual(roundTrip('envoy.service.auth.v3.CheckResponse', input), expected);
});

void test('HealthCheckResponse', () => {
  const expected: HealthCheckResponse = { status: 'NOT_SERVING' };
  assert.deepEqual(roundTrip('grpc.health.v1.HealthCheckResponse', { status: 2 }), expected);
});
