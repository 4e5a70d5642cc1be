/**
 * A test OTLP/HTTP trace receiver: a node:http server on 127.0.0.1, port 0,
 * that accepts POST /v1/traces (application/x-protobuf), keeps every raw body
 * and decodes it with protobufjs from our own wire-compatible .proto
 * (otlp-trace.proto). It can be told to fail (HTTP 503) or to hold its answers,
 * to play a collector that is down or slow.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

const root = protobuf.loadSync(new URL('./otlp-trace.proto', import.meta.url).pathname);
const ExportRequest = root.lookupType('igwtest.otlp.ExportTraceServiceRequest');
const ExportResponse = root.lookupType('igwtest.otlp.ExportTraceServiceResponse');

export type AttrValue = string | number | boolean | Buffer;

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Readonly<Record<string, AttrValue>>;
  readonly status: { readonly code: number; readonly message: string };
  /** The resource's attributes (service.name, ...). */
  readonly resource: Readonly<Record<string, AttrValue>>;
  readonly scope: string;
}

export interface ReceivedExport {
  readonly headers: IncomingMessage['headers'];
  readonly contentType: string | undefined;
  readonly body: Buffer;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly exports: ReceivedExport[];
  readonly spans: ReceivedSpan[];
  /** 'ok' answers 200; 'fail' answers 503; 'hold' keeps every request open until the mode changes or the receiver closes. */
  mode: 'ok' | 'fail' | 'hold';
  close(): Promise<void>;
}

interface PbAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: { toString(): string } | number;
  doubleValue?: number;
  bytesValue?: Uint8Array;
}
interface PbKeyValue {
  key: string;
  value?: PbAnyValue;
}
interface PbSpan {
  traceId: Uint8Array;
  spanId: Uint8Array;
  parentSpanId: Uint8Array;
  name: string;
  kind: number;
  startTimeUnixNano: { toString(): string } | number;
  endTimeUnixNano: { toString(): string } | number;
  attributes: PbKeyValue[];
  status?: { code?: number; message?: string };
}
interface PbRequest {
  resourceSpans: Array<{ resource?: { attributes: PbKeyValue[] }; scopeSpans: Array<{ scope?: { name?: string }; spans: PbSpan[] }> }>;
}

function value(v: PbAnyValue | undefined): AttrValue {
  if (v === undefined) return '';
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue.toString());
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return Buffer.from(v.bytesValue);
  return '';
}

function attrs(list: readonly PbKeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of list ?? []) out[kv.key] = value(kv.value);
  return out;
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? new Uint8Array()).toString('hex');

/** Decodes one ExportTraceServiceRequest body into its spans. */
export function decodeExport(body: Uint8Array): ReceivedSpan[] {
  const msg = ExportRequest.toObject(ExportRequest.decode(body), { defaults: true, longs: String }) as unknown as PbRequest;
  const spans: ReceivedSpan[] = [];
  for (const rs of msg.resourceSpans) {
    const resource = attrs(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        spans.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: s.kind,
          startNs: BigInt(s.startTimeUnixNano.toString()),
          endNs: BigInt(s.endTimeUnixNano.toString()),
          attributes: attrs(s.attributes),
          status: { code: s.status?.code ?? 0, message: s.status?.message ?? '' },
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const held: ServerResponse[] = [];
  const answer = (res: ServerResponse): void => {
    if (receiver.mode === 'fail') {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('collector unavailable');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(ExportResponse.encode(ExportResponse.create({})).finish()));
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      receiver.exports.push({ headers: req.headers, contentType: req.headers['content-type'], body });
      if (receiver.mode !== 'fail') receiver.spans.push(...decodeExport(body));
      if (receiver.mode === 'hold') held.push(res);
      else answer(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let mode: OtlpReceiver['mode'] = 'ok';
  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    exports: [],
    spans: [],
    get mode() {
      return mode;
    },
    set mode(m) {
      mode = m;
      if (m !== 'hold') for (const res of held.splice(0)) answer(res);
    },
    close: async () => {
      for (const res of held.splice(0)) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
